//! Publish/subscribe inside a room: turning a participant's `Rtc` events into routing
//! changes, forwarding RTP packets to subscribers (the layer each down-track's
//! [`LayerChoice`](crate::simulcast::LayerChoice) admits), renegotiating with interactive
//! clients, filling WHEP slots and throttling keyframe requests per layer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::BweKind;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt, Rids};
use str0m::rtp::{Extension, ExtensionValues, RtpPacket, RtpWrite, Ssrc};
use str0m::{Event, Input, Output as RtcOutput, Rtc};

use stoa_proto::{ParticipantId, ServerMessage, TrackKind, TrackSource};

use crate::keyframe::{starts_keyframe, vp8_keyframe_size, VideoCodec};
use crate::participant::{
    DownState, DownTrack, KnownPayload, Participant, ParticipantKind, UpTrack,
};
use crate::simulcast::{Admit, Layer, MAX_LAYERS, PACKET_OVERHEAD};
use crate::{CloseReason, Output, Sfu, SfuError, UfragChange};

/// RTP timestamp step put between two sources on one down-track (about one frame).
const VIDEO_TS_STEP: u32 = 3000;
const AUDIO_TS_STEP: u32 = 960;

/// Due timeouts served within one [`Sfu::drive`] before the rest waits for the media loop
/// (a bound in case a session keeps asking for another).
const MAX_IMMEDIATE_TIMEOUTS: u32 = 64;
/// How soon the pacer's next packet must be due to be sent at once by [`Sfu::drive`].
const IMMEDIATE: Duration = Duration::from_micros(50);

impl Sfu {
    /// Polls one participant's `Rtc` until it waits for time, then acts on its events.
    pub(crate) fn drive(&mut self, now: Instant, id: ParticipantId) {
        self.negotiate(id);
        let mut events = Vec::new();
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let mut immediate_timeouts = 0;
        let failed = loop {
            match p.rtc.poll_output() {
                // str0m's pacer hands out one packet per timeout and asks for the next a
                // microsecond later; serving such timeouts here rather than on the media
                // loop's next turn sends a subscriber's queue in one go.
                Ok(RtcOutput::Timeout(t))
                    if immediate_timeouts < MAX_IMMEDIATE_TIMEOUTS
                        && pacer_is_next(&p.rtc, t, now) =>
                {
                    immediate_timeouts += 1;
                    p.rtc_clock = p.rtc_clock.max(t);
                    if let Err(e) = p.rtc.handle_input(Input::Timeout(p.rtc_clock)) {
                        p.last_error = Some(e.to_string());
                        break true;
                    }
                }
                Ok(RtcOutput::Timeout(t)) => {
                    p.next_timeout = t;
                    break false;
                }
                Ok(RtcOutput::Transmit(t)) => self.outputs.push_back(Output::Transmit(t)),
                Ok(RtcOutput::Event(e)) => events.push(e),
                Err(e) => {
                    p.last_error = Some(e.to_string());
                    break true;
                }
            }
        };
        let alive = p.rtc.is_alive();
        for event in events {
            self.handle_event(now, id, event);
        }
        if failed || !alive {
            let closed = self
                .participants
                .get(&id)
                .is_some_and(|p| p.closed_by_client && !failed);
            let reason = if closed {
                CloseReason::Closed
            } else {
                CloseReason::Failed
            };
            self.remove(now, id, Some(reason));
        }
    }

    fn handle_event(&mut self, now: Instant, id: ParticipantId, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.forward(now, id, packet),
            Event::PeerStats(stats) => {
                self.on_peer_stats(now, id, &stats);
                self.record_stats(id, Event::PeerStats(stats));
            }
            e @ Event::MediaIngressStats(_) => self.record_stats(id, e),
            e @ Event::MediaEgressStats(_) => self.record_stats(id, e),
            Event::Closed => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.closed_by_client = true;
                }
            }
            Event::Connected => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.connected = true;
                    tracing::info!(participant = %id, "media connected");
                }
            }
            Event::MediaAdded(added) => {
                self.media_direction(now, id, added.mid, added.kind, added.direction)
            }
            Event::MediaChanged(changed) => {
                let kind = self
                    .participants
                    .get_mut(&id)
                    .and_then(|p| p.rtc.media(changed.mid).map(|m| m.kind()));
                if let Some(kind) = kind {
                    self.media_direction(now, id, changed.mid, kind, changed.direction);
                }
            }
            Event::KeyframeRequest(req) => {
                let source = self.participants.get(&id).and_then(|p| {
                    p.down
                        .iter()
                        .find(|d| d.mid == Some(req.mid) && d.state == DownState::Active)
                        .and_then(|d| Some((d.source?, d.choice.current.or(d.choice.target)?)))
                });
                if let Some(((publisher, mid), layer)) = source {
                    self.request_keyframe(now, publisher, mid, layer);
                }
            }
            Event::EgressBitrateEstimate(kind) => {
                if let Some(p) = self.participants.get_mut(&id) {
                    match kind {
                        BweKind::Twcc {
                            estimate,
                            can_probe,
                        } => p.downlink.on_twcc(estimate.as_u64(), can_probe),
                        BweKind::Remb { estimate, .. } => p.downlink.on_remb(estimate.as_u64()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// A remote m-line appeared or changed direction: it publishes into the room if we
    /// receive on it, and is a WHEP slot if we only send on it.
    fn media_direction(
        &mut self,
        now: Instant,
        id: ParticipantId,
        mid: Mid,
        kind: MediaKind,
        dir: Direction,
    ) {
        let Some(p) = self.participants.get(&id) else {
            return;
        };
        let (participant_kind, published) = (p.kind, p.up.iter().any(|t| t.mid == mid));
        let kind = track_kind(kind);
        let receiving = matches!(dir, Direction::RecvOnly | Direction::SendRecv);
        if receiving && !published {
            self.add_up_track(now, id, mid, kind);
        } else if !receiving && published {
            self.remove_up_track(id, mid);
        }
        if participant_kind == ParticipantKind::Whep && dir == Direction::SendOnly {
            if let Some(p) = self.participants.get_mut(&id) {
                if !p.down.iter().any(|d| d.mid == Some(mid)) {
                    let mut slot = DownTrack::new(kind, None, String::new());
                    slot.mid = Some(mid);
                    slot.state = DownState::Active;
                    p.down.push(slot);
                }
            }
            self.fill_whep_slots(now, id);
        }
    }

    fn add_up_track(&mut self, now: Instant, id: ParticipantId, mid: Mid, kind: TrackKind) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if !p.grants.publish {
            self.signal(
                id,
                ServerMessage::error(
                    stoa_proto::ErrorCode::Forbidden,
                    "the token does not grant publishing",
                ),
            );
            return;
        }
        let (source, muted) = p
            .declared
            .get(&mid.to_string())
            .copied()
            .unwrap_or_default();
        let default_source = match kind {
            TrackKind::Audio => TrackSource::Microphone,
            TrackKind::Video => TrackSource::Camera,
        };
        let layers: Vec<Layer> = match p.rtc.media(mid).map(|m| m.rids_rx()) {
            Some(Rids::Specific(rids)) if !rids.is_empty() => rids
                .iter()
                .take(MAX_LAYERS)
                .map(|rid| Layer::new(Some(*rid), now))
                .collect(),
            _ => vec![Layer::new(None, now)],
        };
        let by_payload_type = layers.len() == 1
            && p.rtc
                .media(mid)
                .is_some_and(|m| m.remote_extmap().id_of(Extension::RtpMid).is_none());
        let track = UpTrack {
            id: format!("{id}-{mid}"),
            mid,
            kind,
            source: source.unwrap_or(default_source),
            muted: muted.unwrap_or(false),
            host_muted: false,
            subscribers: Vec::new(),
            payloads: Vec::new(),
            layers,
            by_payload_type,
        };
        let info = track.info(id);
        p.up.push(track);
        let room = p.room.clone();
        tracing::info!(participant = %id, track = %info.id, kind = ?kind, layers = p.up.last().map_or(0, |t| t.layers.len()), "track published");
        self.broadcast(&room, None, ServerMessage::TrackPublished { track: info });
        let subscribers: Vec<ParticipantId> = self
            .room_members(&room)
            .filter(|s| s.id != id && s.grants.subscribe)
            .map(|s| s.id)
            .collect();
        for sub in subscribers {
            self.subscribe(now, sub, id, mid);
        }
    }

    fn remove_up_track(&mut self, id: ParticipantId, mid: Mid) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let Some(pos) = p.up.iter().position(|t| t.mid == mid) else {
            return;
        };
        let track = p.up.remove(pos);
        let room = p.room.clone();
        for sub in &track.subscribers {
            self.unsubscribe(*sub, id, mid);
        }
        self.broadcast(
            &room,
            None,
            ServerMessage::TrackUnpublished {
                id: track.id,
                participant: id,
            },
        );
    }

    /// Records what the client says a mid carries, and re-announces the track if it exists.
    pub(crate) fn describe_track(
        &mut self,
        id: ParticipantId,
        mid: &str,
        source: Option<TrackSource>,
        muted: Option<bool>,
    ) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let entry = p.declared.entry(mid.to_string()).or_default();
        entry.0 = source.or(entry.0);
        entry.1 = muted.or(entry.1);
        let Some(track) = p.up.iter_mut().find(|t| t.mid.to_string() == mid) else {
            return;
        };
        let before = (track.source, track.muted);
        track.source = source.unwrap_or(track.source);
        track.muted = muted.unwrap_or(track.muted);
        if !track.muted {
            track.host_muted = false;
        }
        if before != (track.source, track.muted) {
            let info = track.info(id);
            let room = p.room.clone();
            self.broadcast(&room, None, ServerMessage::TrackPublished { track: info });
        }
    }

    /// Gives a new participant every track already published in its room.
    pub(crate) fn subscribe_to_room(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get(&id) else {
            return;
        };
        if !p.grants.subscribe {
            return;
        }
        let sources: Vec<(ParticipantId, Mid)> = self
            .room_members(&p.room)
            .filter(|other| other.id != id)
            .flat_map(|other| other.up.iter().map(move |t| (other.id, t.mid)))
            .collect();
        for (publisher, mid) in sources {
            self.subscribe_at(id, publisher, mid);
        }
    }

    fn subscribe(&mut self, now: Instant, sub: ParticipantId, publisher: ParticipantId, mid: Mid) {
        self.subscribe_at(sub, publisher, mid);
        if p_kind(self, sub) == Some(ParticipantKind::Whep) {
            self.fill_whep_slots(now, sub);
        }
    }

    fn subscribe_at(&mut self, sub: ParticipantId, publisher: ParticipantId, mid: Mid) {
        let Some(kind) = p_kind(self, sub) else {
            return;
        };
        if kind == ParticipantKind::Whep {
            return; // WHEP viewers take tracks into their fixed slots; see fill_whep_slots.
        }
        let Some(track) = self
            .participants
            .get_mut(&publisher)
            .and_then(|p| p.up_track_mut(mid))
        else {
            return;
        };
        if !track.subscribers.contains(&sub) {
            track.subscribers.push(sub);
        }
        let down = DownTrack::new(track.kind, Some((publisher, mid)), track.id.clone());
        if let Some(s) = self.participants.get_mut(&sub) {
            s.down.push(down);
            s.needs_negotiation = true;
            self.dirty.push(sub);
        }
    }

    fn unsubscribe(&mut self, sub: ParticipantId, publisher: ParticipantId, mid: Mid) {
        let Some(s) = self.participants.get_mut(&sub) else {
            return;
        };
        let is_whep = s.kind == ParticipantKind::Whep;
        s.down.retain_mut(|d| {
            if d.source != Some((publisher, mid)) {
                return true;
            }
            if is_whep {
                d.retarget(None);
                return true;
            }
            match d.state {
                DownState::ToOpen => return false,
                DownState::Active => d.state = DownState::ToStop,
                DownState::Negotiating | DownState::ToStop | DownState::NegotiatingStop => {}
            }
            d.source = None;
            true
        });
        s.needs_negotiation = true;
        self.dirty.push(sub);
        if is_whep {
            self.whep_refill.push(sub);
        }
    }

    /// Puts the room's unassigned tracks into a WHEP viewer's empty slots, oldest first.
    pub(crate) fn fill_whep_slots(&mut self, now: Instant, viewer: ParticipantId) {
        let Some(v) = self.participants.get(&viewer) else {
            return;
        };
        let assigned: Vec<(ParticipantId, Mid)> = v.down.iter().filter_map(|d| d.source).collect();
        let mut candidates: Vec<(ParticipantId, Mid, TrackKind, String)> = self
            .room_members(&v.room)
            .filter(|p| p.id != viewer)
            .flat_map(|p| {
                p.up.iter()
                    .map(move |t| (p.id, t.mid, t.kind, t.id.clone()))
            })
            .filter(|(p, m, _, _)| !assigned.contains(&(*p, *m)))
            .collect();
        let mut filled = Vec::new();
        if let Some(v) = self.participants.get_mut(&viewer) {
            for slot in v.down.iter_mut().filter(|d| d.source.is_none()) {
                if let Some(i) = candidates.iter().position(|c| c.2 == slot.kind) {
                    let (publisher, mid, _, track_id) = candidates.remove(i);
                    slot.retarget(Some((publisher, mid)));
                    slot.track_id = track_id;
                    filled.push((publisher, mid));
                }
            }
        }
        for (publisher, mid) in filled {
            if let Some(t) = self
                .participants
                .get_mut(&publisher)
                .and_then(|p| p.up_track_mut(mid))
            {
                t.subscribers.push(viewer);
            }
            self.request_keyframe(now, publisher, mid, 0);
        }
    }

    /// Sends a server offer to an interactive participant whose down-tracks changed, unless
    /// an offer is already outstanding (then it waits for the answer).
    fn negotiate(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if p.kind != ParticipantKind::Interactive
            || !p.remote_described
            || p.pending_offer.is_some()
            || !p.needs_negotiation
        {
            return;
        }
        p.needs_negotiation = false;
        let mut api = p.rtc.sdp_api();
        for d in p.down.iter_mut() {
            match d.state {
                DownState::ToOpen => {
                    let stream_id = d.source.map(|(publisher, _)| publisher.to_string());
                    let kind = match d.kind {
                        TrackKind::Audio => MediaKind::Audio,
                        TrackKind::Video => MediaKind::Video,
                    };
                    d.mid = Some(api.add_media(
                        kind,
                        Direction::SendOnly,
                        stream_id,
                        Some(d.track_id.clone()),
                        None,
                    ));
                    d.state = DownState::Negotiating;
                }
                DownState::ToStop => {
                    if let Some(mid) = d.mid {
                        api.stop_media(mid);
                    }
                    d.state = DownState::NegotiatingStop;
                }
                _ => {}
            }
        }
        if !api.has_changes() {
            return;
        }
        if let Some((offer, pending)) = api.apply() {
            p.pending_offer = Some(pending);
            self.signal(
                id,
                ServerMessage::Offer {
                    sdp: offer.to_sdp_string(),
                },
            );
        }
    }

    pub(crate) fn apply_answer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        let Some(pending) = p.pending_offer.take() else {
            return Err(SfuError::OutOfOrder("no offer is outstanding"));
        };
        let result = str0m::change::SdpAnswer::from_sdp_string(sdp)
            .map_err(|e| SfuError::BadSdp(e.to_string()))
            .and_then(|answer| {
                p.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| SfuError::BadSdp(e.to_string()))
            });
        let accepted = result.is_ok();
        let mut opened = Vec::new();
        for d in p.down.iter_mut() {
            match (d.state, accepted) {
                (DownState::Negotiating, true) if d.source.is_some() => {
                    d.state = DownState::Active;
                    opened.extend(d.source);
                }
                (DownState::Negotiating, true) => d.state = DownState::ToStop,
                (DownState::Negotiating, false) => {
                    d.state = DownState::ToOpen;
                    d.mid = None;
                }
                (DownState::NegotiatingStop, false) => d.state = DownState::ToStop,
                _ => {}
            }
        }
        if accepted {
            p.down.retain(|d| d.state != DownState::NegotiatingStop);
        }
        p.needs_negotiation |= p
            .down
            .iter()
            .any(|d| matches!(d.state, DownState::ToOpen | DownState::ToStop));
        self.dirty.push(id);
        // Ask for a keyframe at once, so the new subscriber's first frame is not a wait for
        // the publisher's next periodic keyframe.
        for (publisher, mid) in opened {
            self.request_keyframe(now, publisher, mid, 0);
        }
        result
    }

    /// Forwards one RTP packet from a publisher to each subscriber of its track whose
    /// down-track admits the packet's layer.
    fn forward(&mut self, now: Instant, publisher: ParticipantId, packet: RtpPacket) {
        let Some(Ingested {
            mid,
            layer,
            params,
            switch_point,
            vp8,
        }) = self.ingest(now, publisher, &packet)
        else {
            return;
        };
        let pt = packet.header.payload_type;
        let mut subscribers = std::mem::take(&mut self.scratch_ids);
        subscribers.clear();
        if let Some(track) = self
            .participants
            .get_mut(&publisher)
            .and_then(|p| p.up_track_mut(mid))
        {
            subscribers.extend_from_slice(&track.subscribers);
        }
        let mut want_keyframe = false;
        for sub in &subscribers {
            let Some(s) = self.participants.get_mut(sub) else {
                continue;
            };
            let Some(d) = s
                .down
                .iter_mut()
                .find(|d| d.source == Some((publisher, mid)) && d.state == DownState::Active)
            else {
                continue;
            };
            match d.choice.on_packet(layer, switch_point) {
                Admit::Skip => continue,
                Admit::Wait => {
                    s.counters.awaiting_keyframe += 1;
                    want_keyframe = true;
                    continue;
                }
                Admit::Switch => {
                    tracing::debug!(subscriber = %sub, track = %d.track_id, layer, "layer switched");
                    d.rewriter.restart();
                    d.vp8.restart();
                }
                Admit::Forward => {}
            }
            let out_pt = match d.pt_map.iter().find(|(p, _)| *p == pt) {
                Some((_, out)) => *out,
                None => {
                    let out = s.rtc.codec_config().match_params(params).map(|c| c.pt());
                    d.pt_map.push((pt, out));
                    out
                }
            };
            let Some(out_pt) = out_pt else {
                s.counters.dropped += 1;
                continue;
            };
            let step = if d.kind == TrackKind::Video {
                VIDEO_TS_STEP
            } else {
                AUDIO_TS_STEP
            };
            let Some((seq, ts)) = d
                .rewriter
                .rewrite(*packet.seq_no, packet.header.timestamp, step)
            else {
                continue;
            };
            let Some(mid_out) = d.mid else {
                continue;
            };
            let video = d.kind == TrackKind::Video;
            let mut api = s.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid_out, None) else {
                s.counters.dropped += 1;
                continue;
            };
            let ext = ExtensionValues {
                audio_level: packet.header.ext_vals.audio_level,
                voice_activity: packet.header.ext_vals.voice_activity,
                video_orientation: packet.header.ext_vals.video_orientation,
                video_content_type: packet.header.ext_vals.video_content_type,
                ..Default::default()
            };
            let packet_time = packet.timestamp;
            let payload = match vp8 {
                true => d.vp8.rewrite(&packet.payload).map(Arc::from),
                false => None,
            };
            let payload = payload.unwrap_or_else(|| packet.payload.clone());
            tx.write_rtp(
                RtpWrite::new(out_pt, seq.into(), ts, packet_time, payload)
                    .marker(packet.header.marker)
                    .ext_vals(ext)
                    .nackable(video),
            );
            s.counters.packets_out += 1;
            self.dirty.push(*sub);
        }
        self.scratch_ids = subscribers;
        if want_keyframe {
            self.request_keyframe(now, publisher, mid, layer);
        }
    }

    /// Accounts a publisher's packet to its track and layer: counters, layer bitrate,
    /// keyframes. `None` when it is not to be forwarded (unknown stream, host-muted, unknown
    /// payload type).
    fn ingest(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        packet: &RtpPacket,
    ) -> Option<Ingested> {
        let p = self.participants.get_mut(&publisher)?;
        p.counters.packets_in += 1;
        let ssrc = packet.header.ssrc;
        let (mid, rid) = p
            .rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))?;
        let pt = packet.header.payload_type;
        let codec_params = p.rtc.codec_config().find(|c| c.pt() == pt).copied();
        let track = p.up.iter_mut().find(|t| t.mid == mid)?;
        if track.host_muted {
            p.counters.dropped += 1;
            return None;
        }
        self.speakers
            .observe(now, publisher, mid, packet.header.ext_vals.audio_level);
        let (params, codec) = known_payload(track, pt, codec_params)?;
        let index = match track.layers.iter().position(|l| l.ssrc == Some(ssrc)) {
            Some(i) => i,
            None => {
                let i = track.layers.iter().position(|l| l.rid == rid)?;
                track.layers[i].ssrc = Some(ssrc);
                i
            }
        };
        let layer = &mut track.layers[index];
        layer.rate.add(now, packet.payload.len() + PACKET_OVERHEAD);
        let is_keyframe = codec.is_some_and(|c| starts_keyframe(c, &packet.payload));
        if is_keyframe {
            layer.last_keyframe = Some(now);
            if codec == Some(VideoCodec::Vp8) {
                layer.size = vp8_keyframe_size(&packet.payload).or(layer.size);
            }
        }
        Some(Ingested {
            mid,
            layer: index as u8,
            params,
            switch_point: codec.is_none() || is_keyframe,
            vp8: codec == Some(VideoCodec::Vp8),
        })
    }

    /// Asks a publisher for a keyframe on one layer of a track, at most once per throttle
    /// interval; a request inside the interval is remembered and sent when it ends.
    pub(crate) fn request_keyframe(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        mid: Mid,
        layer: u8,
    ) {
        let interval = self.config.keyframe_request_interval;
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        let Some(track) = p.up.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        if track.kind != TrackKind::Video {
            return;
        }
        let Some(l) = track.layers.get_mut(layer as usize) else {
            return;
        };
        if l.last_keyframe_request
            .is_some_and(|last| now < last + interval)
        {
            l.keyframe_owed = true;
            return;
        }
        l.last_keyframe_request = Some(now);
        l.keyframe_owed = false;
        tracing::debug!(%publisher, %mid, layer, "keyframe requested");
        if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, l.rid) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
            self.dirty.push(publisher);
        }
    }

    pub(crate) fn retry_keyframe_requests(&mut self, now: Instant) {
        let interval = self.config.keyframe_request_interval;
        let owed: Vec<(ParticipantId, Mid, u8)> = self
            .participants
            .values()
            .flat_map(|p| {
                p.up.iter().flat_map(move |t| {
                    t.layers.iter().enumerate().filter_map(move |(i, l)| {
                        let due = l.keyframe_owed
                            && l.last_keyframe_request
                                .is_none_or(|at| now >= at + interval);
                        due.then_some((p.id, t.mid, i as u8))
                    })
                })
            })
            .collect();
        for (publisher, mid, layer) in owed {
            self.request_keyframe(now, publisher, mid, layer);
        }
        for viewer in std::mem::take(&mut self.whep_refill) {
            self.fill_whep_slots(now, viewer);
        }
    }

    /// Removes a participant and everything that refers to it. `reason` is set when the SFU
    /// decided this itself, and produces an [`Output::Closed`].
    pub(crate) fn remove(&mut self, now: Instant, id: ParticipantId, reason: Option<CloseReason>) {
        let Some(mut p) = self.participants.remove(&id) else {
            return;
        };
        self.stats.retire(id, &p.counters);
        p.rtc.disconnect();
        for ufrag in &p.ufrags {
            if self.by_ufrag.get(ufrag) == Some(&id) {
                self.by_ufrag.remove(ufrag);
                self.ufrag_changes.push(UfragChange::Removed(ufrag.clone()));
            }
        }
        for addr in &p.addrs {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
        for d in &p.down {
            if let Some(t) = d.source.and_then(|(publisher, mid)| {
                self.participants
                    .get_mut(&publisher)
                    .and_then(|pp| pp.up_track_mut(mid))
            }) {
                t.subscribers.retain(|s| *s != id);
            }
        }
        if let Some(members) = self.rooms.get_mut(&p.room) {
            members.retain(|m| *m != id);
            if members.is_empty() {
                self.rooms.remove(&p.room);
                self.room_limits.remove(&p.room);
            }
        }
        for track in &p.up {
            for sub in &track.subscribers {
                self.unsubscribe(*sub, id, track.mid);
            }
            self.broadcast(
                &p.room,
                None,
                ServerMessage::TrackUnpublished {
                    id: track.id.clone(),
                    participant: id,
                },
            );
        }
        if p.kind.is_visible() {
            self.broadcast(&p.room, None, ServerMessage::ParticipantLeft { id });
        }
        self.after_leave(&p.room, p.grants.room_admin);
        if let Some(reason) = reason {
            self.outputs.push_back(Output::Closed {
                participant: id,
                reason,
            });
        }
        let cause: String = match reason {
            None => "left (signaling leave, WebSocket closed or WHIP/WHEP DELETE)".into(),
            Some(CloseReason::Silent) if !p.connected => {
                "ICE never completed within the connect timeout".into()
            }
            Some(CloseReason::Silent) => "nothing heard within the silence timeout".into(),
            Some(CloseReason::Replaced) => "the same identity joined the room again".into(),
            Some(CloseReason::Removed) => "removed by a host".into(),
            Some(CloseReason::Closed) => "its client closed the session".into(),
            Some(CloseReason::Failed) => format!(
                "WebRTC session failed: {}",
                p.last_error.as_deref().unwrap_or("closed without an error")
            ),
        };
        tracing::info!(participant = %id, room = %p.room, kind = ?p.kind, %cause, "participant left");
        for viewer in std::mem::take(&mut self.whep_refill) {
            self.fill_whep_slots(now, viewer);
        }
    }
}

/// What forwarding needs to know about a packet after [`Sfu::ingest`].
struct Ingested {
    mid: Mid,
    layer: u8,
    params: str0m::format::PayloadParams,
    /// A keyframe start, or any packet of a codec without keyframes (audio).
    switch_point: bool,
    /// VP8: its payload descriptor is mapped per subscriber.
    vp8: bool,
}

/// The codec parameters of a payload type on a track, learned from its first packet.
/// Whether `rtc` waits only for its pacer to release the next queued packet, which str0m
/// schedules a microsecond after the last. Other timers (estimator, stream reports) keep their
/// own schedule on the media loop: serving them early stalled the bandwidth estimate.
fn pacer_is_next(rtc: &Rtc, timeout: Instant, now: Instant) -> bool {
    timeout <= now + IMMEDIATE
        && rtc.last_timeout_reason() == str0m::Reason::Pacer(str0m::PacerReason::Immediate)
}

fn known_payload(
    track: &mut UpTrack,
    pt: str0m::media::Pt,
    codec_params: Option<str0m::format::PayloadParams>,
) -> Option<KnownPayload> {
    match track.payloads.iter().find(|(known, _)| *known == pt) {
        Some((_, entry)) => *entry,
        None => {
            let entry = codec_params.map(|c| (c, video_codec(&c)));
            track.payloads.push((pt, entry));
            entry
        }
    }
}

fn p_kind(sfu: &Sfu, id: ParticipantId) -> Option<ParticipantKind> {
    sfu.participants.get(&id).map(|p| p.kind)
}

fn track_kind(kind: MediaKind) -> TrackKind {
    match kind {
        MediaKind::Audio => TrackKind::Audio,
        MediaKind::Video => TrackKind::Video,
    }
}

fn video_codec(params: &str0m::format::PayloadParams) -> Option<VideoCodec> {
    match params.spec().codec {
        str0m::format::Codec::Vp8 => Some(VideoCodec::Vp8),
        str0m::format::Codec::H264 => Some(VideoCodec::H264),
        _ => None,
    }
}

/// Maps an RTP stream str0m cannot place: a publisher whose offer named no SSRC for a track
/// and whose packets carry no MID (RFC 8843) extension, such as a GStreamer client that
/// offered before its payloader had an SSRC. When exactly one of its published m-lines
/// without simulcast and without the MID extension has this payload type and no stream yet,
/// the SSRC is declared for it before str0m reads the packet.
pub(crate) fn map_by_payload_type(p: &mut Participant, ssrc: Ssrc, pt: Pt) {
    if ssrc.is_probe() || p.rtc.direct_api().stream_rx(&ssrc).is_some() {
        return;
    }
    let mut candidates =
        p.up.iter()
            .filter(|t| t.by_payload_type)
            .map(|t| t.mid)
            .filter(|&mid| {
                p.rtc
                    .media(mid)
                    .is_some_and(|m| m.remote_pts().contains(&pt))
            });
    let (Some(mid), None) = (candidates.next(), candidates.next()) else {
        return;
    };
    let mut api = p.rtc.direct_api();
    if api.stream_rx_by_mid(mid, None).is_none() {
        tracing::debug!(participant = %p.id, %mid, %ssrc, %pt, "stream without MID mapped by payload type");
        api.expect_stream_rx(ssrc, None, mid, None);
    }
}
