//! A simulated network between test peers and an in-process SFU, with simulated time. Each
//! peer has an uplink and a downlink with latency, random loss and optionally a bandwidth
//! limit: a bottleneck that sends at that rate from a queue which drops packets when full,
//! so congestion shows as growing delay and then loss, as on a real access link.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stoa_proto::{ClientMessage, Grants, ParticipantId, RoomName, ServerMessage};
use stoa_sfu::DownLayerInfo;
use stoa_sfu::{
    CloseReason, Datagram, JoinRequest, MeetingRef, Output, ParticipantKind, Sfu, SfuConfig,
};
use str0m::net::Protocol;
use str0m::Candidate;

use crate::{Peer, PeerError};

/// One direction of a peer's link.
#[derive(Debug, Clone, Copy)]
pub struct LinkParams {
    pub latency: Duration,
    /// Fraction of packets dropped, 0.0..1.0.
    pub loss: f64,
    /// The link's rate in bits/s (IP packets: payload plus 28 bytes); `None`: unlimited.
    pub bandwidth_bps: Option<u64>,
    /// With a bandwidth limit: the longest a packet may wait in the bottleneck queue; a
    /// packet that would wait longer is dropped (the queue is full).
    pub max_queue_delay: Duration,
}

impl Default for LinkParams {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            loss: 0.0,
            bandwidth_bps: None,
            max_queue_delay: Duration::from_millis(250),
        }
    }
}

impl LinkParams {
    /// The default link limited to `bps`.
    pub fn limited(bps: u64) -> Self {
        Self {
            bandwidth_bps: Some(bps),
            ..Self::default()
        }
    }
}

/// Bytes an IPv4 + UDP header adds to a datagram.
const IP_UDP_HEADER: usize = 28;

/// A link direction's bottleneck: when its queue will have drained.
#[derive(Debug, Clone, Copy)]
struct Bottleneck {
    free_at: Instant,
}

impl Bottleneck {
    /// When a packet of `len` bytes entering at `now` leaves the bottleneck, or `None` if the
    /// queue is full.
    fn admit(&mut self, link: &LinkParams, now: Instant, len: usize) -> Option<Instant> {
        let Some(bps) = link.bandwidth_bps.filter(|b| *b > 0) else {
            return Some(now);
        };
        let start = self.free_at.max(now);
        if start - now > link.max_queue_delay {
            return None;
        }
        let bits = ((len + IP_UDP_HEADER) * 8) as u64;
        self.free_at = start + Duration::from_nanos(bits * 1_000_000_000 / bps);
        Some(self.free_at)
    }
}

struct Client {
    peer: Peer,
    id: ParticipantId,
    kind: ParticipantKind,
    uplink: LinkParams,
    downlink: LinkParams,
    up_queue: Bottleneck,
    down_queue: Bottleneck,
    messages: Vec<ServerMessage>,
    next_timeout: Instant,
    gone: bool,
}

/// A datagram on the simulated wire: to a peer (`Some(index)`) or the server, from, contents.
type InFlight = (Option<usize>, SocketAddr, Vec<u8>);

/// Peers, an SFU and the packets in flight between them.
pub struct SfuSim {
    pub now: Instant,
    pub sfu: Sfu,
    server_addr: SocketAddr,
    clients: Vec<Client>,
    /// (Delivery time, sequence) → datagram.
    in_flight: BTreeMap<(Instant, u64), InFlight>,
    seq: u64,
    rng: u64,
    pub closed: Vec<(ParticipantId, CloseReason)>,
    /// Locks a host changed in a call, for the driver to store: (meeting id, locked).
    pub locks: Vec<(String, bool)>,
    /// The stored meeting every later join names (as the door would).
    pub meeting: Option<MeetingRef>,
    /// Wall-clock time spent inside the SFU's datagram and timeout handling (for cost
    /// measurements; the peers' own work is not in it).
    pub sfu_busy: Duration,
}

pub type SimNet = SfuSim;

impl SfuSim {
    pub fn new() -> Self {
        let now = Instant::now();
        let server_addr: SocketAddr = "10.0.0.1:8801".parse().expect("valid address");
        let config = SfuConfig {
            local_candidates: vec![Candidate::host(server_addr, "udp").expect("valid candidate")],
            ..SfuConfig::default()
        };
        Self {
            now,
            sfu: Sfu::new(config),
            server_addr,
            clients: Vec::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
            closed: Vec::new(),
            locks: Vec::new(),
            meeting: None,
            sfu_busy: Duration::ZERO,
        }
    }

    fn join(&mut self, room: &str, identity: &str, kind: ParticipantKind) -> usize {
        self.join_with(room, identity, kind, Grants::default(), Peer::new, false)
    }

    /// Someone the door sent to the room's lobby: they have a signaling session (and see
    /// `lobby` and `lobby_host`) but join only when a host admits them.
    pub fn add_lobby_guest(&mut self, room: &str, identity: &str) -> usize {
        let kind = ParticipantKind::Interactive;
        self.join_with(room, identity, kind, Grants::default(), Peer::new, true)
    }

    fn join_with(
        &mut self,
        room: &str,
        identity: &str,
        kind: ParticipantKind,
        grants: Grants,
        new_peer: fn(Instant, SocketAddr) -> Result<Peer, PeerError>,
        lobby: bool,
    ) -> usize {
        let index = self.clients.len();
        let addr: SocketAddr = format!("10.0.1.{}:5000", index + 1)
            .parse()
            .expect("valid address");
        let peer = new_peer(self.now, addr).expect("a peer on a simulated address");
        let req = JoinRequest {
            room: RoomName::new(room).expect("valid room"),
            identity: identity.into(),
            name: identity.into(),
            grants,
            kind,
            ice_servers: Vec::new(),
            lobby,
            meeting: self.meeting.clone(),
        };
        let id = self.sfu.join(self.now, req);
        self.clients.push(Client {
            peer,
            id,
            kind,
            uplink: LinkParams::default(),
            downlink: LinkParams::default(),
            up_queue: Bottleneck { free_at: self.now },
            down_queue: Bottleneck { free_at: self.now },
            messages: Vec::new(),
            next_timeout: self.now,
            gone: false,
        });
        self.pump_outputs();
        index
    }

    /// An interactive participant (like the web app) that publishes audio and video.
    pub fn add_publisher(&mut self, room: &str, identity: &str) -> usize {
        self.add_publisher_offering(room, identity, |offer| offer)
    }

    /// Like [`SfuSim::add_publisher`], with its offer passed through `edit` first (to play a
    /// client whose offers differ from str0m's).
    pub fn add_publisher_offering(
        &mut self,
        room: &str,
        identity: &str,
        edit: impl FnOnce(String) -> String,
    ) -> usize {
        let i = self.join(room, identity, ParticipantKind::Interactive);
        let offer = self.clients[i]
            .peer
            .publish_offer(true, true)
            .expect("an offer");
        self.client_message(i, ClientMessage::Offer { sdp: edit(offer) });
        i
    }

    /// Like [`SfuSim::add_publisher`], with its video sent as the given simulcast layers
    /// (see [`crate::default_layers`]).
    pub fn add_simulcast_publisher(
        &mut self,
        room: &str,
        identity: &str,
        layers: Vec<crate::SendLayer>,
    ) -> usize {
        let i = self.join(room, identity, ParticipantKind::Interactive);
        self.clients[i].peer.layers = layers;
        let offer = self.clients[i]
            .peer
            .publish_offer(true, true)
            .expect("an offer");
        self.client_message(i, ClientMessage::Offer { sdp: offer });
        i
    }

    /// A publisher whose token grants room-admin (a meeting host).
    pub fn add_host(&mut self, room: &str, identity: &str) -> usize {
        let grants = Grants {
            room_admin: true,
            ..Grants::default()
        };
        let i = self.join_with(
            room,
            identity,
            ParticipantKind::Interactive,
            grants,
            Peer::new,
            false,
        );
        let offer = self.clients[i]
            .peer
            .publish_offer(true, true)
            .expect("an offer");
        self.client_message(i, ClientMessage::Offer { sdp: offer });
        i
    }

    /// An interactive participant that publishes nothing.
    pub fn add_listener(&mut self, room: &str, identity: &str) -> usize {
        let i = self.join(room, identity, ParticipantKind::Interactive);
        let offer = self.clients[i]
            .peer
            .publish_offer(false, false)
            .expect("an offer");
        self.client_message(i, ClientMessage::Offer { sdp: offer });
        i
    }

    /// Like [`SfuSim::add_listener`], for a client without transport-wide congestion control
    /// that reports its bandwidth with REMB ([`Peer::send_remb`]).
    pub fn add_remb_listener(&mut self, room: &str, identity: &str) -> usize {
        let kind = ParticipantKind::Interactive;
        let i = self.join_with(
            room,
            identity,
            kind,
            Grants::default(),
            Peer::without_twcc,
            false,
        );
        let offer = self.clients[i]
            .peer
            .publish_offer(false, false)
            .expect("an offer");
        self.client_message(i, ClientMessage::Offer { sdp: offer });
        i
    }

    /// A WHEP viewer with the given number of audio and video slots.
    pub fn add_whep_viewer(
        &mut self,
        room: &str,
        identity: &str,
        audio: usize,
        video: usize,
    ) -> usize {
        let i = self.join(room, identity, ParticipantKind::Whep);
        let offer = self.clients[i]
            .peer
            .view_offer(audio, video)
            .expect("an offer");
        let answer = self
            .sfu
            .accept_offer(self.now, self.clients[i].id, &offer)
            .expect("WHEP offer accepted");
        self.clients[i]
            .peer
            .accept_answer(&answer)
            .expect("the SFU's answer applies");
        self.pump_outputs();
        i
    }

    pub fn client_message(&mut self, i: usize, msg: ClientMessage) {
        let id = self.clients[i].id;
        if let Err(e) = self.sfu.handle_message(self.now, id, msg, 0) {
            self.clients[i]
                .messages
                .push(ServerMessage::error(e.code(), e.to_string()));
        }
        self.pump_outputs();
    }

    pub fn leave(&mut self, i: usize) {
        self.clients[i].gone = true;
        let id = self.clients[i].id;
        self.sfu.leave(self.now, id);
        self.pump_outputs();
    }

    /// Stops a peer without telling the server (a vanished browser).
    pub fn vanish(&mut self, i: usize) {
        self.clients[i].gone = true;
    }

    /// The peer's network changes: new address, ICE restart through signaling.
    pub fn change_network(&mut self, i: usize, new_addr: SocketAddr) {
        let offer = self.clients[i]
            .peer
            .restart_ice(new_addr)
            .expect("an ICE restart offer");
        self.client_message(i, ClientMessage::Offer { sdp: offer });
    }

    pub fn set_links(&mut self, i: usize, uplink: LinkParams, downlink: LinkParams) {
        self.clients[i].uplink = uplink;
        self.clients[i].downlink = downlink;
    }

    /// Changes only the link towards peer `i`.
    pub fn set_downlink(&mut self, i: usize, downlink: LinkParams) {
        self.clients[i].downlink = downlink;
    }

    /// The SFU's layer report for peer `i`'s video down-tracks.
    pub fn layer_report(&self, i: usize) -> Vec<DownLayerInfo> {
        self.sfu.layer_report(self.clients[i].id)
    }

    pub fn peer(&self, i: usize) -> &Peer {
        &self.clients[i].peer
    }

    pub fn peer_mut(&mut self, i: usize) -> &mut Peer {
        &mut self.clients[i].peer
    }

    pub fn id(&self, i: usize) -> ParticipantId {
        self.clients[i].id
    }

    pub fn messages(&self, i: usize) -> &[ServerMessage] {
        &self.clients[i].messages
    }

    /// Runs the simulation for `duration` in 1 ms steps.
    pub fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.now += Duration::from_millis(1);
            self.step();
        }
    }

    /// Runs until `done` holds or `limit` passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.now += Duration::from_millis(1);
            self.step();
        }
        done(self)
    }

    fn step(&mut self) {
        let now = self.now;
        // Deliver due datagrams.
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (to, from, data) = entry.remove();
            match to {
                Some(i) if !self.clients[i].gone => {
                    self.clients[i].peer.handle_datagram(now, from, &data)
                }
                Some(_) => {}
                None => {
                    let started = Instant::now();
                    self.sfu.handle_datagram(
                        now,
                        Datagram {
                            proto: Protocol::Udp,
                            source: from,
                            destination: self.server_addr,
                            contents: &data,
                        },
                    );
                    self.sfu_busy += started.elapsed();
                }
            }
        }
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            let started = Instant::now();
            self.sfu.handle_timeout(now);
            self.sfu_busy += started.elapsed();
        }
        self.pump_outputs();
        for i in 0..self.clients.len() {
            if self.clients[i].gone {
                continue;
            }
            if self.clients[i].next_timeout <= now {
                self.clients[i].peer.handle_timeout(now);
            }
            self.clients[i].peer.produce(now).expect("media written");
            let (transmits, next) = self.clients[i].peer.poll().expect("the peer keeps working");
            self.clients[i].next_timeout = next;
            for t in transmits {
                self.send(i, None, t.source, t.contents.to_vec());
            }
        }
    }

    /// Puts a datagram on client `client`'s uplink (`to` is `None`) or downlink.
    fn send(&mut self, client: usize, to: Option<usize>, from: SocketAddr, data: Vec<u8>) {
        let c = &self.clients[client];
        let link = if to.is_some() { c.downlink } else { c.uplink };
        if link.loss > 0.0 && self.random() < link.loss {
            return;
        }
        let now = self.now;
        let c = &mut self.clients[client];
        let queue = if to.is_some() {
            &mut c.down_queue
        } else {
            &mut c.up_queue
        };
        let Some(leaves) = queue.admit(&link, now, data.len()) else {
            return;
        };
        self.seq += 1;
        self.in_flight
            .insert((leaves + link.latency, self.seq), (to, from, data));
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: deterministic, so failures reproduce.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Moves SFU output to the peers: datagrams onto the wire, signals into the peers'
    /// inboxes; server offers are answered at once, like the web app does.
    fn pump_outputs(&mut self) {
        let by_id: HashMap<ParticipantId, usize> = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        let by_addr: HashMap<SocketAddr, usize> = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.peer.addr, i))
            .collect();
        loop {
            let Some(out) = self.sfu.poll_output() else {
                return;
            };
            match out {
                Output::Transmit(t) => {
                    if let Some(&i) = by_addr.get(&t.destination) {
                        self.send(i, Some(i), t.source, t.contents.to_vec());
                    }
                }
                Output::Signal { to, message } => {
                    let Some(&i) = by_id.get(&to) else { continue };
                    if self.clients[i].gone {
                        continue;
                    }
                    match &message {
                        ServerMessage::Answer { sdp } => self.clients[i]
                            .peer
                            .accept_answer(sdp)
                            .expect("the SFU's answer applies"),
                        ServerMessage::Offer { sdp } => {
                            let answer = self.clients[i]
                                .peer
                                .accept_offer(sdp)
                                .expect("the SFU's offer applies");
                            let id = self.clients[i].id;
                            if let Err(e) = self.sfu.handle_message(
                                self.now,
                                id,
                                ClientMessage::Answer { sdp: answer },
                                0,
                            ) {
                                panic!("server refused our answer: {e}");
                            }
                        }
                        ServerMessage::Layers { active, .. } => {
                            self.clients[i].peer.set_active_layers(active)
                        }
                        _ => {}
                    }
                    self.clients[i].messages.push(message);
                }
                Output::Closed {
                    participant,
                    reason,
                } => self.closed.push((participant, reason)),
                Output::LockChanged { meeting_id, locked } => self.locks.push((meeting_id, locked)),
            }
        }
    }

    pub fn kind(&self, i: usize) -> ParticipantKind {
        self.clients[i].kind
    }
}

impl Default for SfuSim {
    fn default() -> Self {
        Self::new()
    }
}
