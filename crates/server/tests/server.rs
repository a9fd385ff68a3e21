//! The real server on loopback: str0m peers over UDP with WebSocket signaling, WHIP and WHEP,
//! token checks, and garbage on the network ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
mod common;
use common::{counters, start};
use stoa_proto::{ClientMessage, Grants, RoomName, ServerMessage};
use stoa_testkit::Peer;
use str0m::media::MediaKind;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn token(server: &stoa::Running, room: &str, identity: &str, grants: Grants) -> String {
    server.keys.mint(
        &RoomName::new(room).unwrap(),
        identity,
        identity,
        grants,
        Duration::from_secs(600),
    )
}

/// A str0m peer on a real UDP socket, optionally with a signaling WebSocket.
struct NetPeer {
    peer: Peer,
    socket: UdpSocket,
    ws: Option<Ws>,
    messages: Vec<ServerMessage>,
    buf: Vec<u8>,
}

impl NetPeer {
    async fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        Self {
            peer: Peer::new(Instant::now(), addr).unwrap(),
            socket,
            ws: None,
            messages: Vec::new(),
            buf: vec![0; 2000],
        }
    }

    /// Joins over signaling and publishes audio+video (or nothing).
    async fn join(server: &stoa::Running, room: &str, identity: &str, publish: bool) -> Self {
        let mut me = Self::new().await;
        let url = format!("ws://{}/ws", server.http_addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let join = ClientMessage::Join {
            token: token(server, room, identity, Grants::default()),
        };
        ws.send(Message::text(serde_json::to_string(&join).unwrap()))
            .await
            .unwrap();
        me.ws = Some(ws);
        let offer = me.peer.publish_offer(publish, publish).unwrap();
        me.send(ClientMessage::Offer { sdp: offer }).await;
        me
    }

    async fn send(&mut self, msg: ClientMessage) {
        let ws = self.ws.as_mut().unwrap();
        ws.send(Message::text(serde_json::to_string(&msg).unwrap()))
            .await
            .unwrap();
    }

    /// One round of I/O without blocking: network in, signaling in, media out.
    async fn tick(&mut self) {
        let now = Instant::now();
        while let Ok((n, from)) = self.socket.try_recv_from(&mut self.buf) {
            let data = self.buf[..n].to_vec();
            self.peer.handle_datagram(now, from, &data);
        }
        let mut replies = Vec::new();
        if let Some(ws) = self.ws.as_mut() {
            while let Some(Some(Ok(Message::Text(text)))) = ws.next().now_or_never() {
                let msg: ServerMessage = serde_json::from_str(&text).unwrap();
                match &msg {
                    ServerMessage::Answer { sdp } => self.peer.accept_answer(sdp).unwrap(),
                    ServerMessage::Offer { sdp } => replies.push(ClientMessage::Answer {
                        sdp: self.peer.accept_offer(sdp).unwrap(),
                    }),
                    _ => {}
                }
                self.messages.push(msg);
            }
        }
        for r in replies {
            self.send(r).await;
        }
        self.peer.handle_timeout(now);
        self.peer.produce(now).unwrap();
        let (transmits, _) = self.peer.poll().unwrap();
        for t in transmits {
            let _ = self.socket.send_to(&t.contents, t.destination).await;
        }
    }
}

async fn run_until(
    peers: &mut [&mut NetPeer],
    limit: Duration,
    done: impl Fn(&[&mut NetPeer]) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done(peers) {
            return true;
        }
        for p in peers.iter_mut() {
            p.tick().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    done(peers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_str0m_clients_exchange_media_through_the_server() {
    let server = start().await;
    let mut a = NetPeer::join(&server, "it-room", "alice", true).await;
    let mut b = NetPeer::join(&server, "it-room", "bob", true).await;
    let mut c = NetPeer::join(&server, "it-room", "carol", true).await;
    let ok = run_until(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_secs(15),
        |ps| {
            ps.iter().all(|p| {
                p.peer.total_frames(MediaKind::Video) > 60
                    && p.peer.total_frames(MediaKind::Audio) > 100
            })
        },
    )
    .await;
    for (name, p) in [("alice", &a), ("bob", &b), ("carol", &c)] {
        let per_stream: Vec<_> = p
            .peer
            .received
            .values()
            .map(|r| (r.stream_id.clone(), r.kind, r.frames))
            .collect();
        assert!(ok, "{name} received {per_stream:?}");
        // Two remote participants, each with audio and video.
        let streams: std::collections::HashSet<_> = p
            .peer
            .received
            .values()
            .filter(|r| r.frames > 0)
            .map(|r| r.stream_id.clone())
            .collect();
        assert_eq!(streams.len(), 2, "{name} received from {streams:?}");
    }
    let report = counters(&server, "it-room").await;
    let participants = report["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 3, "{report}");
    for p in participants {
        assert!(p["packets_in"].as_u64().unwrap() > 100, "{p}");
        assert!(p["packets_out"].as_u64().unwrap() > 200, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publisher_is_seen_by_a_whep_viewer_and_delete_ends_it() {
    let server = start().await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);

    let mut publisher = NetPeer::new().await;
    let offer = publisher.peer.publish_offer(true, true).unwrap();
    let res = http
        .post(format!("{base}/whip/live"))
        .bearer_auth(token(&server, "live", "obs", Grants::default()))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["content-type"], "application/sdp");
    let whip_location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(whip_location.starts_with("/whip/live/"), "{whip_location}");
    let session = whip_location.rsplit('/').next().unwrap();
    let tag = session.split_once('-').map_or("", |(_, tag)| tag);
    assert_eq!(tag.len(), 32, "an unguessable session id: {session}");
    assert!(res.headers().contains_key("etag"), "{:?}", res.headers());
    publisher
        .peer
        .accept_answer(&res.text().await.unwrap())
        .unwrap();

    let mut viewer = NetPeer::new().await;
    let offer = viewer.peer.view_offer(1, 1).unwrap();
    let viewer_token = token(
        &server,
        "live",
        "viewer",
        Grants {
            publish: false,
            ..Grants::default()
        },
    );
    let res = http
        .post(format!("{base}/whep/live"))
        .bearer_auth(&viewer_token)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let whep_location = res.headers()["location"].to_str().unwrap().to_string();
    viewer
        .peer
        .accept_answer(&res.text().await.unwrap())
        .unwrap();

    let ok = run_until(
        &mut [&mut publisher, &mut viewer],
        Duration::from_secs(15),
        |ps| {
            ps[1].peer.total_frames(MediaKind::Video) > 60
                && ps[1].peer.total_frames(MediaKind::Audio) > 100
        },
    )
    .await;
    assert!(ok, "the WHEP viewer received {:?}", viewer.peer.received);

    // Another participant's token ends nobody's session; the session's own token does, and
    // again (idempotently) once it is gone.
    let res = http
        .delete(format!("{base}{whip_location}"))
        .bearer_auth(&viewer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "the viewer ended the publisher's session"
    );
    let publisher_token = token(&server, "live", "obs", Grants::default());
    for (location, owner) in [
        (whep_location, &viewer_token),
        (whip_location, &publisher_token),
    ] {
        for _ in 0..2 {
            let res = http
                .delete(format!("{base}{location}"))
                .bearer_auth(owner)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "DELETE {location}");
        }
    }
    let res = http
        .delete(format!(
            "{base}/whip/live/p1-00000000000000000000000000000000"
        ))
        .bearer_auth(&publisher_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a forged session URL");
    let health: serde_json::Value = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["participants"], 0, "{health}");
}

#[tokio::test]
async fn bad_tokens_and_bodies_get_clear_errors() {
    let server = start().await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let good = token(&server, "r1", "u", Grants::default());
    let other_key = stoa::auth::TokenKeys::from_secret(b"someone-else").mint(
        &RoomName::new("r1").unwrap(),
        "u",
        "u",
        Grants::default(),
        Duration::from_secs(60),
    );
    // The payload of an admin token under the signature of a plain one.
    let admin = token(
        &server,
        "r1",
        "u",
        Grants {
            room_admin: true,
            ..Grants::default()
        },
    );
    let mut tampered: Vec<&str> = good.split('.').collect();
    tampered[1] = admin.split('.').nth(1).unwrap();
    let tampered = tampered.join(".");

    let cases: Vec<(Option<String>, &str, u16, &str)> = vec![
        (None, "r1", 401, "token_missing"),
        (Some(other_key), "r1", 401, "token_invalid_signature"),
        (Some(tampered), "r1", 401, "token_invalid_signature"),
        (Some("garbage".into()), "r1", 401, "token_malformed"),
        (Some(good.clone()), "r2", 401, "token_wrong_room"),
        (Some(good.clone()), "bad%20room", 400, "invalid_room"),
    ];
    for (tok, room, status, code) in cases {
        let mut req = http
            .post(format!("{base}/whip/{room}"))
            .header("content-type", "application/sdp")
            .body("v=0");
        if let Some(t) = tok {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{room} {code}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], code, "{body}");
    }
    // A valid token with an unusable SDP.
    let res = http
        .post(format!("{base}/whip/r1"))
        .bearer_auth(&good)
        .header("content-type", "application/sdp")
        .body("this is not sdp")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "bad_sdp"
    );
    // Guest join validation.
    let res = http
        .post(format!("{base}/api/v1/rooms/r1/join"))
        .json(&serde_json::json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http
        .post(format!("{base}/api/v1/rooms/r1/join"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // WebSocket: an expired token is refused with a fatal error before reaching the SFU.
    let expired = {
        let keys = &server.keys;
        keys.mint(
            &RoomName::new("r1").unwrap(),
            "u",
            "u",
            Grants::default(),
            Duration::from_secs(1),
        )
    };
    tokio::time::sleep(Duration::from_millis(7100)).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.http_addr))
        .await
        .unwrap();
    ws.send(Message::text(
        serde_json::to_string(&ClientMessage::Join { token: expired }).unwrap(),
    ))
    .await
    .unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    let msg: ServerMessage = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert!(
        matches!(&msg, ServerMessage::Error { code: stoa_proto::ErrorCode::Unauthorized, fatal: true, message } if message.contains("expired")),
        "{msg:?}"
    );
    let health: serde_json::Value = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["participants"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_signaling_keeps_the_connection_usable() {
    let server = start().await;
    let mut a = NetPeer::join(&server, "sig", "alice", true).await;
    let ws = a.ws.as_mut().unwrap();
    for bad in [
        "not json",
        "{\"type\":\"warp\"}",
        "{\"type\":\"answer\",\"sdp\":\"x\"}",
        "{\"type\":\"join\",\"token\":\"x\"}",
    ] {
        ws.send(Message::text(bad)).await.unwrap();
    }
    let mut b = NetPeer::join(&server, "sig", "bob", true).await;
    let ok = run_until(&mut [&mut a, &mut b], Duration::from_secs(10), |ps| {
        ps[0].peer.total_frames(MediaKind::Video) > 30
            && ps[1].peer.total_frames(MediaKind::Video) > 30
    })
    .await;
    assert!(ok);
    let errors: Vec<_> = a
        .messages
        .iter()
        .filter(|m| matches!(m, ServerMessage::Error { fatal: false, .. }))
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    a.send(ClientMessage::Chat {
        text: "still here".into(),
    })
    .await;
    let delivered = run_until(&mut [&mut a, &mut b], Duration::from_secs(5), |ps| {
        ps[1]
            .messages
            .iter()
            .any(|m| matches!(m, ServerMessage::Chat { message } if message.text == "still here"))
    })
    .await;
    assert!(delivered);
    // Closing the WebSocket removes the participant at once.
    a.ws.take().unwrap().close(None).await.unwrap();
    let gone = run_until(&mut [&mut b], Duration::from_secs(5), |ps| {
        ps[0]
            .messages
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { .. }))
    })
    .await;
    assert!(gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_media_ports_is_dropped_and_counted() {
    let server = start().await;
    let mut a = NetPeer::join(&server, "g", "alice", true).await;
    let mut b = NetPeer::join(&server, "g", "bob", true).await;
    run_until(&mut [&mut a, &mut b], Duration::from_secs(10), |ps| {
        ps[1].peer.total_frames(MediaKind::Video) > 10
    })
    .await;

    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut x: u32 = 7;
    for i in 0..3000usize {
        let data: Vec<u8> = (0..(i % 1400) + 1)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let _ = junk.send_to(&data, server.media_udp_addr).await;
        if i % 50 == 0 {
            // Paced, so the kernel's socket buffer does not drop any before Stoa sees them.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    // And a stranger speaking nonsense on ICE-TCP, including an oversized length prefix.
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(server.media_tcp_addr)
        .await
        .unwrap();
    tcp.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
    tcp.write_all(&[0, 4, 0, 1, 0, 0]).await.unwrap();
    drop(tcp);

    let before = b.peer.total_frames(MediaKind::Video);
    let ok = run_until(&mut [&mut a, &mut b], Duration::from_secs(10), |ps| {
        ps[1].peer.total_frames(MediaKind::Video) > before + 30
    })
    .await;
    assert!(ok, "media kept flowing");
    let report = counters(&server, "g").await;
    assert!(
        report["server"]["unroutable"].as_u64().unwrap() >= 2900,
        "{report}"
    );
    let _: SocketAddr = server.media_udp_addr;
}

/// The `/metrics` text parsed by a Prometheus parser: metric name and labels → value.
async fn scrape(server: &stoa::Running) -> Vec<prometheus_parse::Sample> {
    let res = reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).unwrap().samples
}

fn metric(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("{name} {labels:?} missing from {samples:?}"));
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("{name} is not a plain value"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_shows_in_the_metrics_and_the_room_stats() {
    let server = start().await;
    let mut a = NetPeer::join(&server, "metered", "alice", true).await;
    let mut b = NetPeer::join(&server, "metered", "bob", true).await;
    // Past two stats intervals, so the SFU has byte counts and rates.
    let until = Instant::now() + Duration::from_millis(2500);
    let ok = run_until(&mut [&mut a, &mut b], Duration::from_secs(15), |ps| {
        Instant::now() > until
            && ps
                .iter()
                .all(|p| p.peer.total_frames(MediaKind::Video) > 30)
    })
    .await;
    assert!(ok, "media flowed");

    let samples = scrape(&server).await;
    assert_eq!(metric(&samples, "stoa_rooms", &[]), 1.0);
    assert_eq!(metric(&samples, "stoa_participants", &[]), 2.0);
    assert_eq!(metric(&samples, "stoa_signaling_sessions", &[]), 2.0);
    let report = counters(&server, "metered").await;
    let packets_in: u64 = report["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["packets_in"].as_u64().unwrap())
        .sum();
    let counted = metric(&samples, "stoa_rtp_packets_received_total", &[]);
    assert!(
        counted > 200.0 && counted <= packets_in as f64,
        "{counted} vs {packets_in}"
    );
    assert!(metric(&samples, "stoa_rtp_packets_sent_total", &[]) > 200.0);
    assert!(metric(&samples, "stoa_received_bytes_total", &[]) > 100_000.0);
    assert!(metric(&samples, "stoa_sent_bytes_total", &[]) > 100_000.0);
    assert!(metric(&samples, "stoa_keyframe_requests_total", &[]) >= 1.0);
    metric(&samples, "stoa_nacks_total", &[("direction", "sent")]);
    metric(&samples, "stoa_turn_allocations", &[]);
    let ws = [("route", "/ws"), ("method", "GET"), ("status", "101")];
    assert_eq!(metric(&samples, "stoa_http_requests_total", &ws), 2.0);

    // The room's statistics, for a room admin only.
    let url = format!("http://{}/api/v1/rooms/metered/stats", server.http_addr);
    let http = reqwest::Client::new();
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let guest = token(&server, "metered", "guest", Grants::default());
    let res = http.get(&url).bearer_auth(guest).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "forbidden"
    );
    let admin = Grants {
        room_admin: true,
        ..Grants::default()
    };
    let res = http
        .get(&url)
        .bearer_auth(token(&server, "metered", "host", admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stats: serde_json::Value = res.json().await.unwrap();
    assert_eq!(stats["room"], "metered");
    let participants = stats["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2, "{stats}");
    for p in participants {
        assert!(p["bitrate_in_bps"].as_u64().unwrap() > 50_000, "{p}");
        assert!(p["bitrate_out_bps"].as_u64().unwrap() > 50_000, "{p}");
        assert!(
            p["estimated_bandwidth_bps"].as_u64().is_some_and(|b| b > 0),
            "{p}"
        );
        assert_eq!(p["published"].as_array().unwrap().len(), 2, "{p}");
        let received = p["received"].as_array().unwrap();
        assert_eq!(received.len(), 2, "{p}");
        assert!(received.iter().all(|t| t["layer"].is_null()), "{p}");
    }
}

/// A request with an optional bearer token and JSON body; the status and the JSON answer.
async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_set_and_read_a_calls_bitrate_limits() {
    use reqwest::Method;
    use serde_json::json;
    let server = start().await;
    let base = format!("http://{}/api/v1/rooms/limited", server.http_addr);
    let limits = format!("{base}/limits");
    let admin = Grants {
        room_admin: true,
        ..Grants::default()
    };
    let host = token(&server, "limited", "host", admin);
    let guest = token(&server, "limited", "guest", Grants::default());
    let body = json!({"max_video_bitrate": 800000, "min_video_bitrate": 100000});

    let (s, e) = call(Method::PUT, &limits, None, Some(body.clone())).await;
    assert_eq!(s, 401, "{e}");
    let (s, e) = call(Method::GET, &limits, Some(&guest), None).await;
    assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")));
    let (s, e) = call(Method::GET, &limits, Some(&host), None).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (404, Some("not_found")),
        "empty room"
    );

    let mut alice = NetPeer::join(&server, "limited", "alice", true).await;
    let joined = run_until(&mut [&mut alice], Duration::from_secs(10), |ps| {
        ps[0]
            .messages
            .iter()
            .any(|m| matches!(m, ServerMessage::Joined { .. }))
    })
    .await;
    assert!(joined);
    let id = counters(&server, "limited").await["participants"][0]["id"]
        .as_u64()
        .unwrap();

    for (bad, field) in [
        (json!({"max_video_bitrate": 0}), "max_video_bitrate"),
        (json!({"min_video_bitrate": -5}), "min_video_bitrate"),
        (
            json!({"max_video_bitrate": 200_000_000}),
            "max_video_bitrate",
        ),
        (
            json!({"max_video_bitrate": 100000, "min_video_bitrate": 200000}),
            "min_video_bitrate",
        ),
    ] {
        let (s, e) = call(Method::PUT, &limits, Some(&host), Some(bad.clone())).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("invalid_field")),
            "{bad}"
        );
        assert_eq!(e["field"], field, "{bad}");
    }
    let (s, _) = call(Method::PUT, &limits, Some(&host), Some(json!({"max": 1}))).await;
    assert_eq!(s, 400, "unknown fields are refused");

    let (s, got) = call(Method::GET, &limits, Some(&host), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        got,
        json!({"max_video_bitrate": null, "min_video_bitrate": null}),
        "the server's defaults"
    );
    let (s, set) = call(Method::PUT, &limits, Some(&host), Some(body.clone())).await;
    assert_eq!((s, &set), (200, &body));
    let (s, got) = call(Method::GET, &limits, Some(&host), None).await;
    assert_eq!((s, got), (200, body));

    let participant = |p: &str| format!("{base}/participants/{p}/limits");
    let presenter = json!({"max_video_bitrate": null, "priority": 5});
    for p in [id.to_string(), format!("p{id}")] {
        let (s, set) = call(
            Method::PUT,
            &participant(&p),
            Some(&host),
            Some(presenter.clone()),
        )
        .await;
        assert_eq!((s, &set), (200, &presenter), "{p}");
    }
    let (s, e) = call(
        Method::PUT,
        &participant("p999"),
        Some(&host),
        Some(presenter.clone()),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (404, Some("not_found")));
    let (s, e) = call(
        Method::PUT,
        &participant("nobody"),
        Some(&host),
        Some(presenter),
    )
    .await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = call(
        Method::PUT,
        &participant(&id.to_string()),
        Some(&host),
        Some(json!({"priority": 11})),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("priority")));
    let (s, _) = call(
        Method::PUT,
        &participant(&id.to_string()),
        Some(&guest),
        Some(json!({"priority": 1})),
    )
    .await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_spread_over_the_media_workers_all_carry_media() {
    // The test settings start three media workers; six rooms land on more than one of them.
    let server = start().await;
    let mut peers = Vec::new();
    for room in 0..6 {
        for who in ["alice", "bob"] {
            peers.push(NetPeer::join(&server, &format!("spread-{room}"), who, true).await);
        }
    }
    let mut refs: Vec<&mut NetPeer> = peers.iter_mut().collect();
    let ok = run_until(&mut refs, Duration::from_secs(20), |ps| {
        ps.iter()
            .all(|p| p.peer.total_frames(MediaKind::Video) > 30)
    })
    .await;
    let frames: Vec<u64> = peers
        .iter()
        .map(|p| p.peer.total_frames(MediaKind::Video))
        .collect();
    assert!(ok, "video frames per peer: {frames:?}");
    let samples = scrape(&server).await;
    let per_worker: Vec<(f64, f64)> = (0..3)
        .map(|w| {
            let w = w.to_string();
            let labels = [("worker", w.as_str())];
            (
                metric(&samples, "stoa_media_worker_participants", &labels),
                metric(&samples, "stoa_media_worker_connected_sockets", &labels),
            )
        })
        .collect();
    assert_eq!(
        per_worker.iter().map(|w| w.0).sum::<f64>(),
        12.0,
        "{per_worker:?}"
    );
    let busy = per_worker.iter().filter(|w| w.0 > 0.0).count();
    assert!(busy >= 2, "rooms on {busy} worker(s): {per_worker:?}");
    // Every participant of workers 1 and 2 got a socket of its own on its worker, so the
    // kernel, not worker 0, sorts its datagrams; worker 0 reads its own from the front socket.
    assert_eq!(per_worker[0].1, 0.0, "{per_worker:?}");
    for (participants, connected) in &per_worker[1..] {
        assert_eq!(participants, connected, "{per_worker:?}");
    }
}

/// POSTs an offer to a WHIP/WHEP endpoint.
async fn post_offer(base: &str, path: &str, bearer: &str, sdp: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(bearer)
        .header("content-type", "application/sdp")
        .body(sdp.to_string())
        .send()
        .await
        .unwrap()
}

async fn error_of(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or("").into(),
        body["message"].as_str().unwrap_or("").into(),
    )
}

/// The refusals a WHIP/WHEP client can meet: tokens, SDP, codecs; none of them replaces the
/// identity's running session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_refusals_are_clear_and_harmless() {
    let settings = common::settings();
    let server = common::start_with(&settings).await;
    let base = format!("http://{}", server.http_addr);
    let obs = token(&server, "live", "obs", Grants::default());
    let mut publisher = NetPeer::new().await;
    let offer = publisher.peer.publish_offer(true, true).unwrap();
    let res = post_offer(&base, "/whip/live", &obs, &offer).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();

    // Expired (past the verifier's leeway), and signed for another room.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &stoa::auth::Claims {
            iss: "stoa".into(),
            sub: "obs".into(),
            name: "obs".into(),
            room: "live".into(),
            iat: now - 120,
            exp: now - 60,
            grants: Grants::default(),
        },
        &jsonwebtoken::EncodingKey::from_secret(settings.jwt_secret.as_deref().unwrap().as_bytes()),
    )
    .unwrap();
    let (status, error, _) =
        error_of(post_offer(&base, "/whip/live", &expired, &offer).await).await;
    assert_eq!((status, error.as_str()), (401, "token_expired"));
    let elsewhere = token(&server, "other", "obs", Grants::default());
    let (status, error, _) =
        error_of(post_offer(&base, "/whip/live", &elsewhere, &offer).await).await;
    assert_eq!((status, error.as_str()), (401, "token_wrong_room"));
    let viewer_only = token(
        &server,
        "live",
        "obs",
        Grants {
            publish: false,
            ..Grants::default()
        },
    );
    let (status, _, _) =
        error_of(post_offer(&base, "/whip/live", &viewer_only, &offer).await).await;
    assert_eq!(status, 403);

    // Malformed SDP: a plain message, no parser internals.
    for bad in [
        "v=0\r\nm=audio x\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video 9",
    ] {
        let (status, error, message) =
            error_of(post_offer(&base, "/whip/live", &obs, bad).await).await;
        assert_eq!((status, error.as_str()), (400, "bad_sdp"), "{message}");
        assert!(
            !message.contains("0x") && !message.contains("Pointer"),
            "{message}"
        );
    }

    // PCMU only: nothing the server can forward.
    let mut pcmu_peer = NetPeer::new().await;
    let audio_offer = pcmu_peer.peer.publish_offer(true, false).unwrap();
    let pcmu: String = audio_offer
        .lines()
        .filter(|l| {
            !l.starts_with("a=rtpmap:") && !l.starts_with("a=fmtp:") && !l.starts_with("a=rtcp-fb:")
        })
        .map(|l| {
            if l.starts_with("m=audio ") {
                let head: Vec<&str> = l.split(' ').take(3).collect();
                format!("{} 0\r\n", head.join(" "))
            } else {
                format!("{l}\r\n")
            }
        })
        .chain(["a=rtpmap:0 PCMU/8000\r\n".to_string()])
        .collect();
    let (status, error, message) =
        error_of(post_offer(&base, "/whip/live", &obs, &pcmu).await).await;
    assert_eq!((status, error.as_str()), (400, "bad_sdp"), "{message}");
    assert!(
        message.contains("no codec") && message.contains("PCMU"),
        "{message}"
    );

    // The first session still runs: none of the refused offers replaced it.
    let report = counters(&server, "live").await;
    let sessions = report["participants"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{report}");
    assert_eq!(sessions[0]["identity"], "obs");

    // A room admin may end it (and only while it runs: afterwards the URL is unknown to it).
    let admin = token(
        &server,
        "live",
        "host",
        Grants {
            room_admin: true,
            ..Grants::default()
        },
    );
    let http = reqwest::Client::new();
    for expected in [200, 404] {
        let res = http
            .delete(format!("{base}{location}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && counters(&server, "live").await["participants"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let left = counters(&server, "live").await;
    assert!(
        left["participants"].as_array().is_none_or(|p| p.is_empty()),
        "{left}"
    );
}

/// ETag, PATCH (trickle candidates, ICE restart with If-Match) and CORS (RFC 9725).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_patch_restarts_ice_and_cors_admits_configured_origins() {
    let server = start().await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let obs = token(&server, "live", "obs", Grants::default());

    // Preflight and a cross-origin POST from the configured origin; another origin gets no
    // CORS headers.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/whip/live"))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://player.example");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PATCH"));
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let stranger = http
        .request(reqwest::Method::OPTIONS, format!("{base}/whip/live"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!stranger
        .headers()
        .contains_key("access-control-allow-origin"));

    let mut publisher = NetPeer::new().await;
    let offer = publisher.peer.publish_offer(true, true).unwrap();
    let res = http
        .post(format!("{base}/whip/live"))
        .bearer_auth(&obs)
        .header("origin", "https://player.example")
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let h = res.headers().clone();
    assert_eq!(h["access-control-allow-origin"], "https://player.example");
    assert!(h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("location"));
    let location = h["location"].to_str().unwrap().to_string();
    let etag = h["etag"].to_str().unwrap().to_string();
    let answer = res.text().await.unwrap();
    publisher.peer.accept_answer(&answer).unwrap();
    let ok = run_until(&mut [&mut publisher], Duration::from_secs(10), |ps| {
        ps[0].peer.connected
    })
    .await;
    assert!(ok, "the publisher connected");

    let patch = |body: String, if_match: &str| {
        http.patch(format!("{base}{location}"))
            .bearer_auth(&obs)
            .header("content-type", "application/trickle-ice-sdpfrag")
            .header("if-match", if_match)
            .body(body)
    };
    // Trickled candidates: 204, same ETag; a stale ETag: 412.
    let trickle = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n".to_string();
    let res = patch(trickle.clone(), &etag).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);
    let res = patch(trickle, "\"stale\"").send().await.unwrap();
    assert_eq!(res.status(), 412);
    // Someone else's token may not patch.
    let res = http
        .patch(format!("{base}{location}"))
        .bearer_auth(token(&server, "live", "viewer", Grants::default()))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=end-of-candidates\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // ICE restart onto a new socket: the client's new credentials in, the server's out; the
    // answer the client applies is the first one with the server's new credentials.
    let old_socket = std::mem::replace(
        &mut publisher.socket,
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let restart_offer = publisher
        .peer
        .restart_ice(publisher.socket.local_addr().unwrap())
        .unwrap();
    drop(old_socket);
    let line = |sdp: &str, name: &str| {
        sdp.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}"))
            .to_string()
    };
    let frag = format!(
        "{}\r\n{}\r\n",
        line(&restart_offer, "a=ice-ufrag:"),
        line(&restart_offer, "a=ice-pwd:")
    );
    let res = patch(frag, "*").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/trickle-ice-sdpfrag"
    );
    let new_etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    let server_frag = res.text().await.unwrap();
    let (ufrag, pwd) = (
        line(&server_frag, "a=ice-ufrag:"),
        line(&server_frag, "a=ice-pwd:"),
    );
    // Candidates name their ufrag too (`... typ host ufrag X`): all of it changes.
    let restarted_answer = answer
        .replace(
            &line(&answer, "a=ice-ufrag:")["a=ice-ufrag:".len()..],
            &ufrag["a=ice-ufrag:".len()..],
        )
        .replace(&line(&answer, "a=ice-pwd:"), &pwd);
    publisher.peer.accept_answer(&restarted_answer).unwrap();
    let before = counters(&server, "live").await["participants"][0]["packets_in"]
        .as_u64()
        .unwrap();
    let mut after = before;
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && after < before + 100 {
        run_until(&mut [&mut publisher], Duration::from_millis(500), |_| false).await;
        after = counters(&server, "live").await["participants"][0]["packets_in"]
            .as_u64()
            .unwrap();
    }
    assert!(
        after >= before + 100,
        "media after the ICE restart: {before} -> {after}"
    );
}

#[tokio::test]
async fn every_port_in_use_is_reported_at_once_with_its_flag() {
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // TURN takes its port over UDP and TCP: hold both, so no other test's connection has the
    // TCP twin of a free UDP port (it would be reported too).
    let turn = (0..100)
        .find_map(|_| {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let tcp = std::net::TcpListener::bind(udp.local_addr().unwrap()).ok()?;
            Some((udp, tcp))
        })
        .expect("a port free over UDP and TCP");
    let mut settings = common::settings();
    settings.http_addr = http.local_addr().unwrap();
    settings.media_udp_addr = media.local_addr().unwrap();
    settings.turn.addr = turn.0.local_addr().unwrap();
    let err = match stoa::start(&settings).await {
        Ok(_) => panic!("started on ports in use"),
        Err(e @ stoa::StartError::PortsInUse(_)) => e.to_string(),
        Err(e) => panic!("not reported as ports in use: {e:?}"),
    };
    for (addr, flag) in [
        (settings.http_addr, "--http-addr"),
        (settings.media_udp_addr, "--media-udp-addr"),
        (settings.turn.addr, "--turn-addr"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&addr.to_string()) && l.contains(flag)),
            "{addr} and {flag} in: {err}"
        );
    }
    assert!(err.contains("--no-turn"), "{err}");
    assert!(
        !err.contains("--media-tcp-addr"),
        "only what is taken: {err}"
    );
    assert_eq!(
        err.lines().count(),
        5,
        "one heading and four ports (TURN's over UDP and TCP): {err}"
    );

    drop((http, media, turn));
    let running = common::start_with(&settings).await;
    assert_eq!(
        stoa::open_url(running.http_addr),
        format!("http://{}/", running.http_addr)
    );
    assert_eq!(
        stoa::open_url("0.0.0.0:8080".parse().unwrap()),
        "http://localhost:8080/"
    );
}
