//! The `stoa` server: configuration, the HTTP/WebSocket surface (web app, REST API, signaling,
//! WHIP/WHEP), the door of rooms, presence, metrics and start-up, which binds the sockets and
//! starts the media runtime (`stoa-media`, re-exported as [`media`]).

pub mod api;
pub mod assets;
pub mod auth;
pub mod config;
pub mod door;
pub mod error;
pub mod guard;
pub mod http;
pub mod ice;
pub mod listener;
pub mod metrics;
mod ports;
pub mod presence;
pub mod whip;
pub mod ws;

pub use stoa_media as media;
pub use stoa_proto::clock;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use config::Settings;

/// A started server: where it listens, and the task serving HTTP.
pub struct Running {
    pub http_addr: SocketAddr,
    pub media_udp_addr: SocketAddr,
    pub media_tcp_addr: SocketAddr,
    /// The primary STUN/TURN address, when the built-in server runs.
    pub turn_addr: Option<SocketAddr>,
    pub keys: Arc<auth::TokenKeys>,
    pub serve: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Why the server could not start: what failed, with what to change where there is a choice.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configured addresses are taken: all of them, each with the flag that moves it.
    #[error("{0}")]
    PortsInUse(String),
    #[error("cannot create the data dir {}: {source}", dir.display())]
    DataDir { dir: PathBuf, source: io::Error },
    #[error("cannot load the token key from {}: {source}", dir.display())]
    TokenKey { dir: PathBuf, source: io::Error },
    #[error("cannot load the TURN secret from {}: {source}", dir.display())]
    TurnSecret { dir: PathBuf, source: io::Error },
    /// `url` has its password masked.
    #[error("cannot open the database {url}: {source}")]
    Database {
        url: String,
        source: stoa_store::StoreError,
    },
    #[error("cannot bind media ports {udp} (UDP) / {tcp} (TCP): {source}")]
    MediaPorts {
        udp: SocketAddr,
        tcp: SocketAddr,
        source: io::Error,
    },
    /// The built-in STUN/TURN server's listeners or settings.
    #[error("{0}")]
    Turn(String),
    #[error("cannot start the media workers: {0}")]
    MediaWorkers(io::Error),
    #[error("cannot bind HTTP address {addr}: {source}")]
    Http { addr: SocketAddr, source: io::Error },
}

/// The address to type into a browser on this machine for an HTTP server listening at `addr`
/// (a wildcard address is reached as localhost).
pub fn open_url(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => format!("http://localhost:{}/", addr.port()),
        std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{}/", addr.port()),
        ip => format!("http://{ip}:{}/", addr.port()),
    }
}

/// Binds every socket, starts the media worker and serves HTTP in the background.
/// Port 0 in any address picks a free port (tests do this).
pub async fn start(settings: &Settings) -> Result<Running, StartError> {
    keep_allocator_memory_returnable();
    ports::check_free(settings).map_err(StartError::PortsInUse)?;
    let dir = || settings.data_dir.clone();
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|source| StartError::DataDir { dir: dir(), source })?;
    let keys = Arc::new(
        auth::TokenKeys::load(&settings.data_dir, settings.jwt_secret.as_deref())
            .map_err(|source| StartError::TokenKey { dir: dir(), source })?,
    );
    let store = open_store(&settings.database_url).await?;
    let media_ports = |source| StartError::MediaPorts {
        udp: settings.media_udp_addr,
        tcp: settings.media_tcp_addr,
        source,
    };
    let sockets = media::MediaSockets::bind(
        settings.media_udp_addr,
        settings.media_tcp_addr,
        settings.public_ip,
    )
    .map_err(media_ports)?;
    let media_udp_addr = sockets.udp.local_addr().map_err(media_ports)?;
    let media_tcp_addr = sockets.tcp.local_addr().map_err(media_ports)?;
    let turn_secret = ice::load_secret(&settings.data_dir, settings.turn.secret.as_deref())
        .map_err(|source| StartError::TurnSecret { dir: dir(), source })?;
    let turn = match settings.turn.enabled {
        true => Some(
            turn_tls_cert(settings)
                .and_then(|(cert, key)| {
                    media::relay::bind(
                        &settings.turn,
                        settings.public_ip,
                        (&cert, &key),
                        &sockets.advertised,
                        turn_secret.clone(),
                    )
                })
                .map_err(StartError::Turn)?,
        ),
        false => None,
    };
    let ports = ice::AdvertPorts {
        turn: turn
            .as_ref()
            .map(|t| t.config.primary.port())
            .unwrap_or(settings.turn.addr.port()),
        turn_alt: turn
            .as_ref()
            .and_then(|t| t.config.alternate)
            .map(|a| a.port()),
        // Only a configured certificate is trusted by browsers; a self-signed one is for tools.
        turn_tls: match (&turn, &settings.turn.tls_cert) {
            (Some(t), Some(_)) => t
                .tls
                .as_ref()
                .and_then(|(l, _)| l.local_addr().ok())
                .map(|a| a.port()),
            _ => None,
        },
        media_udp: media_udp_addr.port(),
        media_tcp: media_tcp_addr.port(),
    };
    let turn_addr = turn.as_ref().map(|t| t.config.primary);
    let ice = Arc::new(ice::IceAdvert::new(&settings.turn, turn_secret, ports));
    let (locks, lock_changes) = tokio::sync::mpsc::unbounded_channel();
    let media = media::spawn(
        sockets,
        turn,
        settings.room_limits,
        settings.media_workers,
        locks,
    )
    .map_err(StartError::MediaWorkers)?;
    tokio::spawn(store_locks(store.clone(), lock_changes));
    let http = |source| StartError::Http {
        addr: settings.http_addr,
        source,
    };
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .map_err(http)?;
    let http_addr = listener.local_addr().map_err(http)?;
    let metrics: Arc<metrics::Metrics> = Default::default();
    let app = http::router(http::AppState {
        media,
        keys: keys.clone(),
        ice,
        store,
        presence: Default::default(),
        guards: Arc::new(guard::Guards::new(settings.signups_per_hour)),
        metrics: metrics.clone(),
        operator: Arc::new(http::OperatorTokens {
            admin: settings.admin_token.clone(),
            metrics: settings.metrics_token.clone(),
        }),
        cors_origins: settings.cors_origins.clone().into(),
    });
    let limits = settings.connections;
    let serve = tokio::spawn(async move {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        listener::serve(listener, app, limits, metrics, shutdown).await
    });
    Ok(Running {
        http_addr,
        media_udp_addr,
        media_tcp_addr,
        turn_addr,
        keys,
        serve,
    })
}

/// Fixes glibc's mmap threshold at 1 MiB. By default it grows to the largest block freed, so
/// after a burst of password hashes (argon2: 19 MiB each) every later one comes from the heap
/// and the heap keeps its peak: 64 concurrent sign-ups left the process at 367 MiB; with a
/// fixed threshold big blocks are mapped and unmapped each time (peak 55 MiB, 16 MiB after).
/// Smaller allocations (packets, messages) are unaffected. Fixing it also stops the trim
/// threshold's growth, so freed heap tops go back to the system.
fn keep_allocator_memory_returnable() {
    // SAFETY: mallopt only sets allocator parameters; it takes the allocator's own locks.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The certificate and key of TURN over TLS: the configured ones, or a self-signed pair.
fn turn_tls_cert(settings: &Settings) -> Result<(PathBuf, PathBuf), String> {
    match &settings.turn.tls_cert {
        Some(pair) => Ok(pair.clone()),
        None => ice::self_signed_turn_cert(&settings.data_dir),
    }
}

/// Stores the locks hosts change in calls (the room has already told everyone).
async fn store_locks(
    store: Arc<dyn stoa_store::Store>,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<media::LockChange>,
) {
    while let Some(change) = changes.recv().await {
        if let Err(e) = store
            .set_locked(&change.meeting_id, change.locked, clock::unix_ms())
            .await
        {
            tracing::error!(error = %e, meeting = %change.meeting_id, locked = change.locked,
                "cannot store the meeting's lock: it holds in the call but not for new joins");
        }
    }
}

/// Connects to the database, applies migrations and tidies what a stopped server left.
async fn open_store(url: &str) -> Result<Arc<dyn stoa_store::Store>, StartError> {
    use stoa_store::Store as _;
    let failed = |source| StartError::Database {
        url: redact(url),
        source,
    };
    let store = stoa_store::connect(url).await.map_err(failed)?;
    let now = clock::unix_ms();
    let closed = store.close_open_attendance(now).await.map_err(failed)?;
    let expired = store.purge_sessions(now).await.map_err(failed)?;
    tracing::info!(
        backend = store.backend(),
        closed_attendance = closed,
        expired_sessions = expired,
        "database ready"
    );
    Ok(Arc::new(store))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
