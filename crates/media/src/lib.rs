//! The media plane: worker threads that each own an [`Sfu`] for a share of the rooms, the
//! shared UDP and ICE-TCP media ports, and the STUN/TURN server. Everything else talks to the
//! workers through [`MediaHandle`] commands, so packets never cross a lock or an await on their
//! way from receiver to subscribers.
//!
//! Rooms are spread over the workers by a hash of their name; a participant id tells its
//! worker. All workers share one UDP port: worker 0 reads the socket every participant first
//! reaches ([`front`]) and passes each datagram to its room's worker; that worker then opens a
//! socket connected to the participant's address on the same port, and the kernel delivers the
//! participant's later datagrams straight to it.

mod front;
pub mod occupancy;
mod recv;
pub mod relay;
mod send_batch;
mod tcp;
mod worker;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use stoa_proto::{ClientMessage, ParticipantId, RoomName, ServerMessage};
use stoa_sfu::str0m::net::Protocol;
use stoa_sfu::str0m::Candidate;
use stoa_sfu::{
    IdSpace, JoinRequest, ParticipantLimits, ParticipantReport, RoomLimits, RoomStats,
    ServerCounters, Sfu, SfuConfig, SfuError, SfuTotals, UfragChange,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

pub use relay::TurnSettings;
use relay::{RelayPorts, TurnIo};
use stoa_turn::TurnServer;
use worker::Worker;

pub(crate) enum Command {
    Join {
        req: JoinRequest,
        events: mpsc::Sender<ServerMessage>,
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
    /// A WHIP/WHEP `PATCH` (trickle ICE, ICE restart).
    Patch {
        id: ParticipantId,
        fragment: String,
        /// The request's `If-Match`, compared with the session's ETag (`"<ice ufrag>"`).
        if_match: Option<String>,
        reply: oneshot::Sender<Result<Patched, PatchError>>,
    },
    Report {
        room: RoomName,
        reply: oneshot::Sender<Option<Vec<ParticipantReport>>>,
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
    /// A room's meeting was locked or unlocked through the API: tell the room.
    SetLocked {
        room: RoomName,
        locked: bool,
    },
    /// A datagram for one of this worker's participants that another worker received.
    Datagram {
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: Vec<u8>,
    },
    /// A datagram from an SFU on another worker for one of TURN's relayed addresses (worker 0).
    ToRelay {
        source: SocketAddr,
        destination: SocketAddr,
        data: Vec<u8>,
    },
}

/// A host locked or unlocked a meeting in a call: for the server to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockChange {
    pub meeting_id: String,
    pub locked: bool,
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
    pub counters: ServerCounters,
    pub turn: Option<stoa_turn::TurnStats>,
    /// Each worker's share, in worker order.
    pub workers: Vec<WorkerLoad>,
}

/// What one media worker carries.
#[derive(Debug, Clone, Copy)]
pub struct WorkerLoad {
    pub participants: usize,
    /// Sockets connected to participant addresses (the kernel sorts their datagrams).
    pub connected_sockets: usize,
}

impl Health {
    /// Adds another worker's figures to these.
    fn merge(&mut self, other: Health) {
        self.participants += other.participants;
        self.rooms += other.rooms;
        self.signaling_sessions += other.signaling_sessions;
        self.totals.merge(&other.totals);
        self.send_errors += other.send_errors;
        self.counters.datagrams_in += other.counters.datagrams_in;
        self.counters.unroutable += other.counters.unroutable;
        self.turn = self.turn.take().or(other.turn);
        self.workers.extend(other.workers);
    }
}

/// Which media worker each server-side ICE ufrag belongs to, for sorting a participant's
/// first datagrams (STUN checks name the ufrag) before the kernel sorts them by address.
/// Written when participants join, restart ICE or leave; read for STUN from new addresses.
#[derive(Clone, Default)]
pub struct Directory(Arc<RwLock<HashMap<String, usize>>>);

impl Directory {
    pub fn worker_of(&self, ufrag: &str) -> Option<usize> {
        self.0.read().ok()?.get(ufrag).copied()
    }

    fn apply(&self, worker: usize, changes: impl Iterator<Item = UfragChange>) {
        let mut changes = changes.peekable();
        if changes.peek().is_none() {
            return;
        }
        let Ok(mut map) = self.0.write() else {
            return;
        };
        for change in changes {
            match change {
                UfragChange::Added(u) => {
                    map.insert(u, worker);
                }
                UfragChange::Removed(u) => {
                    map.remove(&u);
                }
            }
        }
    }
}

/// A cheap, cloneable way to reach the media workers.
#[derive(Clone)]
pub struct MediaHandle {
    workers: Arc<[mpsc::UnboundedSender<Command>]>,
    directory: Directory,
}

impl MediaHandle {
    /// A signaling message from participant `id` (or someone waiting in a lobby).
    pub fn message(&self, id: ParticipantId, message: ClientMessage) {
        self.send(Command::Message { id, message });
    }

    /// Participant `id` leaves (its signaling session or WHIP/WHEP session ended).
    pub fn leave(&self, id: ParticipantId) {
        self.send(Command::Leave { id });
    }

    /// Sends a command to the worker it concerns.
    pub(crate) fn send(&self, cmd: Command) {
        let worker = match &cmd {
            Command::Join { req, .. } | Command::Offer { req, .. } => self.room_worker(&req.room),
            Command::Message { id, .. } | Command::Leave { id } | Command::Patch { id, .. } => {
                self.participant_worker(*id)
            }
            Command::Report { room, .. }
            | Command::Stats { room, .. }
            | Command::RoomLimits { room, .. }
            | Command::SetRoomLimits { room, .. }
            | Command::SetParticipantLimits { room, .. }
            | Command::SetLocked { room, .. } => self.room_worker(room),
            _ => 0,
        };
        self.send_to(worker, cmd);
    }

    fn send_to(&self, worker: usize, cmd: Command) {
        // Workers live as long as the process; a send can only fail during shutdown.
        let _ = self.workers[worker].send(cmd);
    }

    fn room_worker(&self, room: &RoomName) -> usize {
        let mut hasher = std::hash::DefaultHasher::new();
        room.hash(&mut hasher);
        (hasher.finish() % self.workers.len() as u64) as usize
    }

    fn participant_worker(&self, id: ParticipantId) -> usize {
        (id.0.saturating_sub(1) % self.workers.len() as u64) as usize
    }

    /// Tells a live room that its meeting was locked or unlocked (stored already).
    pub fn set_locked(&self, room: RoomName, locked: bool) {
        self.send(Command::SetLocked { room, locked });
    }

    pub async fn join(
        &self,
        req: JoinRequest,
        events: mpsc::Sender<ServerMessage>,
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

    pub async fn patch(
        &self,
        id: ParticipantId,
        fragment: String,
        if_match: Option<String>,
    ) -> Result<Patched, PatchError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Patch {
            id,
            fragment,
            if_match,
            reply,
        });
        rx.await
            .unwrap_or(Err(PatchError::Sfu(SfuError::UnknownParticipant)))
    }

    /// A room's participants, and the server-wide datagram counters.
    pub async fn report(&self, room: RoomName) -> (Option<Vec<ParticipantReport>>, ServerCounters) {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Report { room, reply });
        let participants = rx.await.ok().flatten();
        let counters = self.health().await.map(|h| h.counters).unwrap_or_default();
        (participants, counters)
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

    /// Every worker's figures, added up.
    pub async fn health(&self) -> Option<Health> {
        let mut total: Option<Health> = None;
        for worker in 0..self.workers.len() {
            let (reply, rx) = oneshot::channel();
            self.send_to(worker, Command::Health { reply });
            let health = rx.await.ok()?;
            match total.as_mut() {
                Some(t) => t.merge(health),
                None => total = Some(health),
            }
        }
        total
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
        let udp_socket = bind_shared_udp(udp)?;
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

/// Binds the UDP media port so that workers can later bind sockets connected to participants
/// on it (`SO_REUSEPORT`). A plain bind first makes a port another program holds fail loudly
/// instead of being shared with it.
fn bind_shared_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let probe = std::net::UdpSocket::bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    shared_udp_socket(addr)
}

/// A non-blocking UDP socket with `SO_REUSEPORT` bound to `addr`, with large buffers.
fn shared_udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket: std::net::UdpSocket = socket.into();
    relay::enlarge_buffers(&socket);
    Ok(socket)
}

/// Starts `workers` media worker threads (worker 0 also runs the TURN server, if set up).
/// Locks that hosts change in calls come out of `locks`.
pub fn spawn(
    sockets: MediaSockets,
    turn: Option<TurnSetup>,
    room_limits: RoomLimits,
    workers: usize,
    locks: mpsc::UnboundedSender<LockChange>,
) -> std::io::Result<MediaHandle> {
    let workers = workers.max(1);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
    let handle = MediaHandle {
        workers: senders.into(),
        directory: Directory::default(),
    };
    let candidates = sockets.candidates();
    for c in &candidates {
        tracing::info!(candidate = %c.to_sdp_string(), "media candidate");
    }
    let own_media = sockets.own_media();
    let local = sockets.udp.local_addr()?;
    let relay_ports = RelayPorts::default();
    let relay = turn
        .as_ref()
        .map(|t| (t.config.relay_ip, relay_ports.clone()));
    let mut front = Some((sockets.udp.try_clone()?, sockets.tcp, turn));
    for (index, commands) in receivers.into_iter().enumerate() {
        let config = SfuConfig {
            local_candidates: candidates.clone(),
            room_limits,
            ids: IdSpace {
                first: index as u64 + 1,
                step: workers as u64,
            },
            ..SfuConfig::default()
        };
        let send_socket = sockets.udp.try_clone()?;
        let front = if index == 0 { front.take() } else { None };
        let (handle, own_media, relay) = (handle.clone(), own_media.clone(), relay.clone());
        let relay_ports = relay_ports.clone();
        let locks = locks.clone();
        std::thread::Builder::new()
            .name(format!("stoa-media-{index}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds with default settings");
                runtime.block_on(async move {
                    let mut worker = Worker::new(
                        index,
                        Sfu::new(config),
                        send_socket,
                        local,
                        relay,
                        handle.clone(),
                        locks,
                    );
                    if let Some((udp, tcp, turn)) = front {
                        let udp = recv::RecvSocket::new(udp)
                            .expect("the media socket registers with the runtime");
                        let tcp = TcpListener::from_std(tcp).expect("the listener is non-blocking");
                        tokio::spawn(tcp::accept(tcp, handle.clone()));
                        let turn =
                            turn.map(|setup| start_turn(setup, own_media, relay_ports, handle));
                        worker.set_front(udp, turn);
                    }
                    worker.run(commands).await;
                });
            })?;
    }
    Ok(handle)
}

/// Starts the TURN stream listeners and returns the TURN I/O the worker drives.
fn start_turn(
    setup: TurnSetup,
    own_media: Vec<SocketAddr>,
    relay_ports: RelayPorts,
    media: MediaHandle,
) -> TurnIo {
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
    tokio::spawn(relay::accept_streams(tcp, None, media.clone()));
    if let Some((listener, acceptor)) = setup.tls {
        let listener = TcpListener::from_std(listener).expect("the listener is non-blocking");
        tokio::spawn(relay::accept_streams(listener, Some(acceptor), media));
    }
    let seed = rand::random();
    TurnIo::new(
        TurnServer::new(config, seed),
        listeners,
        relay_ip,
        setup.relay_bind_ip,
        own_media,
        relay_ports,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(workers: usize) -> MediaHandle {
        let senders: Vec<_> = (0..workers).map(|_| mpsc::unbounded_channel().0).collect();
        MediaHandle {
            workers: senders.into(),
            directory: Directory::default(),
        }
    }

    #[test]
    fn rooms_and_participants_find_their_worker() {
        let media = handle(4);
        let mut per_worker = [0; 4];
        for i in 0..400 {
            let room = RoomName::new(format!("room-{i}")).unwrap();
            let worker = media.room_worker(&room);
            assert_eq!(worker, media.room_worker(&room), "stable");
            per_worker[worker] += 1;
        }
        assert!(per_worker.iter().all(|&n| n > 60), "{per_worker:?}");
        // Worker k's SFU hands out ids k+1, k+1+4, ...
        for (id, worker) in [(1, 0), (2, 1), (4, 3), (5, 0), (11, 2)] {
            assert_eq!(media.participant_worker(ParticipantId(id)), worker);
        }
    }

    #[test]
    fn a_media_port_in_use_is_refused_though_workers_share_it() {
        let first = bind_shared_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        // A worker's connected socket joins the port...
        let worker = shared_udp_socket(addr).unwrap();
        worker.connect("127.0.0.1:9").unwrap();
        // ...but a second server on the same port fails as it would without SO_REUSEPORT.
        let second = bind_shared_udp(addr).unwrap_err();
        assert_eq!(second.kind(), std::io::ErrorKind::AddrInUse);
    }
}

/// A WHIP/WHEP `PATCH` applied.
#[derive(Debug)]
pub struct Patched {
    /// The session's ETag afterwards.
    pub etag: String,
    /// After an ICE restart, the fragment to answer with.
    pub restart: Option<String>,
}

#[derive(Debug)]
pub enum PatchError {
    /// `If-Match` names another ETag than the session's.
    Stale,
    Sfu(SfuError),
}

/// The ETag of a WHIP/WHEP session: its server-side ICE ufrag, which an ICE restart changes.
pub fn etag(ufrag: &str) -> String {
    format!("\"{ufrag}\"")
}
