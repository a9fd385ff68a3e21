//! The STUN/TURN server's I/O, driven by the media worker: listener sockets (UDP, plus TCP and
//! TLS streams delivered as commands), one UDP socket per relay allocation, and the in-process
//! hand-off between a relay and the SFU.
//!
//! A browser relayed to Stoa's own SFU costs no socket round trip: data for the SFU's media
//! address is handed to the media worker's delivery function (its source is the relayed
//! address), and the SFU's packets for a relayed address go straight back into the TURN core.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::task::Poll;
use std::time::Instant;

use stoa_sfu::str0m::net::Protocol;
use stoa_sfu::Datagram;
use stoa_turn::{ClientAction, Event, FrameLen, ToClient, Transport, TurnServer};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::occupancy::Occupancy;

/// Largest datagram or de-framed stream message handled.
const MAX_MESSAGE: usize = 65536;
/// Socket buffers asked for on listener and relay sockets (the kernel caps them at
/// `net.core.rmem_max`/`wmem_max`), so bursts wait in the kernel instead of being dropped
/// while the worker is busy.
const SOCKET_BUFFER: usize = 4 << 20;

/// Enlarges a UDP socket's kernel buffers; failure only costs burst tolerance.
pub fn enlarge_buffers(socket: &std::net::UdpSocket) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
}

/// The ports with a relay allocation, readable from every media worker without a lock: SFU
/// datagrams for TURN's relay IP on one of these ports go to the TURN core in-process.
#[derive(Clone)]
pub struct RelayPorts(std::sync::Arc<[std::sync::atomic::AtomicU64]>);

impl Default for RelayPorts {
    fn default() -> Self {
        Self((0..1024).map(|_| Default::default()).collect())
    }
}

impl RelayPorts {
    pub fn contains(&self, port: u16) -> bool {
        let word = self.0[port as usize / 64].load(std::sync::atomic::Ordering::Relaxed);
        word & (1 << (port % 64)) != 0
    }

    fn set(&self, port: u16, allocated: bool) {
        let (word, bit) = (&self.0[port as usize / 64], 1u64 << (port % 64));
        match allocated {
            true => word.fetch_or(bit, std::sync::atomic::Ordering::Relaxed),
            false => word.fetch_and(!bit, std::sync::atomic::Ordering::Relaxed),
        };
    }
}

/// Datagrams taken from one socket per wake-up. Small batches keep the bursts sent to any
/// one receiver small (a long drain turns into a burst that overflows a peer's socket
/// buffer) and let the other sockets take turns.
const DRAIN_BUDGET: usize = 32;

/// Which socket is ready to read.
pub enum Ready {
    Listener(usize),
    Relay(u16),
}

pub struct TurnIo {
    core: TurnServer,
    /// UDP listeners and their local addresses (primary first, then RFC 5780 alternates).
    listeners: Vec<(UdpSocket, SocketAddr)>,
    relays: HashMap<u16, UdpSocket>,
    relay_ports: RelayPorts,
    relay_ip: IpAddr,
    /// Where relay sockets bind: the relay IP when it is local, else the wildcard (1:1 NAT).
    relay_bind_ip: IpAddr,
    /// The SFU's media addresses: relayed data for these is handed over in-process.
    own_media: Vec<SocketAddr>,
    /// TCP/TLS client connections by `(client, local listener)`.
    streams: HashMap<(SocketAddr, SocketAddr), mpsc::Sender<Vec<u8>>>,
    buf: Vec<u8>,
    out: Vec<u8>,
    pub send_errors: u64,
    /// Alternates which kind of socket is looked at first, so neither starves the other.
    relays_first: std::cell::Cell<bool>,
}

impl TurnIo {
    pub fn new(
        core: TurnServer,
        listeners: Vec<(UdpSocket, SocketAddr)>,
        relay_ip: IpAddr,
        relay_bind_ip: IpAddr,
        own_media: Vec<SocketAddr>,
        relay_ports: RelayPorts,
    ) -> Self {
        Self {
            core,
            listeners,
            relays: HashMap::new(),
            relay_ports,
            relay_ip,
            relay_bind_ip,
            own_media,
            streams: HashMap::new(),
            buf: vec![0; MAX_MESSAGE],
            out: vec![0; MAX_MESSAGE],
            send_errors: 0,
            relays_first: std::cell::Cell::new(false),
        }
    }

    /// Waits until a listener or relay socket has data.
    pub async fn readable(&self) -> Ready {
        let relays_first = !self.relays_first.get();
        self.relays_first.set(relays_first);
        poll_fn(|cx| {
            let ready = |socket: &UdpSocket, cx: &mut std::task::Context<'_>| {
                matches!(socket.poll_recv_ready(cx), Poll::Ready(Ok(())))
            };
            let listener = |cx: &mut std::task::Context<'_>| {
                self.listeners
                    .iter()
                    .position(|(socket, _)| ready(socket, cx))
                    .map(Ready::Listener)
            };
            let relay = |cx: &mut std::task::Context<'_>| {
                self.relays
                    .iter()
                    .find(|(_, socket)| ready(socket, cx))
                    .map(|(port, _)| Ready::Relay(*port))
            };
            let found = if relays_first {
                relay(cx).or_else(|| listener(cx))
            } else {
                listener(cx).or_else(|| relay(cx))
            };
            found.map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        let mut out = std::mem::take(&mut self.out);
        self.apply_events(&mut out);
        self.out = out;
    }

    pub fn stats(&self) -> stoa_turn::TurnStats {
        self.core.stats()
    }

    /// Drains a ready socket; `to_sfu` takes data relayed to the SFU's media address.
    pub fn on_ready(&mut self, ready: Ready, to_sfu: &mut dyn FnMut(Datagram)) {
        match ready {
            Ready::Listener(i) => self.drain_listener(i, to_sfu),
            Ready::Relay(port) => self.drain_relay(port),
        }
    }

    fn drain_listener(&mut self, i: usize, to_sfu: &mut dyn FnMut(Datagram)) {
        for _ in 0..DRAIN_BUDGET {
            let Some((socket, local)) = self.listeners.get(i) else {
                return;
            };
            let local = *local;
            let (len, client) = match socket.try_recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(_) => return,
            };
            let data = std::mem::take(&mut self.buf);
            self.client_message(Transport::Udp, local, client, &data[..len], to_sfu);
            self.buf = data;
        }
    }

    /// One message from a client, on a UDP listener or de-framed from a TCP/TLS stream.
    pub fn client_message(
        &mut self,
        transport: Transport,
        local: SocketAddr,
        client: SocketAddr,
        data: &[u8],
        to_sfu: &mut dyn FnMut(Datagram),
    ) {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.out);
        let action = self.core.handle_client(
            now,
            stoa_proto::clock::unix_secs(),
            transport,
            local,
            client,
            data,
            &mut out,
        );
        // Relay sockets must exist before a reply announces them.
        let replacement = self.apply_events(&mut out);
        match (action, replacement) {
            (_, Some(r)) => self.send_to_client(r.transport, r.local, r.client, &out[..r.len]),
            (ClientAction::None, None) => {}
            (ClientAction::Reply { from, len }, None) => {
                self.send_to_client(transport, from, client, &out[..len])
            }
            (
                ClientAction::ToPeer {
                    relay_port,
                    peer,
                    payload,
                },
                None,
            ) => {
                if self.own_media.contains(&peer) {
                    let source = SocketAddr::new(self.relay_ip, relay_port);
                    to_sfu(Datagram {
                        proto: Protocol::Udp,
                        source,
                        destination: peer,
                        contents: payload,
                    });
                } else if let Some(socket) = self.relays.get(&relay_port) {
                    if socket.try_send_to(payload, peer).is_err() {
                        self.send_errors += 1;
                    }
                }
            }
        }
        self.out = out;
    }

    fn drain_relay(&mut self, port: u16) {
        for _ in 0..DRAIN_BUDGET {
            let Some(socket) = self.relays.get(&port) else {
                return;
            };
            let (len, peer) = match socket.try_recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(_) => return,
            };
            let data = std::mem::take(&mut self.buf);
            self.peer_data(port, peer, &data[..len]);
            self.buf = data;
        }
    }

    fn peer_data(&mut self, port: u16, peer: SocketAddr, data: &[u8]) {
        let mut out = std::mem::take(&mut self.out);
        if let Some(ToClient {
            transport,
            local,
            client,
            len,
        }) = self
            .core
            .handle_peer(Instant::now(), port, peer, data, &mut out)
        {
            self.send_to_client(transport, local, client, &out[..len]);
        }
        self.out = out;
    }

    /// Takes an SFU datagram addressed to one of our relayed addresses; `false` if it is not.
    pub fn deliver_from_sfu(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        if destination.ip() != self.relay_ip || !self.relays.contains_key(&destination.port()) {
            return false;
        }
        self.peer_data(destination.port(), source, contents);
        true
    }

    fn send_to_client(
        &mut self,
        transport: Transport,
        from: SocketAddr,
        client: SocketAddr,
        data: &[u8],
    ) {
        let sent = match transport {
            Transport::Udp => self
                .listeners
                .iter()
                .find(|(_, local)| *local == from)
                .or(self.listeners.first())
                .is_some_and(|(socket, _)| socket.try_send_to(data, client).is_ok()),
            Transport::Tcp | Transport::Tls => self
                .streams
                .get(&(client, from))
                .is_some_and(|w| w.try_send(data.to_vec()).is_ok()),
        };
        if !sent {
            self.send_errors += 1;
        }
    }

    pub fn stream_opened(
        &mut self,
        client: SocketAddr,
        local: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    ) {
        self.streams.insert((client, local), writer);
    }

    pub fn stream_closed(&mut self, transport: Transport, client: SocketAddr, local: SocketAddr) {
        self.streams.remove(&(client, local));
        self.core.client_closed(transport, local, client);
        let mut out = std::mem::take(&mut self.out);
        self.apply_events(&mut out);
        self.out = out;
    }

    /// Binds and releases relay sockets as the core asks. When a bind fails the core writes a
    /// replacement reply into `out` (success on another port, or 508), returned here.
    fn apply_events(&mut self, out: &mut [u8]) -> Option<ToClient> {
        let mut replacement = None;
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::BindRelay { port } => match self.bind_relay(port) {
                    Ok(socket) => {
                        self.relays.insert(port, socket);
                        self.relay_ports.set(port, true);
                    }
                    Err(e) => {
                        tracing::warn!(port, error = %e, "cannot bind a TURN relay port");
                        replacement = self.core.relay_bind_failed(port, out).or(replacement);
                    }
                },
                Event::ReleaseRelay { port } => {
                    self.relays.remove(&port);
                    self.relay_ports.set(port, false);
                }
            }
        }
        replacement
    }

    fn bind_relay(&self, port: u16) -> std::io::Result<UdpSocket> {
        let socket = std::net::UdpSocket::bind((self.relay_bind_ip, port))?;
        socket.set_nonblocking(true)?;
        enlarge_buffers(&socket);
        UdpSocket::from_std(socket)
    }
}

/// Open TURN TCP/TLS connections per client address, and in all.
const STREAMS_PER_ADDRESS: usize = 64;
const STREAMS_TOTAL: usize = 4096;
/// A new TURN connection must send its first message this soon.
const FIRST_MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A TURN client refreshes its allocation at least every 10 minutes (its longest lifetime):
/// a connection silent for longer holds nothing worth keeping.
const STREAM_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(660);

/// Accepts TURN client connections over TCP, or TLS when an acceptor is given, and feeds their
/// de-framed messages to the media worker.
pub async fn accept_streams(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    media: super::MediaHandle,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let occupancy = std::sync::Arc::new(Occupancy::default());
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "TURN accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = occupancy.enter(client.ip(), STREAMS_PER_ADDRESS, STREAMS_TOTAL) else {
            tracing::debug!(%client, "TURN connection refused: too many open");
            continue;
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let media = media.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => match tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    acceptor.accept(stream),
                )
                .await
                {
                    Ok(Ok(s)) => serve_stream(s, transport, client, local, media).await,
                    _ => tracing::debug!(%client, "TURN TLS handshake failed"),
                },
                None => serve_stream(stream, transport, client, local, media).await,
            }
        });
    }
}

/// Splits a client's byte stream into STUN messages and ChannelData frames (RFC 8656 §11.5)
/// and writes the worker's replies back.
async fn serve_stream<S>(
    stream: S,
    transport: Transport,
    client: SocketAddr,
    local: SocketAddr,
    media: super::MediaHandle,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use super::Command;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    media.send(Command::TurnStreamOpen {
        client,
        local,
        writer: tx,
    });
    let write_task = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if writer.write_all(&msg).await.is_err() {
                break;
            }
        }
    });
    let mut pending: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16384];
    let mut heard = false;
    'read: loop {
        let wait = if heard {
            STREAM_IDLE_TIMEOUT
        } else {
            FIRST_MESSAGE_TIMEOUT
        };
        let n = match tokio::time::timeout(wait, reader.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        heard = true;
        pending.extend_from_slice(&chunk[..n]);
        loop {
            match stoa_turn::frame_len(&pending) {
                FrameLen::Len(len) if len > MAX_MESSAGE => break 'read,
                FrameLen::Len(len) if pending.len() >= len => {
                    let message: Vec<u8> = pending.drain(..len).collect();
                    media.send(Command::TurnStreamData {
                        transport,
                        client,
                        local,
                        data: message,
                    });
                }
                FrameLen::Len(_) | FrameLen::NeedHeader => break,
                FrameLen::Invalid => break 'read,
            }
        }
    }
    media.send(Command::TurnStreamClosed {
        transport,
        client,
        local,
    });
    write_task.abort();
}

/// Binds the STUN/TURN listeners and prepares the core's configuration from the TURN
/// settings. `public_ip` is the server's advertised public address, if set; `advertised` are
/// the host's media addresses (for the relay address and self-deny); `tls_cert` the
/// certificate and key files for TURN over TLS (the configured ones, or self-signed).
pub fn bind(
    t: &TurnSettings,
    public_ip: Option<IpAddr>,
    tls_cert: (&Path, &Path),
    advertised: &[IpAddr],
    secret: String,
) -> Result<super::TurnSetup, String> {
    let parse = |list: &[String]| -> Result<Vec<stoa_turn::Cidr>, String> {
        list.iter()
            .map(|c| c.parse().map_err(|e| format!("invalid CIDR {c:?}: {e}")))
            .collect()
    };
    let relay_ip = t
        .relay_ip
        .or(public_ip)
        .or((!t.addr.ip().is_unspecified()).then_some(t.addr.ip()))
        .or(advertised.iter().copied().find(|ip| !ip.is_loopback()))
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut config = stoa_turn::TurnConfig {
        realm: t.realm.clone(),
        relay_ip,
        primary: t.addr,
        alternate: t.alt_addr,
        secret: Some(secret),
        users: t.users.clone(),
        allow_peers: parse(&t.allow_peers)?,
        deny_peers: parse(&t.deny_peers)?,
        max_allocations_per_user: t.max_allocations,
        max_bandwidth_per_allocation: t.max_bandwidth,
        ..Default::default()
    };
    let addrs: Vec<SocketAddr> = match config.discovery_sockets() {
        Some(four) => four.to_vec(),
        None => vec![t.addr],
    };
    let (primary, tcp) = bind_primary(addrs[0])?;
    let mut udp = vec![primary];
    for addr in &addrs[1..] {
        let socket = std::net::UdpSocket::bind(addr)
            .map_err(|e| format!("cannot bind TURN UDP {addr}: {e}"))?;
        udp.push(turn_udp(socket)?);
    }
    // Port 0 (tests) resolves now, so the core knows its real addresses.
    config.primary = udp[0].1;
    if config.alternate.is_some() {
        config.alternate = Some(udp[3].1);
    }
    let tls = bind_tls(t, tls_cert)?;
    config.listen = udp.iter().map(|(_, a)| *a).collect();
    config.listen.extend(
        advertised
            .iter()
            .map(|ip| SocketAddr::new(*ip, config.primary.port())),
    );
    let relay_bind_ip = if std::net::UdpSocket::bind((relay_ip, 0)).is_ok() {
        relay_ip
    } else {
        IpAddr::from([0, 0, 0, 0])
    };
    Ok(super::TurnSetup {
        config,
        udp,
        tcp,
        tls,
        relay_bind_ip,
    })
}

/// The TURN port over UDP and TCP. With port 0 (tests) the UDP port the system picked may be
/// taken over TCP (by some connection's local end): then it picks again.
fn bind_primary(
    addr: SocketAddr,
) -> Result<((std::net::UdpSocket, SocketAddr), std::net::TcpListener), String> {
    let attempts = if addr.port() == 0 { 32 } else { 1 };
    let mut last = String::new();
    for _ in 0..attempts {
        let socket = std::net::UdpSocket::bind(addr)
            .map_err(|e| format!("cannot bind TURN UDP {addr}: {e}"))?;
        let udp = turn_udp(socket)?;
        match std::net::TcpListener::bind(udp.1) {
            Ok(tcp) => {
                tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
                return Ok((udp, tcp));
            }
            Err(e) => last = format!("cannot bind TURN TCP {}: {e}", udp.1),
        }
    }
    Err(last)
}

fn turn_udp(socket: std::net::UdpSocket) -> Result<(std::net::UdpSocket, SocketAddr), String> {
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    enlarge_buffers(&socket);
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    Ok((socket, local))
}

/// The TLS listener with the certificate at `cert`: the configured one, or the server's
/// self-signed one.
fn bind_tls(
    t: &TurnSettings,
    (cert_path, key_path): (&Path, &Path),
) -> Result<Option<(std::net::TcpListener, tokio_rustls::TlsAcceptor)>, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let certs = rustls_pemfile::certs(&mut read(cert_path)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid certificate {}: {e}", cert_path.display()))?;
    let key = rustls_pemfile::private_key(&mut read(key_path)?.as_slice())
        .map_err(|e| format!("invalid key {}: {e}", key_path.display()))?
        .ok_or_else(|| format!("no private key in {}", key_path.display()))?;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("unusable TLS certificate: {e}"))?;
    let listener = std::net::TcpListener::bind(t.tls_addr)
        .map_err(|e| format!("cannot bind TURN TLS {}: {e}", t.tls_addr))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(Some((
        listener,
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    )))
}

/// Resolved STUN/TURN settings.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    pub enabled: bool,
    pub addr: SocketAddr,
    pub alt_addr: Option<SocketAddr>,
    pub tls_addr: SocketAddr,
    pub tls_cert: Option<(PathBuf, PathBuf)>,
    pub realm: String,
    pub secret: Option<String>,
    pub users: Vec<(String, String)>,
    pub allow_peers: Vec<String>,
    pub deny_peers: Vec<String>,
    pub relay_ip: Option<IpAddr>,
    pub host: Option<String>,
    pub external_urls: Vec<String>,
    pub max_allocations: usize,
    pub max_bandwidth: Option<u64>,
}
