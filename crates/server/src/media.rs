//! The media worker: one thread that owns the [`Sfu`], the shared UDP media socket and the
//! ICE-TCP connections. Everything else talks to it through [`MediaHandle`] commands, so
//! packets never cross a lock or an await on their way from receiver to subscribers.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, UdpSocketState};
use stoa_proto::{ClientMessage, ParticipantId, RoomName, ServerMessage};
use stoa_sfu::str0m::net::Protocol;
use stoa_sfu::str0m::Candidate;
use stoa_sfu::{
    Datagram, JoinRequest, Output, ParticipantLimits, ParticipantReport, RoomLimits, RoomStats,
    ServerCounters, Sfu, SfuConfig, SfuError, SfuTotals,
};
use tokio::io::Interest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use crate::relay::{Ready, TurnIo};
use crate::send_batch::SendBatch;
use stoa_turn::TurnServer;

/// Datagrams read per `recvmmsg` call.
const RECV_BATCH: usize = 32;
const RECV_SLOT: usize = 65536;
/// Largest RFC 4571 frame accepted on ICE-TCP (the 16-bit length field's maximum).
const MAX_TCP_FRAME: usize = u16::MAX as usize;

pub enum Command {
    Join {
        req: JoinRequest,
        events: mpsc::UnboundedSender<ServerMessage>,
        reply: oneshot::Sender<ParticipantId>,
    },
    Message {
        id: ParticipantId,
        message: ClientMessage,
    },
    Leave {
        id: ParticipantId,
    },
    /// A WHIP/WHEP offer: joins and answers in one step.
    Offer {
        req: JoinRequest,
        sdp: String,
        reply: oneshot::Sender<Result<(ParticipantId, String), SfuError>>,
    },
    Report {
        room: RoomName,
        reply: oneshot::Sender<(Option<Vec<ParticipantReport>>, ServerCounters)>,
    },
    /// Call-quality statistics of one room (`None`: nobody is in it).
    Stats {
        room: RoomName,
        reply: oneshot::Sender<Option<RoomStats>>,
    },
    /// A room's video bitrate limits (`None`: nobody is in it).
    RoomLimits {
        room: RoomName,
        reply: oneshot::Sender<Option<RoomLimits>>,
    },
    SetRoomLimits {
        room: RoomName,
        limits: RoomLimits,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    /// Limits of a participant of `room` (an error if it is not in that room).
    SetParticipantLimits {
        room: RoomName,
        id: ParticipantId,
        limits: ParticipantLimits,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Health {
        reply: oneshot::Sender<Health>,
    },
    TcpOpen {
        peer: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    TcpFrame {
        peer: SocketAddr,
        local: SocketAddr,
        data: Vec<u8>,
    },
    TcpClosed {
        peer: SocketAddr,
    },
    TurnStreamOpen {
        client: SocketAddr,
        local: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    TurnStreamData {
        transport: stoa_turn::Transport,
        client: SocketAddr,
        local: SocketAddr,
        data: Vec<u8>,
    },
    TurnStreamClosed {
        transport: stoa_turn::Transport,
        client: SocketAddr,
        local: SocketAddr,
    },
}

/// The media worker's state at a glance, for `/healthz` and `/metrics`.
pub struct Health {
    pub participants: usize,
    pub rooms: usize,
    /// Interactive participants with a signaling connection.
    pub signaling_sessions: usize,
    /// The SFU's server-wide sums.
    pub totals: SfuTotals,
    /// Datagrams the media or TURN sockets could not send (full buffers, unreachable).
    pub send_errors: u64,
    pub turn: Option<stoa_turn::TurnStats>,
}

/// A cheap, cloneable way to reach the media worker.
#[derive(Clone)]
pub struct MediaHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl MediaHandle {
    pub fn send(&self, cmd: Command) {
        // The worker lives as long as the process; a send can only fail during shutdown.
        let _ = self.tx.send(cmd);
    }

    pub async fn join(
        &self,
        req: JoinRequest,
        events: mpsc::UnboundedSender<ServerMessage>,
    ) -> Option<ParticipantId> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Join { req, events, reply });
        rx.await.ok()
    }

    pub async fn offer(
        &self,
        req: JoinRequest,
        sdp: String,
    ) -> Result<(ParticipantId, String), SfuError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Offer { req, sdp, reply });
        rx.await.unwrap_or(Err(SfuError::UnknownParticipant))
    }

    pub async fn report(&self, room: RoomName) -> (Option<Vec<ParticipantReport>>, ServerCounters) {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Report { room, reply });
        rx.await.unwrap_or((None, ServerCounters::default()))
    }

    pub async fn room_stats(&self, room: RoomName) -> Option<RoomStats> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { room, reply });
        rx.await.ok().flatten()
    }

    pub async fn room_limits(&self, room: RoomName) -> Option<RoomLimits> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::RoomLimits { room, reply });
        rx.await.ok().flatten()
    }

    pub async fn set_room_limits(
        &self,
        room: RoomName,
        limits: RoomLimits,
    ) -> Result<(), SfuError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetRoomLimits {
            room,
            limits,
            reply,
        });
        rx.await.unwrap_or(Err(SfuError::UnknownRoom))
    }

    pub async fn set_participant_limits(
        &self,
        room: RoomName,
        id: ParticipantId,
        limits: ParticipantLimits,
    ) -> Result<(), SfuError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetParticipantLimits {
            room,
            id,
            limits,
            reply,
        });
        rx.await.unwrap_or(Err(SfuError::UnknownParticipant))
    }

    pub async fn health(&self) -> Option<Health> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Health { reply });
        rx.await.ok()
    }
}

/// Where media is reachable.
pub struct MediaSockets {
    pub udp: std::net::UdpSocket,
    pub tcp: std::net::TcpListener,
    /// Addresses advertised to clients as host candidates.
    pub advertised: Vec<IpAddr>,
}

impl MediaSockets {
    pub fn bind(
        udp: SocketAddr,
        tcp: SocketAddr,
        public_ip: Option<IpAddr>,
    ) -> std::io::Result<Self> {
        let udp_socket = std::net::UdpSocket::bind(udp)?;
        udp_socket.set_nonblocking(true)?;
        crate::relay::enlarge_buffers(&udp_socket);
        let tcp_listener = std::net::TcpListener::bind(tcp)?;
        tcp_listener.set_nonblocking(true)?;
        let mut advertised: Vec<IpAddr> = public_ip.into_iter().collect();
        if udp.ip().is_unspecified() {
            for iface in if_addrs::get_if_addrs().unwrap_or_default() {
                let ip = iface.ip();
                if ip.is_ipv4() && !advertised.contains(&ip) {
                    advertised.push(ip);
                }
            }
        } else if !advertised.contains(&udp.ip()) {
            advertised.push(udp.ip());
        }
        Ok(Self {
            udp: udp_socket,
            tcp: tcp_listener,
            advertised,
        })
    }

    /// The UDP media addresses clients reach the SFU at.
    pub fn own_media(&self) -> Vec<SocketAddr> {
        let port = self.udp.local_addr().map(|a| a.port()).unwrap_or(0);
        self.advertised
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect()
    }

    fn candidates(&self) -> Vec<Candidate> {
        let udp_port = self.udp.local_addr().map(|a| a.port()).unwrap_or(0);
        let tcp_port = self.tcp.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut out = Vec::new();
        for ip in &self.advertised {
            if let Ok(c) = Candidate::host(SocketAddr::new(*ip, udp_port), "udp") {
                out.push(c);
            }
            if let Ok(c) = Candidate::builder()
                .tcp()
                .host(SocketAddr::new(*ip, tcp_port))
                .tcptype(stoa_sfu::str0m::net::TcpType::Passive)
                .build()
            {
                out.push(c);
            }
        }
        out
    }
}

/// What the media worker needs to run the STUN/TURN server.
pub struct TurnSetup {
    pub config: stoa_turn::TurnConfig,
    /// UDP listeners (primary first, then RFC 5780 alternates) with their addresses.
    pub udp: Vec<(std::net::UdpSocket, SocketAddr)>,
    pub tcp: std::net::TcpListener,
    pub tls: Option<(std::net::TcpListener, tokio_rustls::TlsAcceptor)>,
    pub relay_bind_ip: IpAddr,
}

/// Starts the media worker (and the TURN server, if set up) on its own thread.
pub fn spawn(
    sockets: MediaSockets,
    turn: Option<TurnSetup>,
    room_limits: RoomLimits,
) -> std::io::Result<MediaHandle> {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = MediaHandle { tx };
    let for_tcp = handle.clone();
    let config = SfuConfig {
        local_candidates: sockets.candidates(),
        room_limits,
        ..SfuConfig::default()
    };
    let own_media = sockets.own_media();
    for c in &config.local_candidates {
        tracing::info!(candidate = %c.to_sdp_string(), "media candidate");
    }
    std::thread::Builder::new()
        .name("stoa-media".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds with default settings");
            runtime.block_on(async move {
                let udp = UdpSocket::from_std(sockets.udp).expect("the socket is non-blocking");
                let tcp = TcpListener::from_std(sockets.tcp).expect("the listener is non-blocking");
                let turn = turn.map(|setup| start_turn(setup, own_media, for_tcp.clone()));
                tokio::spawn(accept_tcp(tcp, for_tcp));
                let mut worker = Worker::new(Sfu::new(config), udp);
                worker.turn = turn;
                worker.run(rx).await;
            });
        })?;
    Ok(handle)
}

/// Starts the TURN stream listeners and returns the TURN I/O the worker drives.
fn start_turn(setup: TurnSetup, own_media: Vec<SocketAddr>, media: MediaHandle) -> TurnIo {
    let mut config = setup.config;
    config.own_media = own_media.clone();
    let relay_ip = config.relay_ip;
    let listeners = setup
        .udp
        .into_iter()
        .map(|(s, addr)| {
            (
                UdpSocket::from_std(s).expect("the socket is non-blocking"),
                addr,
            )
        })
        .collect();
    let tcp = TcpListener::from_std(setup.tcp).expect("the listener is non-blocking");
    tokio::spawn(crate::relay::accept_streams(tcp, None, media.clone()));
    if let Some((listener, acceptor)) = setup.tls {
        let listener = TcpListener::from_std(listener).expect("the listener is non-blocking");
        tokio::spawn(crate::relay::accept_streams(
            listener,
            Some(acceptor),
            media,
        ));
    }
    let seed = rand::random();
    TurnIo::new(
        TurnServer::new(config, seed),
        listeners,
        relay_ip,
        setup.relay_bind_ip,
        own_media,
    )
}

struct Worker {
    sfu: Sfu,
    turn: Option<TurnIo>,
    udp: UdpSocket,
    udp_state: UdpSocketState,
    local_port: u16,
    outgoing: SendBatch,
    sessions: HashMap<ParticipantId, mpsc::UnboundedSender<ServerMessage>>,
    tcp_writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    send_errors: u64,
}

impl Worker {
    fn new(sfu: Sfu, udp: UdpSocket) -> Self {
        let udp_state = UdpSocketState::new((&udp).into()).expect("UDP socket options can be set");
        let local = udp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Self {
            outgoing: SendBatch::new(local),
            local_port: local.port(),
            sfu,
            turn: None,
            udp,
            udp_state,
            sessions: HashMap::new(),
            tcp_writers: HashMap::new(),
            send_errors: 0,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        // Each slot can hold a GRO-coalesced run of datagrams, up to 64 KiB.
        let mut buf = vec![0u8; RECV_SLOT * RECV_BATCH];
        loop {
            let deadline = self
                .sfu
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => return,
                },
                ready = self.udp.readable() => {
                    if ready.is_ok() {
                        self.read_udp(&mut buf);
                    }
                }
                ready = turn_readable(self.turn.as_ref()) => {
                    if let Some(turn) = self.turn.as_mut() {
                        turn.on_ready(ready, &mut self.sfu);
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
                self.sfu.handle_timeout(now);
            }
            if let Some(turn) = self.turn.as_mut() {
                if turn.poll_timeout().is_some_and(|t| t <= now) {
                    turn.handle_timeout(now);
                }
            }
            self.flush();
        }
    }

    fn read_udp(&mut self, buf: &mut [u8]) {
        let chunk = RECV_SLOT;
        loop {
            let mut meta = [RecvMeta::default(); RECV_BATCH];
            let mut slices: Vec<IoSliceMut> = buf.chunks_mut(chunk).map(IoSliceMut::new).collect();
            let result = self.udp.try_io(Interest::READABLE, || {
                self.udp_state
                    .recv((&self.udp).into(), &mut slices, &mut meta)
            });
            let n = match result {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive error");
                    return;
                }
            };
            drop(slices);
            let now = Instant::now();
            for (i, m) in meta.iter().take(n).enumerate() {
                let data = &buf[i * chunk..i * chunk + m.len];
                let local_ip = m.dst_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
                let destination = SocketAddr::new(local_ip, self.local_port);
                let stride = if m.stride == 0 { m.len } else { m.stride };
                for contents in data.chunks(stride) {
                    self.sfu.handle_datagram(
                        now,
                        Datagram {
                            proto: Protocol::Udp,
                            source: m.addr,
                            destination,
                            contents,
                        },
                    );
                }
            }
            self.flush();
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join { req, events, reply } => {
                let id = self.sfu.join(now, req);
                self.sessions.insert(id, events);
                let _ = reply.send(id);
            }
            Command::Message { id, message } => {
                let unix_ms = crate::clock::unix_ms() as u64;
                if let Err(e) = self.sfu.handle_message(now, id, message, unix_ms) {
                    if let Some(s) = self.sessions.get(&id) {
                        let _ = s.send(ServerMessage::error(e.code(), e.to_string()));
                    }
                }
            }
            Command::Leave { id } => {
                self.sessions.remove(&id);
                self.sfu.leave(now, id);
            }
            Command::Offer { req, sdp, reply } => {
                let id = self.sfu.join(now, req);
                let result = self.sfu.accept_offer(now, id, &sdp);
                if result.is_err() {
                    self.sfu.leave(now, id);
                }
                let _ = reply.send(result.map(|answer| (id, answer)));
            }
            Command::Report { room, reply } => {
                let _ = reply.send((self.sfu.room_report(&room), self.sfu.counters()));
            }
            Command::Stats { room, reply } => {
                let _ = reply.send(self.sfu.room_stats(&room));
            }
            Command::RoomLimits { room, reply } => {
                let _ = reply.send(self.sfu.room_limits(&room));
            }
            Command::SetRoomLimits {
                room,
                limits,
                reply,
            } => {
                let _ = reply.send(self.sfu.set_room_limits(&room, limits));
            }
            Command::SetParticipantLimits {
                room,
                id,
                limits,
                reply,
            } => {
                let _ = reply.send(self.set_participant_limits(&room, id, limits));
            }
            Command::Health { reply } => {
                let turn_errors = self.turn.as_ref().map_or(0, |t| t.send_errors);
                let _ = reply.send(Health {
                    participants: self.sfu.participant_count(),
                    rooms: self.sfu.room_count(),
                    signaling_sessions: self.sessions.len(),
                    totals: self.sfu.totals(),
                    send_errors: self.send_errors + turn_errors,
                    turn: self.turn.as_ref().map(|t| t.stats()),
                });
            }
            Command::TcpOpen { peer, writer } => {
                self.tcp_writers.insert(peer, writer);
            }
            Command::TcpFrame { peer, local, data } => {
                self.sfu.handle_datagram(
                    now,
                    Datagram {
                        proto: Protocol::Tcp,
                        source: peer,
                        destination: local,
                        contents: &data,
                    },
                );
            }
            Command::TcpClosed { peer } => {
                self.tcp_writers.remove(&peer);
            }
            Command::TurnStreamOpen {
                client,
                local,
                writer,
            } => {
                if let Some(turn) = self.turn.as_mut() {
                    turn.stream_opened(client, local, writer);
                }
            }
            Command::TurnStreamData {
                transport,
                client,
                local,
                data,
            } => {
                if let Some(turn) = self.turn.as_mut() {
                    turn.client_message(transport, local, client, &data, &mut self.sfu);
                }
            }
            Command::TurnStreamClosed {
                transport,
                client,
                local,
            } => {
                if let Some(turn) = self.turn.as_mut() {
                    turn.stream_closed(transport, client, local);
                }
            }
        }
    }

    /// Sets the limits of a participant, if it is in `room`.
    fn set_participant_limits(
        &mut self,
        room: &RoomName,
        id: ParticipantId,
        limits: ParticipantLimits,
    ) -> Result<(), SfuError> {
        let members = self.sfu.room_report(room).unwrap_or_default();
        if !members.iter().any(|p| p.id == id) {
            return Err(SfuError::UnknownParticipant);
        }
        self.sfu.set_participant_limits(id, limits)
    }

    fn flush(&mut self) {
        while let Some(out) = self.sfu.poll_output() {
            match out {
                Output::Transmit(t) => match t.proto {
                    Protocol::Udp => {
                        let relayed = self.turn.as_mut().is_some_and(|turn| {
                            turn.deliver_from_sfu(t.source, t.destination, &t.contents)
                        });
                        if !relayed {
                            self.outgoing
                                .push(t.source.ip(), t.destination, t.contents.into());
                            if self.outgoing.is_full() {
                                self.send_outgoing();
                            }
                        }
                    }
                    Protocol::Tcp => {
                        let sent = self
                            .tcp_writers
                            .get(&t.destination)
                            .is_some_and(|w| w.try_send(t.contents.to_vec()).is_ok());
                        if !sent {
                            self.send_errors += 1;
                        }
                    }
                    _ => self.send_errors += 1,
                },
                Output::Signal { to, message } => {
                    if let Some(s) = self.sessions.get(&to) {
                        let _ = s.send(message);
                    }
                }
                Output::Closed {
                    participant,
                    reason,
                } => {
                    tracing::info!(%participant, ?reason, "closing participant's connection");
                    // Dropping the sender ends the participant's WebSocket task.
                    self.sessions.remove(&participant);
                }
            }
        }
        self.send_outgoing();
    }

    fn send_outgoing(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        let result = self.outgoing.send(&self.udp);
        self.send_errors += result.failed as u64;
    }
}

/// Waits for TURN socket readiness; never resolves when TURN is off.
async fn turn_readable(turn: Option<&TurnIo>) -> Ready {
    match turn {
        Some(t) => t.readable().await,
        None => std::future::pending().await,
    }
}

/// Accepts ICE-TCP connections; each carries RFC 4571 framed STUN/DTLS/RTP.
async fn accept_tcp(listener: TcpListener, media: MediaHandle) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(tcp_connection(stream, peer, media.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn tcp_connection(stream: TcpStream, peer: SocketAddr, media: MediaHandle) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    media.send(Command::TcpOpen { peer, writer: tx });
    let write_task = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let Ok(len) = u16::try_from(frame.len()) else {
                continue;
            };
            if writer.write_all(&len.to_be_bytes()).await.is_err()
                || writer.write_all(&frame).await.is_err()
            {
                break;
            }
        }
    });
    let mut frame = vec![0u8; MAX_TCP_FRAME];
    loop {
        let mut len = [0u8; 2];
        if reader.read_exact(&mut len).await.is_err() {
            break;
        }
        let len = u16::from_be_bytes(len) as usize;
        if reader.read_exact(&mut frame[..len]).await.is_err() {
            break;
        }
        media.send(Command::TcpFrame {
            peer,
            local,
            data: frame[..len].to_vec(),
        });
    }
    media.send(Command::TcpClosed { peer });
    write_task.abort();
}
