//! The HTTP listener: accepts connections under caps (per client address and in all), serves
//! the router on each with HTTP/1.1 (upgrades for WebSockets), and closes connections that
//! send no complete request head in time, idle keep-alive ones included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use stoa_media::occupancy::{Occupancy, Slot};

use crate::metrics::Metrics;

/// How many connections strangers may hold open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections from one client address.
    pub per_address: usize,
    /// Open connections in all.
    pub total: usize,
    /// A connection must send a whole request head this soon after opening or after its
    /// previous answer.
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            per_address: 256,
            total: 8192,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// The place of the connection a request came on, in the request's extensions: a WebSocket
/// keeps it for its whole life, so upgraded connections count against the caps too.
#[derive(Clone)]
pub struct ConnectionSlot {
    _slot: Arc<Slot>,
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let occupancy = Arc::new(Occupancy::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or similar: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let Some(slot) = occupancy.enter(peer.ip(), limits.per_address, limits.total) else {
            metrics.count_refused_connection("http");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let http = http.clone();
        let slot = ConnectionSlot {
            _slot: Arc::new(slot),
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let extensions = req.extensions_mut();
                extensions.insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                extensions.insert(slot.clone());
                app.clone().oneshot(req)
            });
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
    }
}
