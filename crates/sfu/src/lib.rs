//! Stoa's selective forwarding unit: an I/O-free state machine on str0m in RTP mode.
//!
//! The [`Sfu`] owns rooms and participants. Each participant has one str0m [`Rtc`] (ICE-lite,
//! DTLS-SRTP). Inputs are datagrams with their time and addresses, signaling messages and
//! timeouts; outputs are datagrams to send, signaling messages for a participant and
//! notices that a participant is gone. It opens no sockets, reads no clock and takes no locks,
//! so tests drive it with simulated time and network (see `tests/`).
//!
//! Module map: [`demux`] sorts datagrams to participants, [`keyframe`] recognises keyframes,
//! [`rewrite`] keeps subscriber streams continuous; `participant` holds per-peer state and
//! `routing` the publish/subscribe logic and forwarding; `simulcast` holds layer state and
//! the layer-selection policy, which `bandwidth` applies to subscribers' bandwidth estimates
//! and display sizes (and pauses unused layers at publishers), within the bitrate limits and
//! priorities of `limits`; [`stats`] keeps call-quality
//! statistics and [`speaker`] detects each room's active speaker.

mod bandwidth;
mod congestion;
pub mod demux;
pub mod keyframe;
mod limits;
mod moderation;
mod participant;
pub mod rewrite;
mod room;
mod routing;
pub mod sdp;
mod simulcast;
pub mod speaker;
pub mod stats;
pub mod vp8;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Rtc};

pub use bandwidth::DownLayerInfo;
pub use limits::{ParticipantLimits, RoomLimits};
use participant::Participant;
pub use participant::ParticipantKind;
pub use room::MeetingRef;
pub use stats::{
    DownTrackStats, EstimateSource, ParticipantStats, RoomStats, SfuTotals, UpTrackStats,
};
pub use stoa_proto as proto;
use stoa_proto::{
    ClientMessage, ErrorCode, Grants, IceServer, ParticipantId, RoomName, ServerMessage, TrackKind,
};
pub use str0m;

/// Where each subscriber's bandwidth estimate starts: for one camera with the usual three
/// simulcast layers (~150 kbit/s, 500 kbit/s, 1.5 Mbit/s) this affords the middle layer, and
/// str0m's estimator probes upwards from it.
const INITIAL_ESTIMATE: str0m::bwe::Bitrate = str0m::bwe::Bitrate::kbps(1000);

/// Settings of an [`Sfu`].
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Host candidates every participant is offered (the shared UDP port, the ICE-TCP port).
    pub local_candidates: Vec<Candidate>,
    /// Minimum time between two keyframe requests sent to one publisher's track.
    pub keyframe_request_interval: Duration,
    /// How long a connected participant may stay silent (no datagram at all) before it is
    /// removed. Browsers send RTCP and ICE consent checks every few seconds even when muted.
    pub silence_timeout: Duration,
    /// How long a WHIP/WHEP session may take to connect.
    pub connect_timeout: Duration,
    /// The video bitrate limits every room starts with (and returns to when it empties).
    pub room_limits: RoomLimits,
    /// The participant ids this SFU hands out: `first`, `first + step`, ... Several SFUs in
    /// one process (one per media worker) get disjoint ids this way.
    pub ids: IdSpace,
}

/// An arithmetic sequence of participant ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdSpace {
    pub first: u64,
    pub step: u64,
}

/// A server-side ICE ufrag that started or stopped naming a participant of this SFU, for a
/// front end that sorts datagrams between several SFUs (see [`Sfu::drain_ufrag_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UfragChange {
    Added(String),
    Removed(String),
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            local_candidates: Vec::new(),
            keyframe_request_interval: Duration::from_millis(500),
            silence_timeout: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(30),
            room_limits: RoomLimits::default(),
            ids: IdSpace { first: 1, step: 1 },
        }
    }
}

/// A participant entering a room.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub room: RoomName,
    pub identity: String,
    pub name: String,
    pub grants: Grants,
    pub kind: ParticipantKind,
    /// Passed through to the client in `joined`.
    pub ice_servers: Vec<IceServer>,
    /// Wait in the room's lobby until a host admits them (the door decided so).
    pub lobby: bool,
    /// The stored meeting the room belongs to, if any.
    pub meeting: Option<MeetingRef>,
}

/// A datagram received on one of the media ports.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub proto: Protocol,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: &'a [u8],
}

/// Why the SFU removed a participant on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Nothing arrived from it for longer than the silence timeout.
    Silent,
    /// The same identity joined the room again.
    Replaced,
    /// A host removed it.
    Removed,
    /// Its WebRTC session failed (DTLS, SCTP, or an internal error).
    Failed,
    /// Its client closed the WebRTC session (DTLS close_notify).
    Closed,
}

/// What the SFU asks its driver to do.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Transmit(str0m::net::Transmit),
    /// Deliver a signaling message to a participant (dropped for WHIP/WHEP peers).
    Signal {
        to: ParticipantId,
        message: ServerMessage,
    },
    /// The SFU removed a participant; close its connection.
    Closed {
        participant: ParticipantId,
        reason: CloseReason,
    },
    /// A host locked or unlocked a stored meeting in the call: store it.
    LockChanged { meeting_id: String, locked: bool },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SfuError {
    #[error("no such participant")]
    UnknownParticipant,
    #[error("nobody is in this room")]
    UnknownRoom,
    #[error("invalid SDP: {0}")]
    BadSdp(String),
    #[error("{0}")]
    OutOfOrder(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    BadRequest(String),
}

impl SfuError {
    /// The signaling error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SfuError::UnknownParticipant | SfuError::UnknownRoom => ErrorCode::Closed,
            SfuError::BadSdp(_) => ErrorCode::BadSdp,
            SfuError::OutOfOrder(_) => ErrorCode::OutOfOrder,
            SfuError::Forbidden(_) => ErrorCode::Forbidden,
            SfuError::BadRequest(_) => ErrorCode::BadMessage,
        }
    }
}

/// Media-path counters of one participant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParticipantCounters {
    /// RTP packets received from this participant.
    pub packets_in: u64,
    /// RTP packets forwarded to this participant.
    pub packets_out: u64,
    /// Datagrams from this participant that its WebRTC session rejected.
    pub dropped: u64,
    /// Video packets not forwarded to this participant while it waited for a keyframe.
    pub awaiting_keyframe: u64,
}

/// Node-wide media counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCounters {
    pub datagrams_in: u64,
    /// Datagrams no participant claimed (garbage, strangers, late packets of departed peers).
    pub unroutable: u64,
}

/// One participant's counters with who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantReport {
    pub id: ParticipantId,
    pub identity: String,
    pub name: String,
    pub kind: ParticipantKind,
    pub connected: bool,
    pub counters: ParticipantCounters,
}

/// The selective forwarding unit. See the crate documentation.
pub struct Sfu {
    config: SfuConfig,
    next_id: u64,
    participants: HashMap<ParticipantId, Participant>,
    /// Participants of each room in join order.
    rooms: HashMap<RoomName, Vec<ParticipantId>>,
    /// Limits of rooms that were given their own (others have the config's).
    room_limits: HashMap<RoomName, RoomLimits>,
    /// Lobby and lock of each room with anyone in it or waiting (see `room.rs`).
    rooms_state: HashMap<RoomName, room::Room>,
    by_addr: HashMap<(Protocol, SocketAddr), ParticipantId>,
    by_ufrag: HashMap<String, ParticipantId>,
    ufrag_changes: Vec<UfragChange>,
    outputs: VecDeque<Output>,
    /// Participants whose `Rtc` has had input and must be polled.
    dirty: Vec<ParticipantId>,
    /// The time of the latest input, for polling `dirty` participants on output.
    last_input: Option<Instant>,
    /// WHEP viewers that lost a source and need their slots refilled.
    whep_refill: Vec<ParticipantId>,
    /// Reused buffer for the subscriber list of the packet being forwarded.
    scratch_ids: Vec<ParticipantId>,
    counters: ServerCounters,
    stats: stats::Recorder,
    speakers: speaker::Speakers,
    /// When layers are next re-chosen for every subscriber (from the first join on).
    next_allocation: Option<Instant>,
}

impl Sfu {
    pub fn new(config: SfuConfig) -> Self {
        Self {
            next_id: config.ids.first.max(1),
            config,
            participants: HashMap::new(),
            rooms: HashMap::new(),
            room_limits: HashMap::new(),
            rooms_state: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            ufrag_changes: Vec::new(),
            outputs: VecDeque::new(),
            dirty: Vec::new(),
            last_input: None,
            whep_refill: Vec::new(),
            scratch_ids: Vec::new(),
            counters: ServerCounters::default(),
            stats: stats::Recorder::default(),
            speakers: speaker::Speakers::default(),
            next_allocation: None,
        }
    }

    /// Adds a participant to a room, or to its lobby when `req.lobby` (it joins when a host
    /// admits it). Interactive participants get `joined` and then offer; WHIP/WHEP
    /// participants continue with [`Sfu::accept_offer`].
    pub fn join(&mut self, now: Instant, req: JoinRequest) -> ParticipantId {
        let id = ParticipantId(self.next_id);
        self.next_id += self.config.ids.step.max(1);
        if req.lobby {
            self.wait(id, req);
        } else {
            self.enter(now, id, req);
        }
        id
    }

    /// Puts `req`'s participant in its room under `id`.
    pub(crate) fn enter(&mut self, now: Instant, id: ParticipantId, req: JoinRequest) {
        let replaced: Vec<ParticipantId> = self
            .room_members(&req.room)
            .filter(|p| p.identity == req.identity)
            .map(|p| p.id)
            .collect();
        for old in replaced {
            self.signal(
                old,
                ServerMessage::Error {
                    code: ErrorCode::Replaced,
                    message: "the same identity joined this room elsewhere".into(),
                    fatal: true,
                },
            );
            self.remove(now, old, Some(CloseReason::Replaced));
        }

        self.next_allocation.get_or_insert(now);
        let rtc = self.new_rtc(now, false);
        let participant = Participant::new(id, &req, rtc, now);
        let kind = participant.kind;
        self.participants.insert(id, participant);
        self.register_current_ufrag(id);
        self.rooms.entry(req.room.clone()).or_default().push(id);
        self.note_meeting(&req);

        if kind == ParticipantKind::Interactive {
            let others = self
                .room_members(&req.room)
                .filter(|p| p.id != id && p.kind.is_visible())
                .map(Participant::info)
                .collect();
            let you = self.participants[&id].info();
            self.signal(
                id,
                ServerMessage::Joined {
                    version: stoa_proto::PROTOCOL_VERSION,
                    room: req.room.to_string(),
                    you,
                    grants: req.grants,
                    participants: others,
                    ice_servers: req.ice_servers,
                },
            );
        }
        if kind.is_visible() {
            let info = self.participants[&id].info();
            self.broadcast(
                &req.room,
                Some(id),
                ServerMessage::ParticipantJoined { participant: info },
            );
        }
        if kind == ParticipantKind::Interactive {
            self.after_join(id, &req.room, req.grants.room_admin);
        }
        self.subscribe_to_room(id);
        self.dirty.push(id);
        self.process(now);
    }

    /// Handles one signaling message from an interactive participant.
    pub fn handle_message(
        &mut self,
        now: Instant,
        id: ParticipantId,
        message: ClientMessage,
        unix_ms: u64,
    ) -> Result<(), SfuError> {
        let result = if self.is_waiting(id) {
            self.lobby_message(now, id, &message)
        } else {
            self.dispatch_message(now, id, message, unix_ms)
        };
        self.process(now);
        result
    }

    /// Applies a client's SDP offer and returns the answer (WHIP, WHEP, or a signaling `offer`).
    pub fn accept_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
    ) -> Result<String, SfuError> {
        let answer = self.apply_offer(now, id, sdp)?;
        self.process(now);
        Ok(answer)
    }

    /// The server-side ICE ufrag of a participant's session (what a WHIP/WHEP ETag names).
    pub fn ice_ufrag(&mut self, id: ParticipantId) -> Option<String> {
        let p = self.participants.get_mut(&id)?;
        Some(p.rtc.direct_api().local_ice_credentials().ufrag)
    }

    /// Applies a WHIP/WHEP `PATCH` body, a trickle-ICE SDP fragment (RFC 8840): its
    /// candidates are added, and ICE credentials other than the session's restart ICE. An ICE
    /// restart returns the fragment to answer with: the server's new credentials and its
    /// candidates.
    pub fn patch_ice(
        &mut self,
        now: Instant,
        id: ParticipantId,
        fragment: &str,
    ) -> Result<Option<String>, SfuError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        let frag = sdp::ice_fragment(fragment).map_err(SfuError::BadRequest)?;
        let mut restarted = None;
        if let Some((ufrag, pwd)) = frag.credentials {
            if p.remote_ice.as_ref() != Some(&(ufrag.clone(), pwd.clone())) {
                let mut api = p.rtc.direct_api();
                api.set_remote_ice_credentials(str0m::IceCreds {
                    ufrag: ufrag.clone(),
                    pass: pwd.clone(),
                });
                let local = str0m::IceCreds::new();
                api.set_local_ice_credentials(local.clone());
                p.remote_ice = Some((ufrag, pwd));
                let mut answer = format!(
                    "a=ice-lite\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
                    local.ufrag, local.pass
                );
                for c in &self.config.local_candidates {
                    answer.push_str(&format!("a={}\r\n", c.to_sdp_string()));
                }
                answer.push_str("a=end-of-candidates\r\n");
                restarted = Some(answer);
            }
        }
        for line in frag.candidates {
            let c = Candidate::from_sdp_string(&line)
                .map_err(|e| SfuError::BadRequest(format!("bad candidate: {e}")))?;
            p.rtc.add_remote_candidate(c);
        }
        if restarted.is_some() {
            tracing::info!(participant = %id, "ICE restarted by PATCH");
            self.register_current_ufrag(id);
        }
        self.dirty.push(id);
        self.process(now);
        Ok(restarted)
    }

    /// Removes a participant that left (WebSocket closed, `leave`, WHIP/WHEP `DELETE`).
    pub fn leave(&mut self, now: Instant, id: ParticipantId) {
        if self.is_waiting(id) {
            self.stop_waiting(id);
        } else {
            self.remove(now, id, None);
        }
        self.process(now);
    }

    /// Handles a datagram from one of the media ports.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        self.counters.datagrams_in += 1;
        let Some(id) = self.owner_of(&datagram) else {
            self.counters.unroutable += 1;
            return;
        };
        let completed = self.complete_binding_request(id, datagram.contents);
        let Ok(receive) = Receive::new(
            datagram.proto,
            datagram.source,
            datagram.destination,
            completed.as_deref().unwrap_or(datagram.contents),
        ) else {
            self.counters.unroutable += 1;
            return;
        };
        let Some(p) = self.participants.get_mut(&id) else {
            self.counters.unroutable += 1;
            return;
        };
        let input = Input::Receive(now.max(p.rtc_clock), receive);
        if !p.rtc.accepts(&input) {
            p.counters.dropped += 1;
            return;
        }
        p.last_heard = now;
        // Browsers negotiate the MID extension: only other publishers pay for this.
        if p.up.iter().any(|t| t.by_payload_type) {
            if let Some((ssrc, pt)) = demux::rtp_ssrc_and_pt(datagram.contents) {
                routing::map_by_payload_type(p, ssrc.into(), pt.into());
            }
        }
        if let Err(e) = p.rtc.handle_input(input) {
            tracing::debug!(participant = %id, error = %e, "datagram rejected");
            p.counters.dropped += 1;
            p.last_error = Some(e.to_string());
        }
        let key = (datagram.proto, datagram.source);
        if self.by_addr.get(&key) != Some(&id) {
            self.by_addr.insert(key, id);
            p.addrs.push(key);
        }
        // The receiver is polled now (str0m holds one received RTP packet at a time); the
        // subscribers it forwarded to wait for `poll_output`, so a batch of datagrams read
        // together drives each subscriber once rather than once per datagram.
        self.last_input = Some(now);
        self.drive(now, id);
    }

    /// Advances time: feeds due timeouts to every participant, retries throttled keyframe
    /// requests and removes participants whose ICE stayed down too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (grace, setup) = (self.config.silence_timeout, self.config.connect_timeout);
        let mut expired = Vec::new();
        for p in self.participants.values_mut() {
            if p.liveness_deadline(grace, setup).is_some_and(|t| now >= t) {
                expired.push(p.id);
                continue;
            }
            if p.next_timeout <= now {
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(participant = %p.id, error = %e, "timeout handling failed");
                }
                self.dirty.push(p.id);
            }
        }
        for id in expired {
            self.remove(now, id, Some(CloseReason::Silent));
        }
        self.retry_keyframe_requests(now);
        self.detect_speakers(now);
        self.allocate_if_due(now);
        self.process(now);
    }

    /// The next output, if any. Call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            if let Some(now) = self.last_input {
                self.process(now);
            }
        }
        self.outputs.pop_front()
    }

    /// When [`Sfu::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (grace, setup) = (self.config.silence_timeout, self.config.connect_timeout);
        self.participants
            .values()
            .flat_map(|p| {
                [
                    Some(p.next_timeout),
                    p.liveness_deadline(grace, setup),
                    p.next_keyframe_retry(self.config.keyframe_request_interval),
                ]
            })
            .chain([self.next_speaker_tick()])
            .flatten()
            .chain(
                self.next_allocation
                    .filter(|_| !self.participants.is_empty()),
            )
            .min()
    }

    pub fn counters(&self) -> ServerCounters {
        self.counters
    }

    /// Counters of every participant in a room, in join order, or `None` for an empty room.
    pub fn room_report(&self, room: &RoomName) -> Option<Vec<ParticipantReport>> {
        let ids = self.rooms.get(room)?;
        Some(
            ids.iter()
                .filter_map(|id| self.participants.get(id))
                .map(|p| ParticipantReport {
                    id: p.id,
                    identity: p.identity.clone(),
                    name: p.name.clone(),
                    kind: p.kind,
                    connected: p.connected,
                    counters: p.counters,
                })
                .collect(),
        )
    }

    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Address and ufrag routes held, for leak checks.
    pub fn routing_entries(&self) -> usize {
        self.by_addr.len() + self.by_ufrag.len()
    }

    /// A session for one participant. str0m answers with its own codec order, so the order is
    /// chosen here: H.264 first for a publisher whose offer prefers it, VP8 first otherwise.
    fn new_rtc(&self, now: Instant, prefer_h264: bool) -> Rtc {
        let builder = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_stats_interval(Some(stats::STATS_INTERVAL))
            .enable_bwe(Some(INITIAL_ESTIMATE))
            .clear_codecs()
            .enable_opus(true, false);
        let builder = if prefer_h264 {
            builder.enable_h264(true).enable_vp8(true)
        } else {
            builder.enable_vp8(true).enable_h264(true)
        };
        let mut rtc = builder.build(now);
        for c in &self.config.local_candidates {
            rtc.add_local_candidate(c.clone());
        }
        rtc
    }

    fn owner_of(&self, d: &Datagram) -> Option<ParticipantId> {
        // STUN names its owner; it goes first so a reused address cannot misroute an ICE check.
        if demux::classify(d.contents) == demux::PacketClass::Stun {
            if let Some(id) = demux::stun_local_ufrag(d.contents).and_then(|u| self.by_ufrag.get(u))
            {
                return Some(*id);
            }
        }
        self.by_addr.get(&(d.proto, d.source)).copied()
    }

    /// A Binding request without PRIORITY, completed and signed again with the participant's
    /// server-side ICE password if its own signature verifies (see [`demux::add_missing_priority`]).
    fn complete_binding_request(&mut self, id: ParticipantId, contents: &[u8]) -> Option<Vec<u8>> {
        if !demux::lacks_priority(contents) {
            return None;
        }
        let p = self.participants.get_mut(&id)?;
        let pwd = p.rtc.direct_api().local_ice_credentials().pass;
        demux::add_missing_priority(contents, pwd.as_bytes())
    }

    /// Routes STUN for the participant's current server ufrag to it (after join, after an
    /// offer that restarted ICE or replaced the session).
    fn register_current_ufrag(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let ufrag = p.rtc.direct_api().local_ice_credentials().ufrag;
        if !p.ufrags.contains(&ufrag) {
            p.ufrags.push(ufrag.clone());
        }
        if self.by_ufrag.insert(ufrag.clone(), id).is_none() {
            self.ufrag_changes.push(UfragChange::Added(ufrag));
        }
    }

    /// Ufrags that started or stopped naming a participant since the last call.
    pub fn drain_ufrag_changes(&mut self) -> std::vec::Drain<'_, UfragChange> {
        self.ufrag_changes.drain(..)
    }

    /// Whether datagrams from `source` belong to a participant.
    pub fn routes_address(&self, proto: Protocol, source: SocketAddr) -> bool {
        self.by_addr.contains_key(&(proto, source))
    }

    fn room_members<'a>(&'a self, room: &RoomName) -> impl Iterator<Item = &'a Participant> + 'a {
        self.rooms
            .get(room)
            .into_iter()
            .flatten()
            .filter_map(|id| self.participants.get(id))
    }

    fn signal(&mut self, to: ParticipantId, message: ServerMessage) {
        if self
            .participants
            .get(&to)
            .is_some_and(|p| p.kind == ParticipantKind::Interactive)
        {
            self.outputs.push_back(Output::Signal { to, message });
        }
    }

    /// Sends a message to every interactive participant of a room except `except`.
    fn broadcast(
        &mut self,
        room: &RoomName,
        except: Option<ParticipantId>,
        message: ServerMessage,
    ) {
        let targets: Vec<ParticipantId> = self
            .room_members(room)
            .filter(|p| Some(p.id) != except && p.kind == ParticipantKind::Interactive)
            .map(|p| p.id)
            .collect();
        for to in targets {
            self.outputs.push_back(Output::Signal {
                to,
                message: message.clone(),
            });
        }
    }

    fn dispatch_message(
        &mut self,
        now: Instant,
        id: ParticipantId,
        message: ClientMessage,
        unix_ms: u64,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        match message {
            ClientMessage::Join { .. } => Err(SfuError::OutOfOrder("already joined")),
            ClientMessage::Offer { sdp } => {
                if p.pending_offer.is_some() {
                    // Glare: the server is the impolite peer; the client rolls back and
                    // answers our offer, then offers again.
                    return Ok(());
                }
                let answer = self.apply_offer(now, id, &sdp)?;
                self.signal(id, ServerMessage::Answer { sdp: answer });
                Ok(())
            }
            ClientMessage::Answer { sdp } => self.apply_answer(now, id, &sdp),
            ClientMessage::Candidate { candidate } => {
                let line = candidate.trim();
                if line.is_empty() {
                    return Ok(());
                }
                let c = Candidate::from_sdp_string(line.strip_prefix("a=").unwrap_or(line))
                    .map_err(|e| SfuError::BadRequest(format!("bad candidate: {e}")))?;
                p.rtc.add_remote_candidate(c);
                self.dirty.push(id);
                Ok(())
            }
            ClientMessage::Publish { tracks } => {
                for t in tracks {
                    self.describe_track(id, &t.mid, Some(t.source), Some(t.muted));
                }
                Ok(())
            }
            ClientMessage::Mute { mid, muted } => {
                self.describe_track(id, &mid, None, Some(muted));
                Ok(())
            }
            ClientMessage::Chat { text } => {
                if !p.grants.publish_data {
                    return Err(SfuError::Forbidden(
                        "the token does not grant sending chat messages",
                    ));
                }
                let text = text.trim();
                if text.is_empty() || text.chars().count() > 4000 {
                    return Err(SfuError::BadRequest(
                        "chat text must be 1 to 4000 characters".into(),
                    ));
                }
                let message = stoa_proto::ChatMessage {
                    from: id,
                    name: p.name.clone(),
                    text: text.to_string(),
                    ts: unix_ms,
                };
                let room = p.room.clone();
                self.broadcast(&room, None, ServerMessage::Chat { message });
                Ok(())
            }
            ClientMessage::Rename { name } => {
                let name = stoa_proto::display_name(&name)
                    .map_err(|e| SfuError::BadRequest(format!("name {e}")))?;
                p.name.clone_from(&name);
                let room = p.room.clone();
                self.broadcast(&room, None, ServerMessage::ParticipantRenamed { id, name });
                Ok(())
            }
            ClientMessage::RaiseHand { raised } => self.set_hand(id, raised),
            ClientMessage::LowerHand { participant } => self.lower_hand_by_host(id, participant),
            ClientMessage::React { emoji } => self.react(now, id, &emoji),
            ClientMessage::MuteParticipant { participant } => self.mute_by_host(id, participant),
            ClientMessage::MakeHost { participant } => self.make_host(id, participant),
            ClientMessage::RemoveParticipant { participant } => {
                self.remove_by_host(now, id, participant)
            }
            ClientMessage::Admit { id: waiter } => self.decide(now, id, &waiter, true),
            ClientMessage::Deny { id: waiter } => self.decide(now, id, &waiter, false),
            ClientMessage::Lock { locked } => self.lock_by_host(id, locked),
            ClientMessage::EndMeeting => self.end_by_host(id),
            ClientMessage::VideoSize {
                track,
                width,
                height,
            } => self.set_video_size(now, id, &track, width, height),
            ClientMessage::Ping => {
                self.signal(id, ServerMessage::Pong);
                Ok(())
            }
            ClientMessage::Leave => {
                self.remove(now, id, None);
                Ok(())
            }
        }
    }

    /// Whether an offer would be accepted as far as can be told without a session: it parses
    /// and offers a supported codec. Checked before a WHIP/WHEP session replaces an older one.
    pub fn check_offer(sdp: &str) -> Result<(), SfuError> {
        Self::parse_offer(&sdp::normalize_offer(sdp)).map(drop)
    }

    fn parse_offer(sdp: &str) -> Result<str0m::change::SdpOffer, SfuError> {
        // str0m's parse errors start with parser internals (a pointer): not for clients.
        let offer = str0m::change::SdpOffer::from_sdp_string(sdp).map_err(|e| {
            let text = e.to_string();
            let detail: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.contains("PointerOffset") && !l.contains("0x"))
                .collect();
            SfuError::BadSdp(match detail.is_empty() {
                true => "the offer is not valid SDP".into(),
                false => format!("the offer is not valid SDP: {}", detail.join("; ")),
            })
        })?;
        sdp::check_codecs(sdp).map_err(SfuError::BadSdp)?;
        Ok(offer)
    }

    fn apply_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
    ) -> Result<String, SfuError> {
        let sdp = &sdp::normalize_offer(sdp);
        let offer = Self::parse_offer(sdp)?;
        let fresh = self
            .participants
            .get(&id)
            .is_some_and(|p| !p.remote_described);
        if fresh && sdp::prefers_h264(sdp) {
            let rtc = self.new_rtc(now, true);
            if let Some(p) = self.participants.get_mut(&id) {
                p.rtc = rtc;
            }
        }
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        let answer = p
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        p.remote_described = true;
        p.remote_ice = sdp::ice_credentials(sdp);
        let whep = p.kind == ParticipantKind::Whep;
        self.register_current_ufrag(id);
        self.dirty.push(id);
        let answer = answer.to_sdp_string();
        if !whep {
            return Ok(answer);
        }
        // The viewer's slots are filled once it connects, in m-line order, oldest track
        // first (`fill_whep_slots`); each slot's msid names the publisher it will get, so a
        // publisher's audio and video arrive as one stream. (A slot refilled later keeps the
        // msid it was answered with: WHEP has no renegotiation.)
        let room = self.participants.get(&id).map(|p| p.room.clone());
        let mut candidates: Vec<(ParticipantId, TrackKind)> = room
            .iter()
            .flat_map(|room| self.room_members(room))
            .filter(|p| p.id != id)
            .flat_map(|p| p.up.iter().map(move |t| (p.id, t.kind)))
            .collect();
        Ok(sdp::set_stream_ids(&answer, |kind| {
            let kind = match kind {
                "audio" => TrackKind::Audio,
                "video" => TrackKind::Video,
                _ => return None,
            };
            let i = candidates.iter().position(|c| c.1 == kind)?;
            Some(candidates.remove(i).0.to_string())
        }))
    }

    /// Drives every participant that had input until no more work is pending.
    fn process(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            self.drive(now, id);
        }
    }
}
