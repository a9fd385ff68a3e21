//! The `stoa` server: configuration, the HTTP/WebSocket surface, the media worker that drives
//! the SFU core over real sockets, and the CLI subcommands. All I/O of Stoa lives here.

pub mod assets;
pub mod auth;
pub mod config;
pub mod http;
pub mod media;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use config::Settings;

/// A started server: where it listens, and the task serving HTTP.
pub struct Running {
    pub http_addr: SocketAddr,
    pub media_udp_addr: SocketAddr,
    pub media_tcp_addr: SocketAddr,
    pub keys: Arc<auth::TokenKeys>,
    pub serve: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds every socket, starts the media worker and serves HTTP in the background.
/// Port 0 in any address picks a free port (tests do this).
pub async fn start(settings: &Settings) -> Result<Running, String> {
    let keys = Arc::new(
        auth::TokenKeys::load(&settings.data_dir, settings.jwt_secret.as_deref()).map_err(|e| {
            format!(
                "cannot load the token key from {}: {e}",
                settings.data_dir.display()
            )
        })?,
    );
    let sockets = media::MediaSockets::bind(
        settings.media_udp_addr,
        settings.media_tcp_addr,
        settings.public_ip,
    )
    .map_err(|e| {
        format!(
            "cannot bind media ports {} (UDP) / {} (TCP): {e}",
            settings.media_udp_addr, settings.media_tcp_addr
        )
    })?;
    let media_udp_addr = sockets.udp.local_addr().map_err(|e| e.to_string())?;
    let media_tcp_addr = sockets.tcp.local_addr().map_err(|e| e.to_string())?;
    let media = media::spawn(sockets).map_err(|e| format!("cannot start the media worker: {e}"))?;
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .map_err(|e| format!("cannot bind HTTP address {}: {e}", settings.http_addr))?;
    let http_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = http::router(http::AppState {
        media,
        keys: keys.clone(),
    });
    let serve = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });
    Ok(Running {
        http_addr,
        media_udp_addr,
        media_tcp_addr,
        keys,
        serve,
    })
}
