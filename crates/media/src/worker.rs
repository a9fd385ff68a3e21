//! One media worker thread: the [`Sfu`] of its share of the rooms, the sockets connected to
//! its participants, and on worker 0 the front of the media port, ICE-TCP and the TURN server.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::task::Poll;
use std::time::{Duration, Instant};

use quinn_udp::RecvMeta;
use stoa_proto::{ParticipantId, ServerMessage};
use stoa_sfu::str0m::net::Protocol;
use stoa_sfu::{Datagram, Output, Sfu, SfuError};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::front::Front;
use super::recv::{RecvSocket, RECV_BATCH, RECV_SLOT};
use super::relay::{Ready, RelayPorts, TurnIo};
use super::{etag, Command, Health, LockChange, MediaHandle, PatchError, Patched};
use crate::send_batch::SendBatch;

/// `recvmmsg` batches read from one connected socket per turn of the media loop.
const CONNECTED_BATCHES: usize = 4;
/// How often sockets connected to departed addresses are closed (also after every leave).
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

pub(super) struct Worker {
    index: usize,
    sfu: Sfu,
    media: MediaHandle,
    /// Where locks that hosts change go to be stored.
    locks: mpsc::UnboundedSender<LockChange>,
    front: Option<Front>,
    turn: Option<TurnIo>,
    /// TURN's relay IP and allocated ports: the SFU's datagrams for them go to the TURN core
    /// in-process.
    relay: Option<(IpAddr, RelayPorts)>,
    /// The media port's socket (shared by all workers) for sending.
    send_socket: std::net::UdpSocket,
    outgoing: SendBatch,
    /// The address the media port is bound to.
    local: SocketAddr,
    /// Sockets on the media port connected to participant addresses: the kernel delivers an
    /// address's datagrams to its socket rather than to the front.
    connected: HashMap<SocketAddr, RecvSocket>,
    next_sweep: Instant,
    sessions: HashMap<ParticipantId, mpsc::Sender<ServerMessage>>,
    /// Participants whose signaling queue overflowed, removed at the end of this flush.
    slow: Vec<ParticipantId>,
    tcp_writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    send_errors: u64,
}

impl Worker {
    pub fn new(
        index: usize,
        sfu: Sfu,
        send_socket: std::net::UdpSocket,
        local: SocketAddr,
        relay: Option<(IpAddr, RelayPorts)>,
        media: MediaHandle,
        locks: mpsc::UnboundedSender<LockChange>,
    ) -> Self {
        Self {
            index,
            sfu,
            media,
            locks,
            front: None,
            turn: None,
            relay,
            send_socket,
            outgoing: SendBatch::new(local),
            local,
            connected: HashMap::new(),
            next_sweep: Instant::now() + SWEEP_INTERVAL,
            sessions: HashMap::new(),
            slow: Vec::new(),
            tcp_writers: HashMap::new(),
            send_errors: 0,
        }
    }

    /// Makes this worker the one that reads the media port's front socket and runs TURN.
    pub fn set_front(&mut self, socket: RecvSocket, turn: Option<TurnIo>) {
        self.front = Some(Front::new(socket));
        self.turn = turn;
    }

    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; RECV_SLOT * RECV_BATCH];
        loop {
            let deadline = self
                .sfu
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
                .min(self.next_sweep);
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => return,
                },
                ready = front_readable(self.front.as_ref()) => {
                    if ready.is_ok() {
                        self.read_front(&mut buf);
                    }
                }
                ready = connected_ready(&self.connected) => {
                    for remote in ready {
                        self.read_connected(remote, &mut buf);
                    }
                }
                ready = turn_readable(self.turn.as_ref()) => self.on_turn_ready(ready),
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
                self.sfu.handle_timeout(now);
            }
            if let Some(turn) = self.turn.as_mut() {
                if turn.poll_timeout().is_some_and(|t| t <= now) {
                    turn.handle_timeout(now);
                }
            }
            if now >= self.next_sweep {
                self.sweep_connected();
            }
            self.flush();
        }
    }

    fn read_front(&mut self, buf: &mut [u8]) {
        let mut meta = [RecvMeta::default(); RECV_BATCH];
        loop {
            let Some(front) = self.front.as_ref() else {
                return;
            };
            let Some(n) = front.socket.recv(buf, &mut meta) else {
                return;
            };
            let now = Instant::now();
            for d in datagrams(buf, &meta[..n], self.local.port()) {
                self.route(now, d);
            }
            self.flush();
        }
    }

    /// Reads up to [`CONNECTED_BATCHES`] batches from one connected socket (the media loop
    /// comes back for the rest once the other ready sockets had their turn).
    fn read_connected(&mut self, remote: SocketAddr, buf: &mut [u8]) {
        let mut meta = [RecvMeta::default(); RECV_BATCH];
        for _ in 0..CONNECTED_BATCHES {
            let Some(c) = self.connected.get(&remote) else {
                return;
            };
            let Some(n) = c.recv(buf, &mut meta) else {
                return;
            };
            let now = Instant::now();
            for d in datagrams(buf, &meta[..n], self.local.port()) {
                if d.source == remote {
                    self.sfu.handle_datagram(now, d);
                } else {
                    // Picked by the kernel in the moment between bind and connect.
                    self.pass_to(0, d);
                }
            }
        }
    }

    /// Gives a datagram to the SFU of its worker: on worker 0 (front socket, TURN) the one its
    /// address or STUN ufrag names, elsewhere this one. On workers other than 0 a participant's
    /// first datagram from an address gets that address a connected socket; worker 0 reads the
    /// front socket, where its participants' datagrams land anyway (in one `recvmmsg` for all of
    /// them, cheaper than a socket each).
    fn route(&mut self, now: Instant, d: Datagram) {
        let Some(front) = self.front.as_mut() else {
            self.sfu.handle_datagram(now, d);
            if d.proto == Protocol::Udp && !self.connected.contains_key(&d.source) {
                self.connect(d.source);
            }
            return;
        };
        match front.owner(&self.media.directory, d.source, d.contents) {
            0 => self.sfu.handle_datagram(now, d),
            owner => self.pass_to(owner, d),
        }
    }

    fn pass_to(&self, worker: usize, d: Datagram) {
        self.media.send_to(
            worker,
            Command::Datagram {
                proto: d.proto,
                source: d.source,
                destination: d.destination,
                data: d.contents.to_vec(),
            },
        );
    }

    fn connect(&mut self, remote: SocketAddr) {
        if self.is_relayed(remote) || !self.sfu.routes_address(Protocol::Udp, remote) {
            return;
        }
        match connected_socket(self.local, remote) {
            Ok(c) => {
                self.connected.insert(remote, c);
            }
            Err(e) => tracing::debug!(error = %e, %remote, "no connected socket"),
        }
    }

    /// Closes connected sockets of addresses no participant uses any more.
    fn sweep_connected(&mut self) {
        self.next_sweep = Instant::now() + SWEEP_INTERVAL;
        let sfu = &self.sfu;
        self.connected
            .retain(|remote, _| sfu.routes_address(Protocol::Udp, *remote));
    }

    fn on_turn_ready(&mut self, ready: Ready) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        let now = Instant::now();
        turn.on_ready(ready, &mut |d: Datagram| self.route(now, d));
        self.turn = Some(turn);
    }

    /// Tells the directory about ufrags this worker's SFU started or stopped using; done before
    /// any answer leaves (signaling or WHIP/WHEP reply), so a client's first STUN check finds
    /// its worker.
    fn publish_ufrags(&mut self) {
        self.media
            .directory
            .apply(self.index, self.sfu.drain_ufrag_changes());
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join { req, events, reply } => {
                let id = self.sfu.join(now, req);
                self.sessions.insert(id, events);
                let _ = reply.send(id);
            }
            Command::Message { id, message } => {
                let unix_ms = stoa_proto::clock::unix_ms() as u64;
                if let Err(e) = self.sfu.handle_message(now, id, message, unix_ms) {
                    self.signal(id, ServerMessage::error(e.code(), e.to_string()));
                }
            }
            Command::Leave { id } => {
                self.sessions.remove(&id);
                self.sfu.leave(now, id);
                self.sweep_connected();
            }
            Command::Offer { req, sdp, reply } => {
                // A refused offer must not replace the identity's running session.
                if let Err(e) = Sfu::check_offer(&sdp) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let id = self.sfu.join(now, req);
                let result = self.sfu.accept_offer(now, id, &sdp);
                if result.is_err() {
                    self.sfu.leave(now, id);
                }
                self.publish_ufrags();
                let _ = reply.send(result.map(|answer| (id, answer)));
            }
            Command::Patch {
                id,
                fragment,
                if_match,
                reply,
            } => {
                let _ = reply.send(self.patch(now, id, &fragment, if_match));
                self.publish_ufrags();
            }
            Command::Report { room, reply } => {
                let _ = reply.send(self.sfu.room_report(&room));
            }
            Command::Stats { room, reply } => {
                let _ = reply.send(self.sfu.room_stats(&room));
            }
            Command::RoomLimits { room, reply } => {
                let _ = reply.send(self.sfu.room_limits(&room));
            }
            Command::SetRoomLimits {
                room,
                limits,
                reply,
            } => {
                let _ = reply.send(self.sfu.set_room_limits(&room, limits));
            }
            Command::SetParticipantLimits {
                room,
                id,
                limits,
                reply,
            } => {
                let _ = reply.send(self.sfu.set_participant_limits(&room, id, limits));
            }
            Command::SetLocked { room, locked } => self.sfu.set_locked(&room, locked),
            Command::Health { reply } => {
                let _ = reply.send(self.health());
            }
            Command::TcpOpen { peer, writer } => {
                self.tcp_writers.insert(peer, writer);
            }
            Command::TcpFrame { peer, local, data } => {
                let d = Datagram {
                    proto: Protocol::Tcp,
                    source: peer,
                    destination: local,
                    contents: &data,
                };
                self.sfu.handle_datagram(now, d);
            }
            Command::TcpClosed { peer } => {
                self.tcp_writers.remove(&peer);
            }
            Command::Datagram {
                proto,
                source,
                destination,
                data,
            } => {
                let d = Datagram {
                    proto,
                    source,
                    destination,
                    contents: &data,
                };
                self.route(now, d);
            }
            Command::ToRelay {
                source,
                destination,
                data,
            } => self.send_udp(source, destination, data),
            Command::TurnStreamOpen {
                client,
                local,
                writer,
            } => {
                if let Some(turn) = self.turn.as_mut() {
                    turn.stream_opened(client, local, writer);
                }
            }
            Command::TurnStreamData {
                transport,
                client,
                local,
                data,
            } => {
                if let Some(mut turn) = self.turn.take() {
                    turn.client_message(transport, local, client, &data, &mut |d: Datagram| {
                        self.route(now, d)
                    });
                    self.turn = Some(turn);
                }
            }
            Command::TurnStreamClosed {
                transport,
                client,
                local,
            } => {
                if let Some(turn) = self.turn.as_mut() {
                    turn.stream_closed(transport, client, local);
                }
            }
        }
    }

    fn patch(
        &mut self,
        now: Instant,
        id: ParticipantId,
        fragment: &str,
        if_match: Option<String>,
    ) -> Result<Patched, PatchError> {
        let ufrag = self
            .sfu
            .ice_ufrag(id)
            .ok_or(PatchError::Sfu(SfuError::UnknownParticipant))?;
        if if_match.is_some_and(|m| m.trim() != "*" && m.trim() != etag(&ufrag)) {
            return Err(PatchError::Stale);
        }
        let restart = self
            .sfu
            .patch_ice(now, id, fragment)
            .map_err(PatchError::Sfu)?;
        let ufrag = self.sfu.ice_ufrag(id).unwrap_or(ufrag);
        Ok(Patched {
            etag: etag(&ufrag),
            restart,
        })
    }

    fn health(&self) -> Health {
        Health {
            participants: self.sfu.participant_count(),
            rooms: self.sfu.room_count(),
            signaling_sessions: self.sessions.len(),
            totals: self.sfu.totals(),
            send_errors: self.send_errors + self.turn.as_ref().map_or(0, |t| t.send_errors),
            counters: self.sfu.counters(),
            turn: self.turn.as_ref().map(|t| t.stats()),
            workers: vec![super::WorkerLoad {
                participants: self.sfu.participant_count(),
                connected_sockets: self.connected.len(),
            }],
        }
    }

    /// Sets the limits of a participant, if it is in `room`.
    /// Sends what the SFU has to send, hands out its signaling, and keeps the ufrag
    /// directory up to date.
    fn flush(&mut self) {
        self.publish_ufrags();
        loop {
            self.drain_outputs();
            if self.slow.is_empty() {
                break;
            }
            let now = Instant::now();
            for id in std::mem::take(&mut self.slow) {
                tracing::info!(participant = %id, "signaling client does not read its messages; removed");
                self.sessions.remove(&id);
                self.sfu.leave(now, id);
            }
        }
        self.send_outgoing();
    }

    /// Queues a signaling message for a participant's WebSocket. A client whose queue is full
    /// does not read: it is removed (dropping its sender ends its WebSocket task).
    fn signal(&mut self, to: ParticipantId, message: ServerMessage) {
        let full = self
            .sessions
            .get(&to)
            .is_some_and(|s| matches!(s.try_send(message), Err(TrySendError::Full(_))));
        if full && !self.slow.contains(&to) {
            self.slow.push(to);
        }
    }

    fn drain_outputs(&mut self) {
        while let Some(out) = self.sfu.poll_output() {
            match out {
                Output::Transmit(t) => match t.proto {
                    Protocol::Udp => self.send_udp(t.source, t.destination, t.contents.into()),
                    Protocol::Tcp => {
                        let sent = self
                            .tcp_writers
                            .get(&t.destination)
                            .is_some_and(|w| w.try_send(t.contents.into()).is_ok());
                        if !sent {
                            self.send_errors += 1;
                        }
                    }
                    _ => self.send_errors += 1,
                },
                Output::Signal { to, message } => self.signal(to, message),
                Output::Closed {
                    participant,
                    reason,
                } => {
                    tracing::info!(%participant, ?reason, "closing participant's connection");
                    // Dropping the sender ends the participant's WebSocket task.
                    self.sessions.remove(&participant);
                    self.next_sweep = Instant::now();
                }
                Output::LockChanged { meeting_id, locked } => {
                    let _ = self.locks.send(LockChange { meeting_id, locked });
                }
            }
        }
    }

    /// Queues a UDP datagram; those for TURN's relayed addresses go to the TURN core.
    fn send_udp(&mut self, source: SocketAddr, destination: SocketAddr, contents: Vec<u8>) {
        if self.is_relayed(destination) {
            match self.turn.as_mut() {
                Some(turn) => {
                    if turn.deliver_from_sfu(source, destination, &contents) {
                        return;
                    }
                }
                None => {
                    let relay = Command::ToRelay {
                        source,
                        destination,
                        data: contents,
                    };
                    self.media.send_to(0, relay);
                    return;
                }
            }
        }
        self.outgoing.push(source.ip(), destination, contents);
        if self.outgoing.is_full() {
            self.send_outgoing();
        }
    }

    /// Whether `addr` is one of TURN's relayed addresses (a relayed participant).
    fn is_relayed(&self, addr: SocketAddr) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|(ip, ports)| addr.ip() == *ip && ports.contains(addr.port()))
    }

    fn send_outgoing(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        let result = self.outgoing.send(&self.send_socket);
        self.send_errors += result.failed as u64;
    }
}

/// A socket on the media port's address connected to `remote`.
fn connected_socket(local: SocketAddr, remote: SocketAddr) -> std::io::Result<RecvSocket> {
    let socket = super::shared_udp_socket(local)?;
    socket.connect(remote)?;
    RecvSocket::new(socket)
}

/// The datagrams of a `RecvSocket::recv`, GRO runs split.
fn datagrams<'a>(
    buf: &'a [u8],
    meta: &'a [RecvMeta],
    local_port: u16,
) -> impl Iterator<Item = Datagram<'a>> + 'a {
    meta.iter().enumerate().flat_map(move |(i, m)| {
        let data = &buf[i * RECV_SLOT..i * RECV_SLOT + m.len];
        let local_ip = m.dst_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let destination = SocketAddr::new(local_ip, local_port);
        let stride = if m.stride == 0 {
            m.len.max(1)
        } else {
            m.stride
        };
        data.chunks(stride).map(move |contents| Datagram {
            proto: Protocol::Udp,
            source: m.addr,
            destination,
            contents,
        })
    })
}

async fn front_readable(front: Option<&Front>) -> std::io::Result<()> {
    match front {
        Some(f) => f.socket.readable().await,
        None => std::future::pending().await,
    }
}

/// The addresses of the connected sockets with datagrams waiting, once there is one; never
/// resolves without any.
async fn connected_ready(connected: &HashMap<SocketAddr, RecvSocket>) -> Vec<SocketAddr> {
    poll_fn(|cx| {
        let ready: Vec<SocketAddr> = connected
            .iter()
            .filter(|(_, c)| c.poll_readable(cx))
            .map(|(remote, _)| *remote)
            .collect();
        match ready.is_empty() {
            true => Poll::Pending,
            false => Poll::Ready(ready),
        }
    })
    .await
}

/// Waits for TURN socket readiness; never resolves when TURN is off.
async fn turn_readable(turn: Option<&TurnIo>) -> Ready {
    match turn {
        Some(t) => t.readable().await,
        None => std::future::pending().await,
    }
}
