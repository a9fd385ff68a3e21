//! Shared by the integration tests: an in-process Stoa server on loopback with free ports.
#![allow(dead_code)] // each test binary uses a different part of it

use stoa::config::{Settings, TurnSettings};

/// Starts a server on 127.0.0.1 with every port picked by the OS and a fresh data dir.
pub async fn start() -> stoa::Running {
    start_with(&settings()).await
}

pub async fn start_with(settings: &Settings) -> stoa::Running {
    stoa::start(settings).await.expect("server starts")
}

/// Loopback-only settings with a fresh data dir (SQLite inside it).
pub fn settings() -> Settings {
    let dir =
        std::env::temp_dir().join(format!("stoa-it-{}-{}", std::process::id(), rand_suffix()));
    Settings {
        database_url: format!("sqlite://{}", dir.join("stoa.db").display()),
        data_dir: dir,
        http_addr: "127.0.0.1:0".parse().unwrap(),
        media_udp_addr: "127.0.0.1:0".parse().unwrap(),
        media_tcp_addr: "127.0.0.1:0".parse().unwrap(),
        public_ip: None,
        jwt_secret: Some("integration-test-secret".into()),
        log: "warn".into(),
        room_limits: Default::default(),
        // More workers than this machine's cores, so rooms land on different workers and
        // media crosses between them (the front socket, TURN and ICE-TCP live on worker 0).
        media_workers: 3,
        cors_origins: vec!["https://player.example".into()],
        turn: TurnSettings {
            enabled: true,
            addr: "127.0.0.1:0".parse().unwrap(),
            alt_addr: None,
            tls_addr: "127.0.0.1:0".parse().unwrap(),
            tls_cert: None,
            realm: "stoa".into(),
            secret: Some("turn-secret".into()),
            users: Vec::new(),
            allow_peers: Vec::new(),
            deny_peers: Vec::new(),
            relay_ip: None,
            host: None,
            external_urls: Vec::new(),
            max_allocations: 10,
            max_bandwidth: None,
        },
        admin_token: None,
        metrics_token: None,
        connections: Default::default(),
        signups_per_hour: stoa::guard::SIGNUPS_PER_ADDRESS,
    }
}

/// `GET /api/v1/rooms/{room}/counters` with a room-admin token.
pub async fn counters(server: &stoa::Running, room: &str) -> serde_json::Value {
    let admin = server.keys.mint(
        &stoa_proto::RoomName::new(room).unwrap(),
        "admin",
        "admin",
        stoa_proto::Grants {
            room_admin: true,
            ..Default::default()
        },
        std::time::Duration::from_secs(600),
    );
    reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/rooms/{room}/counters",
            server.http_addr
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
