//! Per-participant state: its WebRTC session, the tracks it publishes (up-tracks) and the
//! tracks it receives (down-tracks), its negotiation state and counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpPendingOffer;
use str0m::format::PayloadParams;
use str0m::media::{Mid, Pt};
use str0m::net::Protocol;
use str0m::Rtc;

use stoa_proto::{
    Grants, ParticipantId, ParticipantInfo, RoomName, TrackInfo, TrackKind, TrackSource,
};

use crate::bandwidth::DemandRise;
use crate::congestion::QueueWatch;
use crate::keyframe::VideoCodec;
use crate::rewrite::SeqRewriter;
use crate::simulcast::{Layer, LayerChoice};
use crate::stats::EstimateSource;
use crate::vp8::Vp8Rewriter;
use crate::{JoinRequest, ParticipantCounters, ParticipantLimits};

/// How a participant connected, which decides how it negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantKind {
    /// A signaling client (the web app): offers its tracks, answers the server's offers.
    Interactive,
    /// A WHIP publisher: one offer, publish only.
    Whip,
    /// A WHEP viewer: one offer whose receive slots the server fills with the room's tracks.
    Whep,
}

impl ParticipantKind {
    /// Whether other participants see this one in the room.
    pub fn is_visible(self) -> bool {
        self != ParticipantKind::Whep
    }
}

/// A payload type's codec parameters, and the video codec whose keyframes can be recognised.
pub(crate) type KnownPayload = (PayloadParams, Option<VideoCodec>);

/// A track this participant publishes.
pub(crate) struct UpTrack {
    pub id: String,
    pub mid: Mid,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub muted: bool,
    /// A host muted it: its packets are dropped until the owner unmutes.
    pub host_muted: bool,
    /// Participants with a down-track fed by this track.
    pub subscribers: Vec<ParticipantId>,
    /// Payload type → codec parameters, learned from the first packet of each type.
    pub payloads: Vec<(Pt, Option<KnownPayload>)>,
    /// Its simulcast layers, lowest first; one layer without a rid if not simulcast.
    pub layers: Vec<Layer>,
    /// Its m-line negotiated neither the MID extension nor simulcast: a stream the offer named
    /// no SSRC for can only be placed by payload type (`routing::map_by_payload_type`).
    pub by_payload_type: bool,
}

impl UpTrack {
    pub fn info(&self, participant: ParticipantId) -> TrackInfo {
        TrackInfo {
            id: self.id.clone(),
            participant,
            kind: self.kind,
            source: self.source,
            muted: self.muted,
        }
    }

    pub fn is_simulcast(&self) -> bool {
        self.layers.len() > 1
    }

    /// The rids the publisher is asked to send.
    pub fn active_rids(&self) -> Vec<String> {
        self.layers
            .iter()
            .filter(|l| l.active)
            .filter_map(|l| l.rid.map(|r| r.to_string()))
            .collect()
    }
}

/// Where a down-track is in its life. Only interactive participants negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DownState {
    /// Waiting to be added to the next server offer.
    ToOpen,
    /// In an offer the client has not answered yet.
    Negotiating,
    /// Negotiated: media flows.
    Active,
    /// Waiting to be removed in the next server offer.
    ToStop,
    /// Removed in an offer the client has not answered yet.
    NegotiatingStop,
}

/// A track this participant receives, fed by another participant's up-track.
pub(crate) struct DownTrack {
    pub kind: TrackKind,
    /// The feeding up-track `(publisher, publisher's mid)`; `None` for an empty WHEP slot or
    /// a track whose publisher left while it was being negotiated.
    pub source: Option<(ParticipantId, Mid)>,
    pub track_id: String,
    /// This participant's mid, once negotiated or offered.
    pub mid: Option<Mid>,
    pub state: DownState,
    pub rewriter: SeqRewriter,
    /// Keeps VP8 PictureID/TL0PICIDX continuous across source switches.
    pub vp8: Vp8Rewriter,
    /// Which layer of the source is forwarded; until the first switch point nothing is.
    pub choice: LayerChoice,
    /// Publisher payload type → this participant's payload type (None: no common codec).
    pub pt_map: Vec<(Pt, Option<Pt>)>,
}

impl DownTrack {
    pub fn new(kind: TrackKind, source: Option<(ParticipantId, Mid)>, track_id: String) -> Self {
        Self {
            kind,
            source,
            track_id,
            mid: None,
            state: DownState::ToOpen,
            rewriter: SeqRewriter::default(),
            vp8: Vp8Rewriter::default(),
            choice: LayerChoice::default(),
            pt_map: Vec::new(),
        }
    }

    /// Points this down-track at a new source; the stream continues without a gap in numbers.
    pub fn retarget(&mut self, source: Option<(ParticipantId, Mid)>) {
        self.source = source;
        self.choice.reset();
        self.pt_map.clear();
    }
}

pub(crate) struct Participant {
    pub id: ParticipantId,
    pub room: RoomName,
    pub identity: String,
    pub name: String,
    pub grants: Grants,
    pub kind: ParticipantKind,
    pub hand_raised: bool,
    /// When it last reacted (reactions are rate-limited).
    pub last_reaction: Option<Instant>,
    pub rtc: Rtc,
    /// Every server-side ICE ufrag this participant has had (they change on ICE restarts).
    pub ufrags: Vec<String>,
    /// Remote addresses this participant has sent from.
    pub addrs: Vec<(Protocol, SocketAddr)>,
    pub next_timeout: Instant,
    /// The latest time `rtc` was given: serving its immediate timeouts can run it a few
    /// microseconds ahead of the caller's clock, and str0m ignores time that goes backwards.
    pub rtc_clock: Instant,
    pub connected: bool,
    pub joined_at: Instant,
    /// When the last datagram from this participant arrived.
    pub last_heard: Instant,
    pub pending_offer: Option<SdpPendingOffer>,
    /// The client's first offer has been applied (the server may offer from then on).
    pub remote_described: bool,
    pub needs_negotiation: bool,
    pub up: Vec<UpTrack>,
    pub down: Vec<DownTrack>,
    /// Source and mute state the client declared per mid (`publish`, `mute`), possibly
    /// before the track's media arrived.
    pub declared: HashMap<String, (Option<TrackSource>, Option<bool>)>,
    pub counters: ParticipantCounters,
    /// What is known of the bandwidth towards this participant.
    pub downlink: DownlinkEstimate,
    /// The (minimum, desired) bitrates str0m's estimator was last given.
    pub bwe_rates: (u64, u64),
    /// Rises in what its video asks for, watched until the estimate follows.
    pub demand_rise: DemandRise,
    /// The queue on its downlink, seen in round trips.
    pub queue: QueueWatch,
    /// Its limits and priority as a publisher.
    pub limits: ParticipantLimits,
    /// The client's ICE ufrag and password as last offered (WHIP/WHEP PATCH compares them).
    pub remote_ice: Option<(String, String)>,
    /// The last error its WebRTC session reported (why it failed, if it does).
    pub last_error: Option<String>,
    /// Its client closed the session (DTLS close_notify).
    pub closed_by_client: bool,
}

/// The bandwidth towards a participant: str0m's own TWCC estimate while it can probe, and
/// otherwise the receiver's REMB reports (browsers that do not negotiate transport-wide
/// congestion control send those instead). str0m reports its TWCC estimate averaged over
/// 3 s; its latest raw estimate (from its peer statistics) is taken when lower, so a link
/// that narrows is followed at once and one that widens at the averaged pace.
#[derive(Debug, Default, Clone, Copy)]
pub struct DownlinkEstimate {
    twcc_bps: Option<u64>,
    twcc_probing: bool,
    twcc_raw_bps: Option<u64>,
    remb_bps: Option<u64>,
}

impl DownlinkEstimate {
    pub fn on_twcc(&mut self, bps: u64, can_probe: bool) {
        self.twcc_bps = Some(bps);
        self.twcc_probing = can_probe;
    }

    /// str0m's latest unaveraged TWCC estimate.
    pub fn on_twcc_raw(&mut self, bps: u64) {
        self.twcc_raw_bps = Some(bps);
    }

    pub fn on_remb(&mut self, bps: u64) {
        self.remb_bps = Some(bps);
    }

    /// Bits/s, if anything is known.
    pub fn bps(&self) -> Option<u64> {
        self.current().map(|(bps, _)| bps)
    }

    /// Which mechanism [`DownlinkEstimate::bps`] comes from.
    pub fn source(&self) -> Option<EstimateSource> {
        self.current().map(|(_, source)| source)
    }

    fn current(&self) -> Option<(u64, EstimateSource)> {
        let twcc = self.twcc_bps.map(|bps| {
            let latest = self.twcc_raw_bps.map_or(bps, |raw| raw.min(bps));
            (latest, EstimateSource::Twcc)
        });
        let remb = self.remb_bps.map(|bps| (bps, EstimateSource::Remb));
        if self.twcc_probing {
            twcc
        } else {
            remb.or(twcc)
        }
    }
}

impl Participant {
    pub fn new(id: ParticipantId, req: &JoinRequest, rtc: Rtc, now: Instant) -> Self {
        Self {
            id,
            room: req.room.clone(),
            identity: req.identity.clone(),
            name: req.name.clone(),
            grants: req.grants,
            kind: req.kind,
            hand_raised: false,
            last_reaction: None,
            rtc,
            ufrags: Vec::new(),
            addrs: Vec::new(),
            next_timeout: now,
            rtc_clock: now,
            connected: false,
            joined_at: now,
            last_heard: now,
            pending_offer: None,
            remote_described: false,
            needs_negotiation: false,
            up: Vec::new(),
            down: Vec::new(),
            declared: HashMap::new(),
            counters: ParticipantCounters::default(),
            downlink: DownlinkEstimate::default(),
            limits: ParticipantLimits::default(),
            remote_ice: None,
            last_error: None,
            closed_by_client: false,
            bwe_rates: (0, 0),
            demand_rise: DemandRise::default(),
            queue: QueueWatch::default(),
        }
    }

    pub fn info(&self) -> ParticipantInfo {
        ParticipantInfo {
            id: self.id,
            identity: self.identity.clone(),
            name: self.name.clone(),
            tracks: self.up.iter().map(|t| t.info(self.id)).collect(),
            hand_raised: self.hand_raised,
        }
    }

    pub fn up_track_mut(&mut self, mid: Mid) -> Option<&mut UpTrack> {
        self.up.iter_mut().find(|t| t.mid == mid)
    }

    /// When this participant counts as gone if nothing arrives from it before then: `grace`
    /// after its last datagram once connected; WHIP/WHEP sessions that never connect get
    /// `setup` to do so. Interactive participants that never connected are bounded by their
    /// signaling connection instead (the user may still be granting camera access).
    pub fn liveness_deadline(&self, grace: Duration, setup: Duration) -> Option<Instant> {
        if self.connected {
            Some(self.last_heard + grace)
        } else if self.kind != ParticipantKind::Interactive {
            Some(self.joined_at + setup)
        } else {
            None
        }
    }

    pub fn next_keyframe_retry(&self, interval: Duration) -> Option<Instant> {
        self.up
            .iter()
            .flat_map(|t| &t.layers)
            .filter(|l| l.keyframe_owed)
            .filter_map(|l| l.last_keyframe_request.map(|last| last + interval))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twcc_wins_while_it_probes_and_remb_stands_in_otherwise() {
        let mut e = DownlinkEstimate::default();
        assert_eq!((e.bps(), e.source()), (None, None));
        // Without TWCC feedback str0m reports its starting estimate, not a measurement.
        e.on_twcc(300_000, false);
        e.on_remb(2_000_000);
        assert_eq!(
            (e.bps(), e.source()),
            (Some(2_000_000), Some(EstimateSource::Remb))
        );
        e.on_twcc(900_000, true);
        assert_eq!(
            (e.bps(), e.source()),
            (Some(900_000), Some(EstimateSource::Twcc))
        );
        // TWCC stopped (e.g. its last sending m-line went away): back to REMB.
        e.on_twcc(900_000, false);
        assert_eq!(
            (e.bps(), e.source()),
            (Some(2_000_000), Some(EstimateSource::Remb))
        );
        let mut only_twcc = DownlinkEstimate::default();
        only_twcc.on_twcc(700_000, false);
        assert_eq!(only_twcc.bps(), Some(700_000));
    }
}
