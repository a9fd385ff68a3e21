//! `stoa load-test`: simulated participants (str0m peers from `stoa-client` with real ICE,
//! DTLS-SRTP and RTP over UDP) join a room, publish synthetic Opus/VP8 and measure what they
//! receive. They join through Stoa's guest endpoint and WebSocket signaling, or over WHIP
//! (publishers) and WHEP (subscribers), which also loads other WHIP/WHEP servers.
//!
//! One tokio task per participant, event-driven: it waits on its UDP socket, its WebSocket
//! and a timer set to the earliest of str0m's timeout, the next media frame, the next ping and
//! the end of the run. Statistics live in [`stats`], free of I/O.
//!
//! What is measured:
//! - **Latency**: publishers stamp the wall-clock send time (u64 ns since the Unix epoch) into
//!   bytes 1..9 of every frame; receivers subtract it from their wall clock when the frame is
//!   complete. Meaningful only with synchronised clocks (always true on one machine).
//! - **Packet loss**: per received stream, the RTP sequence numbers (extended, after RTX
//!   repair) of the frames str0m delivers; loss = 1 - packets in delivered frames / span of
//!   sequence numbers from the first to the last delivered frame. Packets of frames that could
//!   not be assembled count as lost; packets before the first delivered frame do not count.
//! - **Join time**: from the token request to the first media frame received (to ICE+DTLS
//!   connected for a participant that expects no media).

pub mod layout;
pub mod stats;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use stoa_client::Peer;
use stoa_proto::{ClientMessage, RoomName, ServerMessage};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

pub use layout::VideoLayout;
pub use stats::{ParticipantResult, Report};

/// How participants reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Stoa's WebSocket signaling (`/ws`).
    Signaling,
    /// WHIP for publishers, WHEP for subscribers (no trickle; one offer, one answer).
    WhipWhep,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's base URL, e.g. `http://127.0.0.1:8800`.
    pub url: String,
    pub room: String,
    pub publishers: usize,
    pub subscribers: usize,
    /// How long to keep going once every participant has started joining.
    pub duration: Duration,
    /// Publishers send audio only (else audio and video).
    pub audio_only: bool,
    /// Joins started per second.
    pub ramp_rate: f64,
    /// Print an updating progress line on stderr.
    pub progress: bool,
    /// A participant not connected (ICE+DTLS) this long after starting to join is an error.
    pub connect_timeout: Duration,
    pub transport: Transport,
    /// Bearer token for every participant; by default each gets a guest token from Stoa's
    /// `POST /api/v1/rooms/{room}/join`.
    pub token: Option<String>,
    /// WHIP endpoint [default: `{url}/whip/{room}`].
    pub whip_url: Option<String>,
    /// WHEP endpoint [default: `{url}/whep/{room}`].
    pub whep_url: Option<String>,
    /// Publishers send three simulcast video layers (else one).
    pub simulcast: bool,
    /// Subscribers show received video in this layout and report its sizes (signaling only).
    pub video_layout: Option<VideoLayout>,
}

impl Config {
    pub fn new(url: impl Into<String>, room: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            room: room.into(),
            publishers: 2,
            subscribers: 2,
            duration: Duration::from_secs(30),
            audio_only: false,
            ramp_rate: 10.0,
            progress: false,
            connect_timeout: Duration::from_secs(15),
            transport: Transport::Signaling,
            token: None,
            whip_url: None,
            whep_url: None,
            simulcast: false,
            video_layout: None,
        }
    }
}

const PING_EVERY: Duration = Duration::from_secs(5);
const SIGNALING_TIMEOUT: Duration = Duration::from_secs(10);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Shared {
    http: reqwest::Client,
    base: String,
    ws_url: String,
    room: String,
    local_ip: IpAddr,
    audio_only: bool,
    publishers: usize,
    connect_timeout: Duration,
    connected: AtomicUsize,
    transport: Transport,
    token: Option<String>,
    whip_url: String,
    whep_url: String,
    simulcast: bool,
    video_layout: Option<VideoLayout>,
}

/// Creates an ad-hoc meeting on the server at `url` (as a signed-out visitor would with "New
/// meeting") and returns its room name: guests can join only rooms the server made.
pub async fn new_meeting(url: &str) -> Result<String, String> {
    let endpoint = format!("{}/api/v1/meetings", url.trim_end_matches('/'));
    let res = reqwest::Client::new()
        .post(&endpoint)
        .send()
        .await
        .map_err(|e| format!("POST {endpoint}: {e}"))?;
    let status = res.status();
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| format!("POST {endpoint}: {e}"))?;
    match body["room"].as_str() {
        Some(room) if status.is_success() => Ok(room.to_string()),
        _ => Err(format!("POST {endpoint}: HTTP {status}: {body}")),
    }
}

/// Runs the load test. Setup problems (a bad URL, an unresolvable host) are an `Err`; anything
/// that goes wrong for a participant is counted in the report's errors.
pub async fn run(cfg: &Config) -> Result<Report, String> {
    let room = RoomName::new(cfg.room.clone())
        .map_err(|e| format!("invalid room {:?}: {e}", cfg.room))?
        .to_string();
    if cfg.ramp_rate.is_nan() || cfg.ramp_rate <= 0.0 {
        return Err("--ramp-rate must be positive".into());
    }
    let url =
        reqwest::Url::parse(&cfg.url).map_err(|e| format!("invalid URL {:?}: {e}", cfg.url))?;
    let ws_scheme = match url.scheme() {
        "http" => "ws",
        "https" => "wss",
        s => {
            return Err(format!(
                "unsupported URL scheme {s:?}; use http:// or https://"
            ))
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("no host in {:?}", cfg.url))?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let endpoint = |given: &Option<String>, kind: &str| -> Result<String, String> {
        let e = given
            .clone()
            .unwrap_or_else(|| format!("{}/{kind}/{room}", cfg.url.trim_end_matches('/')));
        reqwest::Url::parse(&e).map_err(|err| format!("invalid {kind} URL {e:?}: {err}"))?;
        Ok(e)
    };
    let whip_url = endpoint(&cfg.whip_url, "whip")?;
    let whep_url = endpoint(&cfg.whep_url, "whep")?;
    let server_addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let local_ip = local_ip_towards(server_addr)?;
    let base = cfg.url.trim_end_matches('/').to_string();
    let host_port = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let shared = Arc::new(Shared {
        http: reqwest::Client::builder()
            .timeout(SIGNALING_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?,
        base,
        ws_url: format!("{ws_scheme}://{host_port}/ws"),
        room,
        local_ip,
        audio_only: cfg.audio_only,
        publishers: cfg.publishers,
        connect_timeout: cfg.connect_timeout,
        connected: AtomicUsize::new(0),
        transport: cfg.transport,
        token: cfg.token.clone(),
        whip_url,
        whep_url,
        simulcast: cfg.simulcast,
        video_layout: cfg.video_layout,
    });

    let total = cfg.publishers + cfg.subscribers;
    let start = Instant::now();
    let step = Duration::from_secs_f64(1.0 / cfg.ramp_rate);
    let ramp = step.mul_f64(total.saturating_sub(1) as f64);
    let end = start + ramp + cfg.duration;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let publisher = i < cfg.publishers;
        let name = if publisher {
            format!("load-pub-{i}")
        } else {
            format!("load-sub-{}", i - cfg.publishers)
        };
        let begin = start + step.mul_f64(i as f64);
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(begin.into()).await;
            participant(&shared, name, publisher, end).await
        }));
    }

    let progress = cfg.progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let tty = std::io::stderr().is_terminal();
            // A terminal gets a bar redrawn in place; a log gets a line every 5 s.
            let period = if tty { 250 } else { 5000 };
            let mut tick = tokio::time::interval(Duration::from_millis(period));
            loop {
                tick.tick().await;
                let line = progress_line(
                    shared.connected.load(Ordering::Relaxed),
                    total,
                    start.elapsed(),
                    end - start,
                );
                if tty {
                    eprint!("\r{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        })
    });

    let mut results = Vec::with_capacity(total);
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(r) => results.push(r),
            Err(e) => results.push(ParticipantResult {
                publisher: i < cfg.publishers,
                tracks_expected: expected_tracks(
                    cfg.transport,
                    cfg.video_layout,
                    cfg.publishers,
                    i < cfg.publishers,
                    cfg.audio_only,
                ),
                errors: vec![format!("participant {i} failed: {e}")],
                ..Default::default()
            }),
        }
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!(
            "\r  joined {}/{total}  done after {:.1} s        ",
            shared.connected.load(Ordering::Relaxed),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(stats::aggregate(
        &results,
        cfg.publishers,
        cfg.subscribers,
        cfg.audio_only,
        start.elapsed().as_secs_f64(),
    ))
}

/// Tracks a participant should receive: a WHIP publisher receives nothing, and a layout
/// shows at most its capacity of videos.
fn expected_tracks(
    transport: Transport,
    layout: Option<VideoLayout>,
    publishers: usize,
    publisher: bool,
    audio_only: bool,
) -> u64 {
    if transport == Transport::WhipWhep && publisher {
        return 0;
    }
    let all = stats::tracks_expected(publishers, publisher, audio_only);
    let videos = all - stats::tracks_expected(publishers, publisher, true);
    match layout {
        Some(l) => all - videos + videos.min(l.capacity() as u64),
        None => all,
    }
}

/// `[#########-----------]  45%  joined 12/25  14/31 s`
fn progress_line(joined: usize, total: usize, elapsed: Duration, planned: Duration) -> String {
    const WIDTH: usize = 24;
    let fraction = (elapsed.as_secs_f64() / planned.as_secs_f64().max(0.001)).clamp(0.0, 1.0);
    let filled = (fraction * WIDTH as f64).round() as usize;
    format!(
        "  [{}{}] {:3.0}%  joined {joined}/{total}  {:.0}/{:.0} s ",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        fraction * 100.0,
        elapsed.as_secs_f64(),
        planned.as_secs_f64()
    )
}

/// The local address the OS would use to reach `server` (nothing is sent).
fn local_ip_towards(server: SocketAddr) -> Result<IpAddr, String> {
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("a valid address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("a valid address"),
    };
    let probe = std::net::UdpSocket::bind(any).map_err(|e| format!("UDP bind: {e}"))?;
    probe
        .connect(server)
        .map_err(|e| format!("no route to {server}: {e}"))?;
    Ok(probe
        .local_addr()
        .map_err(|e| format!("UDP local address: {e}"))?
        .ip())
}

/// One simulated participant, from the token request to the end of the run.
async fn participant(
    shared: &Shared,
    name: String,
    publisher: bool,
    end: Instant,
) -> ParticipantResult {
    let t0 = Instant::now();
    let mut result = ParticipantResult {
        publisher,
        tracks_expected: expected_tracks(
            shared.transport,
            shared.video_layout,
            shared.publishers,
            publisher,
            shared.audio_only,
        ),
        ..Default::default()
    };
    let socket = match UdpSocket::bind((shared.local_ip, 0)).await {
        Ok(s) => s,
        Err(e) => {
            result.errors.push(format!("{name}: UDP bind: {e}"));
            return result;
        }
    };
    let addr = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            result.errors.push(format!("{name}: UDP address: {e}"));
            return result;
        }
    };
    let mut peer = match Peer::new(t0, addr) {
        Ok(p) => p,
        Err(e) => {
            result.errors.push(format!("{name}: {e}"));
            return result;
        }
    };
    peer.wall_clock_stamps = true;
    if shared.simulcast && publisher {
        peer.layers = stoa_client::default_layers();
    }
    let mut session = Session {
        shared,
        name: &name,
        publisher,
        peer: &mut peer,
        socket: &socket,
        ws: None,
        resource: None,
        me: None,
        placed: Vec::new(),
        hidden: HashSet::new(),
        errors: &mut result.errors,
        counted_connected: false,
    };
    if let Err(e) = session.drive(t0, end).await {
        session.errors.push(format!("{name}: {e}"));
    }
    session.hang_up().await;
    let hidden = std::mem::take(&mut session.hidden);
    collect(&peer, &hidden, t0, end, &mut result);
    result
}

/// Moves what the peer counted into the result; tracks the layout hides do not count.
fn collect(
    peer: &Peer,
    hidden: &HashSet<String>,
    t0: Instant,
    end: Instant,
    result: &mut ParticipantResult,
) {
    let mut tracks = HashSet::new();
    let mut first_frame: Option<Instant> = None;
    // One received track per m-line: WHEP slots may share a stream id.
    let shown = |r: &&stoa_client::Received| r.frames > 0 && !hidden.contains(&r.track_id);
    for (mid, r) in peer.received.iter().filter(|(_, r)| shown(r)) {
        tracks.insert(*mid);
        result.packets_received += r.packets;
        if let (Some(lo), Some(hi)) = (r.first_seq, r.max_seq) {
            result.packets_expected += hi - lo + 1;
        }
        result.bytes_received += r.bytes;
        result.freezes += r.freezes;
        result.latency_us.extend_from_slice(&r.latency_us);
        if r.latency_us.len() > 1 {
            result.jitter_us.push(r.jitter_us);
        }
        if let Some(f) = r.first_frame_at {
            first_frame = Some(first_frame.map_or(f, |x| x.min(f)));
        }
    }
    result.tracks_received = tracks.len() as u64;
    let ms = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1000.0;
    result.connect_ms = peer.connected_at.map(ms);
    result.join_ms = if result.tracks_expected == 0 {
        result.connect_ms
    } else {
        first_frame.map(ms)
    };
    if let Some(f) = first_frame {
        result.receive_secs = end.saturating_duration_since(f).as_secs_f64();
    }
}

struct Session<'a> {
    shared: &'a Shared,
    name: &'a str,
    publisher: bool,
    peer: &'a mut Peer,
    socket: &'a UdpSocket,
    ws: Option<Ws>,
    /// The WHIP/WHEP session resource to `DELETE` at the end, and its token.
    resource: Option<(String, String)>,
    me: Option<stoa_proto::ParticipantId>,
    /// Received video tracks in the order the layout placed them, and those it hides.
    placed: Vec<String>,
    hidden: HashSet<String>,
    errors: &'a mut Vec<String>,
    counted_connected: bool,
}

impl Session<'_> {
    async fn drive(&mut self, t0: Instant, end: Instant) -> Result<(), String> {
        let token = match &self.shared.token {
            Some(t) => t.clone(),
            None => self.guest_token().await?,
        };
        match self.shared.transport {
            Transport::Signaling => self.open_signaling(token).await?,
            Transport::WhipWhep => self.open_whip_whep(token).await?,
        }

        let connect_deadline = t0 + self.shared.connect_timeout;
        let mut next_ping = Instant::now() + PING_EVERY;
        let mut buf = vec![0u8; 2000];
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            if !self.peer.connected && now >= connect_deadline {
                return Err(format!(
                    "ICE/DTLS not connected within {} s",
                    self.shared.connect_timeout.as_secs()
                ));
            }
            if now >= next_ping {
                self.send(ClientMessage::Ping).await?;
                next_ping = now + PING_EVERY;
            }
            self.peer.handle_timeout(now);
            self.peer
                .produce(now)
                .map_err(|e| format!("sending media: {e}"))?;
            let (transmits, timeout) = self
                .peer
                .poll()
                .map_err(|e| format!("WebRTC failure: {e}"))?;
            for t in transmits {
                // Send errors (e.g. ICMP unreachable echoes) show up as missing media.
                let _ = self.socket.send_to(&t.contents, t.destination).await;
            }
            if self.peer.connected && !self.counted_connected {
                self.counted_connected = true;
                self.shared.connected.fetch_add(1, Ordering::Relaxed);
            }
            let mut wake = timeout.min(next_ping).min(end);
            if let Some(due) = self.peer.next_frame_due() {
                wake = wake.min(due);
            }
            if !self.peer.connected {
                wake = wake.min(connect_deadline);
            }
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        self.peer.handle_datagram(Instant::now(), from, &buf[..n]);
                        while let Ok((n, from)) = self.socket.try_recv_from(&mut buf) {
                            self.peer.handle_datagram(Instant::now(), from, &buf[..n]);
                        }
                    }
                }
                m = next_message(self.ws.as_mut()) => match m {
                    Some(Ok(Message::Text(text))) => self.on_signal(&text).await?,
                    Some(Ok(Message::Close(_))) | None => {
                        return Err("the server closed the signaling connection".into())
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("signaling: {e}")),
                },
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    async fn open_signaling(&mut self, token: String) -> Result<(), String> {
        let (ws, _) = tokio::time::timeout(
            SIGNALING_TIMEOUT,
            tokio_tungstenite::connect_async(self.shared.ws_url.as_str()),
        )
        .await
        .map_err(|_| format!("WebSocket connect to {} timed out", self.shared.ws_url))?
        .map_err(|e| format!("WebSocket connect to {}: {e}", self.shared.ws_url))?;
        self.ws = Some(ws);
        self.send(ClientMessage::Join { token }).await?;
        self.offer().await
    }

    /// WHIP (publisher) or WHEP (subscriber, one receive slot per expected track): one
    /// offer, `201 Created` with the answer and the session's `Location`.
    async fn open_whip_whep(&mut self, token: String) -> Result<(), String> {
        let (endpoint, offer) = if self.publisher {
            let sdp = self.peer.publish_offer(true, !self.shared.audio_only);
            (&self.shared.whip_url, sdp.map_err(|e| e.to_string())?)
        } else {
            let videos = if self.shared.audio_only {
                0
            } else {
                self.shared.publishers
            };
            let sdp = self.peer.view_offer(self.shared.publishers, videos);
            (&self.shared.whep_url, sdp.map_err(|e| e.to_string())?)
        };
        let res = self
            .shared
            .http
            .post(endpoint)
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, "application/sdp")
            .body(offer)
            .send()
            .await
            .map_err(|e| format!("POST {endpoint}: {e}"))?;
        let status = res.status();
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| reqwest::Url::parse(endpoint).ok()?.join(l).ok())
            .map(String::from);
        let answer = res
            .text()
            .await
            .map_err(|e| format!("POST {endpoint}: {e}"))?;
        if status != reqwest::StatusCode::CREATED {
            return Err(format!("POST {endpoint}: HTTP {status}: {answer}"));
        }
        self.resource = location.map(|l| (l, token));
        self.peer
            .accept_answer(&answer)
            .map_err(|e| format!("the answer to POST {endpoint}: {e}"))
    }

    /// Leaves: `leave` over signaling, or `DELETE` of the WHIP/WHEP session.
    async fn hang_up(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            let leave = serde_json::to_string(&ClientMessage::Leave).unwrap_or_default();
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = ws.send(Message::text(leave)).await;
                let _ = ws.close(None).await;
            })
            .await;
        }
        if let Some((location, token)) = self.resource.take() {
            let delete = self.shared.http.delete(&location).bearer_auth(token).send();
            if let Err(e) = tokio::time::timeout(Duration::from_secs(2), delete)
                .await
                .map_err(|_| "timed out".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                self.errors
                    .push(format!("{}: DELETE {location}: {e}", self.name));
            }
        }
    }

    async fn guest_token(&self) -> Result<String, String> {
        let url = format!(
            "{}/api/v1/rooms/{}/join",
            self.shared.base, self.shared.room
        );
        let res = self
            .shared
            .http
            .post(&url)
            .json(&serde_json::json!({ "name": self.name }))
            .send()
            .await
            .map_err(|e| format!("guest join {url}: {e}"))?;
        let status = res.status();
        let body = res
            .text()
            .await
            .map_err(|e| format!("guest join {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("guest join {url}: HTTP {status}: {body}"));
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("guest join {url}: {e}"))?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("guest join {url}: no token in {body}"))
    }

    /// Our offer: audio (+ video) for a publisher, a data channel only for a subscriber.
    async fn offer(&mut self) -> Result<(), String> {
        let sdp = if self.publisher {
            self.peer.publish_offer(true, !self.shared.audio_only)
        } else {
            self.peer.publish_offer(false, false)
        };
        let sdp = sdp.map_err(|e| format!("our offer: {e}"))?;
        self.send(ClientMessage::Offer { sdp }).await
    }

    async fn send(&mut self, msg: ClientMessage) -> Result<(), String> {
        let text = serde_json::to_string(&msg).map_err(|e| e.to_string())?;
        let ws = self.ws.as_mut().ok_or("no signaling connection")?;
        tokio::time::timeout(SIGNALING_TIMEOUT, ws.send(Message::text(text)))
            .await
            .map_err(|_| "signaling send timed out".to_string())?
            .map_err(|e| format!("signaling send: {e}"))
    }

    /// Gives a newly announced video of someone else its place in the layout, and tells the
    /// server the size it is shown at.
    async fn place(&mut self, track: &stoa_proto::TrackInfo) -> Result<(), String> {
        let Some(layout) = self.shared.video_layout else {
            return Ok(());
        };
        let theirs = Some(track.participant) != self.me;
        if track.kind != stoa_proto::TrackKind::Video || !theirs || self.placed.contains(&track.id)
        {
            return Ok(());
        }
        let (width, height) = layout.size(self.placed.len());
        self.placed.push(track.id.clone());
        if (width, height) == (0, 0) {
            self.hidden.insert(track.id.clone());
        }
        self.send(ClientMessage::VideoSize {
            track: track.id.clone(),
            width,
            height,
        })
        .await
    }

    async fn on_signal(&mut self, text: &str) -> Result<(), String> {
        let msg: ServerMessage = serde_json::from_str(text)
            .map_err(|e| format!("unreadable server message ({e}): {text}"))?;
        match msg {
            ServerMessage::Answer { sdp } => self
                .peer
                .accept_answer(&sdp)
                .map_err(|e| format!("the server's answer: {e}"))?,
            ServerMessage::Offer { sdp } => {
                // Polite peer: the server ignored our outstanding offer, so roll it back,
                // answer, and offer again.
                let ours_was_pending = self.peer.offer_pending();
                let answer = self
                    .peer
                    .accept_offer(&sdp)
                    .map_err(|e| format!("the server's offer: {e}"))?;
                self.send(ClientMessage::Answer { sdp: answer }).await?;
                if ours_was_pending {
                    self.offer().await?;
                }
            }
            ServerMessage::Joined {
                you, participants, ..
            } => {
                self.me = Some(you.id);
                for track in participants.into_iter().flat_map(|p| p.tracks) {
                    self.place(&track).await?;
                }
            }
            ServerMessage::TrackPublished { track } => self.place(&track).await?,
            ServerMessage::Layers { active, .. } => self.peer.set_active_layers(&active),
            ServerMessage::Error {
                code,
                message,
                fatal,
            } => {
                let e = format!("server error {code:?}: {message}");
                if fatal {
                    return Err(e);
                }
                self.errors.push(format!("{}: {e}", self.name));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The next signaling message, or never when there is no signaling connection (WHIP/WHEP).
async fn next_message(
    ws: Option<&mut Ws>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_cap_the_videos_expected() {
        let speaker = Some(VideoLayout::Speaker);
        let signaling = Transport::Signaling;
        // 8 publishers: a subscriber expects 8 audio and 6 shown videos.
        assert_eq!(expected_tracks(signaling, speaker, 8, false, false), 8 + 6);
        // A publisher sees the 7 others: 7 audio, 6 videos.
        assert_eq!(expected_tracks(signaling, speaker, 8, true, false), 7 + 6);
        assert_eq!(expected_tracks(signaling, None, 8, false, false), 16);
        assert_eq!(expected_tracks(signaling, speaker, 8, false, true), 8);
        assert_eq!(
            expected_tracks(Transport::WhipWhep, None, 8, true, false),
            0
        );
    }
}
