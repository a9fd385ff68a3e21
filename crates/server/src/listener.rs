//! The HTTP listener: accepts connections under caps (per client address and in all), serves
//! the router on each with HTTP/1.1 (upgrades for WebSockets), and closes connections that
//! send no complete request head in time, idle keep-alive ones included.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

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

/// Open connections per client address; a [`Slot`] gives its place back when dropped.
#[derive(Default)]
pub struct Occupancy {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

pub struct Slot {
    occupancy: Arc<Occupancy>,
    addr: IpAddr,
}

/// The place of the connection a request came on, in the request's extensions: a WebSocket
/// keeps it for its whole life, so upgraded connections count against the caps too.
#[derive(Clone)]
pub struct ConnectionSlot {
    _slot: Arc<Slot>,
}

impl Occupancy {
    /// A place for one more connection from `addr`, if neither cap is reached.
    pub fn enter(self: &Arc<Self>, addr: IpAddr, per_address: usize, total: usize) -> Option<Slot> {
        let mut open = self.open.lock().expect("occupancy lock");
        let (all, by_addr) = &mut *open;
        let mine = by_addr.entry(addr).or_default();
        if *mine >= per_address || *all >= total {
            if *mine == 0 {
                by_addr.remove(&addr);
            }
            return None;
        }
        *mine += 1;
        *all += 1;
        Some(Slot {
            occupancy: self.clone(),
            addr,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.occupancy.open.lock().expect("occupancy lock");
        let (all, by_addr) = &mut *open;
        *all -= 1;
        if let Some(n) = by_addr.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                by_addr.remove(&self.addr);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_all_and_places_come_back() {
        let occupancy = Arc::new(Occupancy::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = occupancy.enter(a, 2, 3).unwrap();
        let _second = occupancy.enter(a, 2, 3).unwrap();
        assert!(occupancy.enter(a, 2, 3).is_none(), "per address");
        let _third = occupancy.enter(b, 2, 3).unwrap();
        assert!(occupancy.enter(b, 2, 3).is_none(), "in all");
        drop(first);
        assert!(occupancy.enter(a, 2, 3).is_some());
    }
}
