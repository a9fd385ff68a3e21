//! What strangers can make the server hold, bounded: HTTP connections per address and idle
//! ones, a WebSocket client that never reads, metric series from made-up methods, cookies sent
//! from another site's page, and the security headers of every answer.

mod common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use stoa_proto::{Grants, RoomName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn idle_and_excess_http_connections_are_closed() {
    let mut settings = common::settings();
    settings.connections.header_timeout = Duration::from_secs(1);
    settings.connections.per_address = 4;
    let server = common::start_with(&settings).await;
    let addr = server.http_addr;

    // A connection that never sends a request, and one idle after its first answer.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut kept_alive = TcpStream::connect(addr).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for (name, stream) in [
        ("silent", &mut silent),
        ("idle keep-alive", &mut kept_alive),
    ] {
        let took = closed_within(stream, Duration::from_secs(10)).await;
        assert!(
            took.is_some(),
            "the {name} connection is still open after 10 s"
        );
    }

    // One address holds at most 4; the fifth is closed at once, and a place frees up again.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Started requests keep their connections busy (the head is never finished).
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut fifth, Duration::from_secs(2))
            .await
            .is_some(),
        "a fifth connection from one address is refused"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("stoa_connections_refused_total{listener=\"http\"}"),
        "the refusal is counted"
    );
}

/// ICE-TCP and TURN over TCP close a connection that sends nothing (10 s for a first frame).
#[tokio::test]
async fn silent_media_and_turn_tcp_connections_are_closed() {
    let server = common::start().await;
    let turn = server.turn_addr.expect("TURN runs");
    for (name, addr) in [("ICE-TCP", server.media_tcp_addr), ("TURN-TCP", turn)] {
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let took = closed_within(&mut silent, Duration::from_secs(20)).await;
        assert!(
            took.is_some(),
            "a silent {name} connection is still open after 20 s"
        );
        println!(
            "a silent {name} connection was closed after {:?}",
            took.unwrap()
        );
    }
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series() {
    let server = common::start().await;
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("X{i:04}RANDOM").as_bytes()).unwrap();
        let _ = http
            .request(method, format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("stoa_http_requests_total{"))
        .collect();
    assert!(!metrics.contains("RANDOM"), "a raw method became a label");
    assert!(
        series.iter().any(|l| l.contains("method=\"other\"")),
        "{series:?}"
    );
    assert!(series.len() < 10, "{} series: {series:?}", series.len());
}

#[tokio::test]
async fn metrics_and_admin_apis_take_the_operator_tokens() {
    let mut settings = common::settings();
    settings.admin_token = Some("admin-token-0123456789".into());
    settings.metrics_token = Some("metrics-token-0123456789".into());
    let server = common::start_with(&settings).await;
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let scrape = |token: Option<&'static str>| {
        let mut req = http.get(format!("{base}/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(scrape(None).await.unwrap().status(), 401);
    assert_eq!(scrape(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(
        scrape(Some("metrics-token-0123456789"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        scrape(Some("admin-token-0123456789"))
            .await
            .unwrap()
            .status(),
        200
    );
    // The admin token is a room admin of any room (an empty room: 404), the metrics token not.
    let limits = |token: &'static str| {
        http.get(format!("{base}/api/v1/rooms/any-room/limits"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        limits("admin-token-0123456789").await.unwrap().status(),
        404
    );
    assert_eq!(
        limits("metrics-token-0123456789").await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn cookies_from_another_origin_do_not_act_and_answers_carry_security_headers() {
    let server = common::start().await;
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&serde_json::json!({"email": "ann@example.org", "password": "correct horse", "display_name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let host = server.http_addr.to_string();
    let create = |origin: Option<String>| {
        let mut req = http
            .post(format!("{base}/api/v1/meetings"))
            .header("cookie", &cookie)
            .header("content-type", "text/plain")
            .body("{}");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let res = create(Some("http://evil.example:8800".into()))
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "cross_origin"
    );
    let res = create(Some(format!("http://{host}"))).await.unwrap();
    assert_ne!(res.status(), 403, "a same-origin page acts");
    let res = http.get(format!("{base}/")).send().await.unwrap();
    let h = res.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    // Behind an HTTPS proxy the session cookie is Secure.
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&serde_json::json!({"email": "ann@example.org", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .ends_with("; Secure"));
}

/// A participant whose client stops reading is removed within seconds while another floods
/// the room with chat, instead of the server queueing for it without end.
#[tokio::test]
async fn a_signaling_client_that_never_reads_is_dropped() {
    let server = common::start().await;
    let room = RoomName::new("slow-reader").unwrap();
    let token = |who: &str| {
        server.keys.mint(
            &room,
            who,
            who,
            Grants {
                publish: true,
                subscribe: true,
                publish_data: true,
                room_admin: false,
            },
            Duration::from_secs(600),
        )
    };
    let url = format!("ws://{}/ws", server.http_addr);
    let join = |t: String| {
        let url = url.clone();
        async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            ws.send(Message::Text(
                serde_json::json!({"type": "join", "token": t})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
            loop {
                let msg = ws.next().await.unwrap().unwrap();
                if msg.to_text().unwrap_or("").contains("\"joined\"") {
                    return ws;
                }
            }
        }
    };
    // The slow one joins, then is never read again (its socket buffers fill up).
    let _slow = join(token("slow")).await;
    let mut flooder = join(token("flooder")).await;
    let text = "x".repeat(4000);
    let chat = Message::Text(
        serde_json::json!({"type": "chat", "text": text})
            .to_string()
            .into(),
    );
    let start = Instant::now();
    let gone = loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the slow reader was never dropped"
        );
        for _ in 0..50 {
            flooder.send(chat.clone()).await.unwrap();
        }
        // Drain what the flooder gets back, so only the slow one falls behind.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(5), flooder.next()).await
        {
        }
        let report = common::counters(&server, "slow-reader").await;
        let names: Vec<&str> = report["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["identity"].as_str())
            .collect();
        if !names.contains(&"slow") {
            break start.elapsed();
        }
    };
    println!("the slow reader was dropped after {gone:?}");
}
