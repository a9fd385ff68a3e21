//! The load tester against an in-process server on loopback: 2 publishers and 2 subscribers
//! through the guest endpoint, WebSocket signaling and real UDP media.

use std::time::Duration;

mod common;
use common::{counters, start};
use stoa_loadtest::{new_meeting, run, Config, Transport, VideoLayout};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_publishers_and_two_subscribers_receive_everything() {
    let server = start().await;
    let url = format!("http://{}", server.http_addr);
    let room = new_meeting(&url).await.expect("an ad-hoc meeting");
    let mut cfg = Config::new(url, room.clone());
    cfg.publishers = 2;
    cfg.subscribers = 2;
    cfg.duration = Duration::from_secs(4);
    cfg.ramp_rate = 20.0;
    let report = run(&cfg).await.expect("the load test runs");
    let json = serde_json::to_string_pretty(&report).unwrap();
    println!("{json}");
    // Publishers get the other publisher's audio+video, subscribers both publishers'.
    assert_eq!(report.tracks_expected, 2 * 2 + 2 * 4, "{json}");
    assert_eq!(report.tracks_received, report.tracks_expected, "{json}");
    assert_eq!(report.errors, 0, "{json}");
    assert_eq!(report.participants_connected, 4, "{json}");
    assert!(report.packets_received > 0, "{json}");
    assert!(report.packet_loss < 0.05, "{json}");
    let p50 = report.latency_ms.p50.expect("latency measured");
    assert!(p50 > 0.0 && p50 < 1000.0, "{json}");
    assert!(report.latency_ms.p99.unwrap() >= p50, "{json}");
    assert!(report.join_ms.p50.is_some(), "{json}");
    assert!(report.bitrate_kbps.mean.unwrap() > 0.0, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulcast_publishers_and_a_grid_layout() {
    let server = start().await;
    let url = format!("http://{}", server.http_addr);
    let room = new_meeting(&url).await.expect("an ad-hoc meeting");
    let mut cfg = Config::new(url, room.clone());
    cfg.publishers = 2;
    cfg.subscribers = 2;
    cfg.simulcast = true;
    cfg.video_layout = Some(VideoLayout::Grid3x3);
    cfg.duration = Duration::from_secs(4);
    cfg.ramp_rate = 20.0;
    let report = run(&cfg).await.expect("the load test runs");
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(report.tracks_expected, 2 * 2 + 2 * 4, "{json}");
    assert_eq!(report.tracks_received, report.tracks_expected, "{json}");
    assert_eq!(report.errors, 0, "{json}");
    assert!(report.packet_loss < 0.05, "{json}");
    assert!(report.latency_ms.p50.is_some(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whip_publishers_and_whep_subscribers_receive_everything() {
    let server = start().await;
    let url = format!("http://{}", server.http_addr);
    let room = new_meeting(&url).await.expect("an ad-hoc meeting");
    let mut cfg = Config::new(url, room.clone());
    cfg.transport = Transport::WhipWhep;
    cfg.publishers = 2;
    cfg.subscribers = 2;
    cfg.duration = Duration::from_secs(4);
    cfg.ramp_rate = 20.0;
    let report = run(&cfg).await.expect("the load test runs");
    let json = serde_json::to_string_pretty(&report).unwrap();
    // WHIP publishers receive nothing; WHEP subscribers get both publishers' audio+video.
    assert_eq!(report.tracks_expected, 2 * 4, "{json}");
    assert_eq!(report.tracks_received, report.tracks_expected, "{json}");
    assert_eq!(report.errors, 0, "{json}");
    assert_eq!(report.participants_connected, 4, "{json}");
    assert!(report.latency_ms.p50.is_some(), "{json}");
    // The sessions were deleted at the end: nobody is left in the room.
    let counters = counters(&server, &room).await;
    assert_eq!(
        counters["participants"],
        serde_json::json!([]),
        "{counters}"
    );

    // A WHIP endpoint that does not exist: every participant errs with the HTTP status.
    cfg.whip_url = Some(format!("http://{}/nowhere", server.http_addr));
    cfg.subscribers = 0;
    cfg.publishers = 1;
    cfg.duration = Duration::from_millis(200);
    let report = run(&cfg).await.expect("setup succeeds");
    assert_eq!(report.errors, 1, "{report:?}");
    assert!(report.error_messages[0].contains("404"), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_publishers_and_a_bad_server_url() {
    let server = start().await;
    let url = format!("http://{}/", server.http_addr);
    let room = new_meeting(&url).await.expect("an ad-hoc meeting");
    let mut cfg = Config::new(url, room.clone());
    cfg.publishers = 2;
    cfg.subscribers = 1;
    cfg.audio_only = true;
    cfg.duration = Duration::from_secs(2);
    cfg.ramp_rate = 20.0;
    let report = run(&cfg).await.expect("the load test runs");
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(report.tracks_expected, 1 + 1 + 2, "{json}");
    assert_eq!(report.tracks_received, report.tracks_expected, "{json}");
    assert_eq!(report.errors, 0, "{json}");

    // Nothing listens on the HTTP port of a stopped listener: every participant errs, no panic.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut cfg = Config::new(format!("http://{addr}"), "nobody");
    cfg.publishers = 1;
    cfg.subscribers = 1;
    cfg.duration = Duration::from_millis(200);
    cfg.ramp_rate = 50.0;
    let report = run(&cfg).await.expect("setup succeeds");
    assert_eq!(report.errors, 2, "{report:?}");
    assert!(
        report.error_messages[0].contains("guest join"),
        "{report:?}"
    );
    assert_eq!(report.tracks_received, 0);

    assert!(run(&Config::new("ftp://x", "r")).await.is_err());
    assert!(run(&Config::new("http://127.0.0.1:1", "bad room!"))
        .await
        .is_err());
}
