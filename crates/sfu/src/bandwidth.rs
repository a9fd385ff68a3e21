//! Bandwidth management: every [`ALLOCATION_INTERVAL`] each subscriber's estimated downlink
//! (str0m's TWCC estimator, or the subscriber's REMB reports without TWCC) is shared among
//! its video down-tracks, after reserving what its audio needs, and each down-track is
//! steered to a simulcast layer ([`crate::simulcast`]);
//! layers nobody selects are paused at their publisher ("dynacast", the `layers` message).
//! A queue standing on the subscriber's link holds it on the lowest layers at once, before
//! the estimate follows ([`crate::congestion`]).
//! The room's and publishers' limits ([`crate::limits`]) bound and order the choice.
//! Also the `video_size` message and the per-subscriber layer report.

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::Mid;
use str0m::stats::PeerStats;

use stoa_proto::{ParticipantId, ServerMessage, TrackKind, TrackSource};

use crate::limits::tighter;
use crate::participant::{DownState, Participant, UpTrack};
use crate::simulcast::{
    allocate, layer_for_display, probe_rates, Demand, LayerChoice, MAX_LAYERS, PAUSE_UNUSED_AFTER,
};
use crate::stats::EstimateSource;
use crate::{ParticipantLimits, RoomLimits, Sfu, SfuError};

/// How often layers are re-chosen.
pub(crate) const ALLOCATION_INTERVAL: Duration = Duration::from_millis(200);
/// What an audio track is assumed to need until its bitrate is measured, and at least.
const AUDIO_RESERVE_BPS: u64 = 48_000;
/// A pacer backlog should drain within this, besides the media that keeps coming.
const BACKLOG_DRAIN: Duration = Duration::from_millis(250);
/// A down-track's resend cache as str0m sets it up: packets, age, the most of what is sent
/// that resends may be.
const RTX_CACHE: (usize, Duration, f32) = (1024, Duration::from_secs(3), 0.15);
/// Display sizes above this are refused as nonsense.
const MAX_DISPLAY_SIDE: u32 = 16_384;
/// How long the estimate may stay flat after a subscriber's demand rose before its
/// estimator is restarted (see [`DemandRise`]).
const RISE_UNANSWERED_AFTER: Duration = Duration::from_secs(2);
/// The least time between two restarts of one subscriber's estimator.
const MIN_ESTIMATOR_RESTART_INTERVAL: Duration = Duration::from_secs(10);
/// No restarts while the estimator's own start-up probing runs.
const ESTIMATOR_START_UP: Duration = Duration::from_secs(5);

/// One video down-track's layers as its subscriber sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownLayerInfo {
    /// The track id (as in `track_published`).
    pub track: String,
    /// The rid being forwarded; `None` if nothing is, or the track has no simulcast.
    pub current: Option<String>,
    /// The rid being switched to (equal to `current` when settled).
    pub target: Option<String>,
    /// The subscriber's latest estimated downlink bandwidth, bits/s.
    pub estimate_bps: Option<u64>,
}

/// Replays a rise in a subscriber's demand (a ceiling lifted, a video shown larger, a new
/// track) that str0m's estimator did not answer. str0m probes for more bandwidth when the
/// desired rate rises, but not while its loss-based controller is lowering the estimate, and
/// it drops that rise for good; after loss on the link, that state can hold the estimate
/// flat for half a minute on a link with room to spare. When the estimate has not moved
/// [`RISE_UNANSWERED_AFTER`] a rise, the estimator is restarted from the current estimate,
/// so its start-up probes look for the capacity.
#[derive(Debug, Default)]
pub(crate) struct DemandRise {
    /// Per video down-track (by index), the highest layer it asked for at the last allocation.
    ceilings: Vec<(usize, Option<u8>)>,
    /// When demand last rose above the estimate, and the estimate then.
    unanswered: Option<(Instant, u64)>,
    last_restart: Option<Instant>,
}

impl DemandRise {
    /// Records this allocation's ceilings; true if any track now asks for a higher layer
    /// than before, or is new and visible.
    fn record(&mut self, ceilings: Vec<(usize, Option<u8>)>) -> bool {
        let before = std::mem::replace(&mut self.ceilings, ceilings);
        self.ceilings.iter().any(|&(down, now)| {
            let was = before
                .iter()
                .find(|(d, _)| *d == down)
                .and_then(|(_, c)| *c);
            now.is_some_and(|now| was.is_none_or(|was| now > was))
        })
    }

    /// Whether to restart the estimator now, given whether demand just rose, the
    /// estimate and the rate wanted.
    fn restart_due(&mut self, now: Instant, rose: bool, estimate: u64, desired: u64) -> bool {
        if rose && estimate < desired && self.unanswered.is_none() {
            self.unanswered = Some((now, estimate));
        }
        let Some((since, then)) = self.unanswered else {
            return false;
        };
        if estimate >= desired || estimate > then + then / 10 {
            self.unanswered = None;
            return false;
        }
        if now < since + RISE_UNANSWERED_AFTER {
            return false;
        }
        self.unanswered = None;
        if self
            .last_restart
            .is_some_and(|t| now < t + MIN_ESTIMATOR_RESTART_INTERVAL)
        {
            return false;
        }
        self.last_restart = Some(now);
        true
    }
}

/// A down-track's demand together with where it points.
struct Claim {
    down: usize,
    source: (ParticipantId, Mid),
    demand: Demand,
}

impl Sfu {
    /// Re-chooses every subscriber's layers and updates paused layers, if it is time.
    pub(crate) fn allocate_if_due(&mut self, now: Instant) {
        if self.next_allocation.is_none_or(|t| now < t) {
            return;
        }
        self.next_allocation = Some(now + ALLOCATION_INTERVAL);
        let ids: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for id in &ids {
            self.allocate_for(now, *id);
        }
        for id in ids {
            self.update_paused_layers(now, id);
        }
    }

    /// Steers one subscriber's video down-tracks to the layers its bandwidth affords.
    fn allocate_for(&mut self, now: Instant, sub: ParticipantId) {
        let Some((claims, audio)) = self.claims(now, sub) else {
            return;
        };
        let Some(s) = self.participants.get_mut(&sub) else {
            return;
        };
        let demands: Vec<Demand> = claims.iter().map(|c| c.demand).collect();
        // Before any estimate, every visible track starts on its lowest layer. Video queued
        // in the pacer must drain too, so a backlog shrinks the budget at once, before the
        // estimate has caught up with a link that got slower.
        let backlog_bps = paced_backlog(s) as u64 * 8 * 1000 / BACKLOG_DRAIN.as_millis() as u64;
        let estimate = s.downlink.bps();
        let holding = s.queue.holding();
        let budget = estimate
            .filter(|_| !holding)
            .map_or(0, |e| e.saturating_sub(audio + backlog_bps));
        let offers = allocate(budget, &demands);
        tracing::trace!(subscriber = %sub, ?estimate, holding, backlog_bps, budget, "allocation");
        let mut keyframes = Vec::new();
        for (claim, &offer) in claims.iter().zip(&offers) {
            let down = &mut s.down[claim.down];
            let before = down.choice.target;
            down.choice.steer(now, offer);
            if holding {
                down.choice.drop_above_target();
            }
            let choice = &down.choice;
            if choice.target != before {
                tracing::debug!(
                    subscriber = %sub, track = %down.track_id, from = ?before,
                    to = ?choice.target, ?estimate, holding, backlog_bps, audio,
                    "layer target changed"
                );
            }
            if let Some(target) = choice.target.filter(|_| choice.current != choice.target) {
                keyframes.push((claim.source, target));
            }
        }
        // While a queue stands, no padding towards the next layer: it would keep the queue
        // full and cost the lower layer's keyframe its packets.
        let (probing, probe_offers): (Vec<Demand>, Vec<Option<u8>>) = demands
            .iter()
            .zip(&offers)
            .map(|(d, &o)| d.for_probing(o))
            .unzip();
        let (minimum, desired) = probe_rates(&probing, &probe_offers, !holding);
        let rates = (audio + minimum, audio + desired);
        let ceilings = claims
            .iter()
            .zip(&demands)
            .map(|(c, d)| (c.down, d.ceiling()))
            .collect();
        let rose = s.demand_rise.record(ceilings);
        if let Some(estimate) =
            estimate.filter(|_| s.downlink.source() == Some(EstimateSource::Twcc))
        {
            let settled = now >= s.joined_at + ESTIMATOR_START_UP;
            if s.demand_rise
                .restart_due(now, rose && settled, estimate, rates.1)
            {
                tracing::debug!(subscriber = %sub, estimate, desired = rates.1, "estimate flat after demand rose: restarting the estimator");
                s.rtc.bwe().reset(Bitrate::bps(estimate));
            }
        }
        if rates != s.bwe_rates {
            s.bwe_rates = rates;
            s.rtc
                .bwe()
                .set_bitrate(Bitrate::bps(rates.0), Bitrate::bps(rates.1));
            self.dirty.push(sub);
        }
        for ((publisher, mid), layer) in keyframes {
            self.request_keyframe(now, publisher, mid, layer);
        }
    }

    /// Takes str0m's periodic figures for a participant's connection: its unaveraged
    /// estimate, and the round trip that shows a queue on the way to it.
    pub(crate) fn on_peer_stats(&mut self, now: Instant, id: ParticipantId, stats: &PeerStats) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if let Some(raw) = stats.bwe_tx {
            p.downlink.on_twcc_raw(raw.as_u64());
        }
        let Some(rtt) = stats.rtt else {
            return;
        };
        let was_holding = p.queue.holding();
        if p.queue.sample(now, rtt) {
            tracing::debug!(participant = %id, ?rtt, "queue on the downlink: holding the lowest layers");
            drop_resends(p);
            // Act on it now rather than at the next allocation round.
            self.next_allocation = Some(now);
        } else if was_holding && !p.queue.holding() {
            tracing::debug!(participant = %id, ?rtt, "downlink queue drained: hold ended");
        }
    }

    /// The subscriber's video down-tracks as demands, and the bitrate its audio needs.
    fn claims(&mut self, now: Instant, sub: ParticipantId) -> Option<(Vec<Claim>, u64)> {
        let s = self.participants.get(&sub)?;
        let sources: Vec<(usize, (ParticipantId, Mid), TrackKind, LayerChoice)> = s
            .down
            .iter()
            .enumerate()
            .filter(|(_, d)| d.state == DownState::Active)
            .filter_map(|(i, d)| Some((i, d.source?, d.kind, d.choice.clone())))
            .collect();
        let room = self.room_limits(&s.room).unwrap_or_default();
        let mut claims = Vec::new();
        let mut audio = 0;
        for (down, source, kind, choice) in sources {
            let publisher = self.participant_limits(source.0).unwrap_or_default();
            let Some(track) = up_track(&mut self.participants, source) else {
                continue;
            };
            if kind == TrackKind::Audio {
                // Until measured, an audio track is taken at the reserve (video's assumed
                // rates would starve the subscriber's video for a second).
                audio += track.layers[0]
                    .measured(now)
                    .unwrap_or(0)
                    .max(AUDIO_RESERVE_BPS);
                continue;
            }
            claims.push(Claim {
                down,
                source,
                demand: demand(now, track, &choice, room, publisher),
            });
        }
        Some((claims, audio))
    }

    /// Pauses the layers of a publisher's tracks that no subscriber selected for a while,
    /// resumes those selected again, and tells the publisher when that changes.
    fn update_paused_layers(&mut self, now: Instant, publisher: ParticipantId) {
        let Some(p) = self.participants.get(&publisher) else {
            return;
        };
        let needs: Vec<(Mid, u8)> =
            p.up.iter()
                .filter(|t| t.is_simulcast())
                .map(|t| (t.mid, self.selected_layers(publisher, t)))
                .collect();
        let mut changed = Vec::new();
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        for (mid, mask) in needs {
            let Some(track) = p.up_track_mut(mid) else {
                continue;
            };
            let mut any = false;
            for (i, layer) in track.layers.iter_mut().enumerate() {
                let needed = mask & (1 << i) != 0;
                if needed {
                    layer.needed_at = now;
                }
                let active = needed || now < layer.needed_at + PAUSE_UNUSED_AFTER;
                if active && !layer.active {
                    layer.active_since = now;
                }
                any |= active != layer.active;
                layer.active = active;
            }
            if any {
                let active = track.active_rids();
                tracing::debug!(%publisher, track = %track.id, ?active, "layers paused or resumed");
                changed.push(ServerMessage::Layers {
                    track: track.id.clone(),
                    active,
                });
            }
        }
        for message in changed {
            self.signal(publisher, message);
        }
    }

    /// Bit `i` set: some subscriber forwards or moves to layer `i` of the track. The lowest
    /// layer counts as selected while any is: it is where a subscriber whose link narrows
    /// falls back to, and resuming it at the publisher would add half a second to that
    /// subscriber's freeze.
    fn selected_layers(&self, publisher: ParticipantId, track: &UpTrack) -> u8 {
        let bit = |l: Option<u8>| l.map_or(0, |l| 1u8 << l);
        let selected = track
            .subscribers
            .iter()
            .filter_map(|s| self.participants.get(s))
            .flat_map(|s| &s.down)
            .filter(|d| d.source == Some((publisher, track.mid)))
            .fold(0, |mask, d| {
                mask | bit(d.choice.current) | bit(d.choice.target)
            });
        if selected != 0 {
            selected | 1
        } else {
            0
        }
    }

    /// `video_size`: the size at which a subscriber shows one of its video tracks.
    pub(crate) fn set_video_size(
        &mut self,
        now: Instant,
        id: ParticipantId,
        track: &str,
        width: u32,
        height: u32,
    ) -> Result<(), SfuError> {
        if width > MAX_DISPLAY_SIDE || height > MAX_DISPLAY_SIDE {
            return Err(SfuError::BadRequest(format!(
                "video sizes go up to {MAX_DISPLAY_SIDE} pixels"
            )));
        }
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        let down = p
            .down
            .iter_mut()
            .find(|d| {
                d.track_id == track
                    && d.source.is_some()
                    && !matches!(d.state, DownState::ToStop | DownState::NegotiatingStop)
            })
            .ok_or_else(|| {
                let shown: String = track.chars().take(64).collect();
                SfuError::BadRequest(format!("no track {shown:?} is sent to you"))
            })?;
        if down.kind != TrackKind::Video {
            return Err(SfuError::BadRequest(
                "video_size is for video tracks".into(),
            ));
        }
        down.choice.display = Some((width as u16, height as u16));
        self.allocate_for(now, id);
        Ok(())
    }

    /// Per video down-track of a participant: the layer forwarded and targeted, with its
    /// estimated bandwidth. Empty for an unknown participant.
    pub fn layer_report(&self, id: ParticipantId) -> Vec<DownLayerInfo> {
        let Some(s) = self.participants.get(&id) else {
            return Vec::new();
        };
        s.down
            .iter()
            .filter(|d| d.kind == TrackKind::Video && d.state == DownState::Active)
            .map(|d| {
                let rid = |layer: Option<u8>| {
                    let track = d.source.and_then(|(p, mid)| {
                        self.participants.get(&p)?.up.iter().find(|t| t.mid == mid)
                    })?;
                    let rid = track.layers.get(layer? as usize)?.rid?;
                    Some(rid.to_string())
                };
                DownLayerInfo {
                    track: d.track_id.clone(),
                    current: rid(d.choice.current),
                    target: rid(d.choice.target),
                    estimate_bps: s.downlink.bps(),
                }
            })
            .collect()
    }
}

/// Forgets the packets a subscriber's video could be resent: they belong to layers its link
/// could not carry, and resending them would keep its queue full.
fn drop_resends(s: &mut Participant) {
    let mut api = s.rtc.direct_api();
    for d in s
        .down
        .iter()
        .filter(|d| d.kind == TrackKind::Video && d.state == DownState::Active)
    {
        if let Some(tx) = d.mid.and_then(|mid| api.stream_tx_by_mid(mid, None)) {
            let (packets, age, ratio) = RTX_CACHE;
            tx.set_rtx_cache(packets, age, Some(ratio));
        }
    }
}

/// Bytes of video waiting in a subscriber's pacer.
fn paced_backlog(s: &mut Participant) -> usize {
    let mut api = s.rtc.direct_api();
    s.down
        .iter()
        .filter(|d| d.kind == TrackKind::Video && d.state == DownState::Active)
        .filter_map(|d| {
            api.stream_tx_by_mid(d.mid?, None)?
                .queue_info()
                .map(|q| q.byte_size())
        })
        .sum()
}

fn up_track(
    participants: &mut std::collections::HashMap<ParticipantId, Participant>,
    (publisher, mid): (ParticipantId, Mid),
) -> Option<&mut UpTrack> {
    participants.get_mut(&publisher)?.up_track_mut(mid)
}

/// What a video down-track fed by `track` asks for, given its display size and target, the
/// room's limits and those of the track's publisher.
fn demand(
    now: Instant,
    track: &mut UpTrack,
    choice: &LayerChoice,
    room: RoomLimits,
    publisher: ParticipantLimits,
) -> Demand {
    let count = track.layers.len().min(MAX_LAYERS);
    let mut costs = [0; MAX_LAYERS];
    let mut sizes = [(0, 0); MAX_LAYERS];
    for (i, layer) in track.layers.iter_mut().take(count).enumerate() {
        costs[i] = layer.cost(now, i, count);
        sizes[i] = layer.picture_size(i, count);
    }
    Demand {
        costs,
        layers: count as u8,
        received: track.layers.iter().any(|l| l.ssrc.is_some()),
        cap: layer_for_display(choice.display, &sizes[..count]),
        target: choice.target,
        screen: track.source == TrackSource::Screen,
        max_bps: tighter(room.max_video_bitrate_bps, publisher.max_video_bitrate_bps),
        min_bps: room.min_video_bitrate_bps.unwrap_or(0),
        priority: publisher.priority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rise_is_a_higher_or_new_visible_layer() {
        let mut rise = DemandRise::default();
        assert!(rise.record(vec![(0, Some(0))]), "a new visible track");
        assert!(!rise.record(vec![(0, Some(0))]));
        assert!(!rise.record(vec![(0, None)]), "hidden");
        assert!(rise.record(vec![(0, Some(1))]), "shown again, larger");
        assert!(
            !rise.record(vec![(0, Some(0)), (3, None)]),
            "lower, and a hidden one"
        );
        assert!(rise.record(vec![(0, Some(0)), (3, Some(2))]));
    }

    #[test]
    fn the_estimator_restarts_only_when_a_rise_goes_unanswered_and_not_too_often() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut rise = DemandRise::default();
        assert!(!rise.restart_due(at(0), true, 800_000, 1_600_000));
        assert!(!rise.restart_due(at(1_000), false, 800_000, 1_600_000));
        assert!(rise.restart_due(at(2_000), false, 800_000, 1_600_000));
        assert!(
            !rise.restart_due(at(2_200), false, 800_000, 1_600_000),
            "once"
        );

        // Answered by str0m's own probe: no restart.
        assert!(!rise.restart_due(at(20_000), true, 800_000, 1_600_000));
        assert!(!rise.restart_due(at(21_000), false, 950_000, 1_600_000));
        assert!(!rise.restart_due(at(23_000), false, 950_000, 1_600_000));

        // A rise the estimate already covers: nothing to do.
        assert!(!rise.restart_due(at(30_000), true, 2_000_000, 1_600_000));
        assert!(!rise.restart_due(at(33_000), false, 2_000_000, 1_600_000));

        // Unanswered again, but within the interval after the last restart.
        let mut rise = DemandRise::default();
        assert!(!rise.restart_due(at(0), true, 800_000, 1_600_000));
        assert!(rise.restart_due(at(2_000), false, 800_000, 1_600_000));
        assert!(!rise.restart_due(at(3_000), true, 800_000, 1_600_000));
        assert!(!rise.restart_due(at(5_000), false, 800_000, 1_600_000));
        assert!(!rise.restart_due(at(13_000), true, 800_000, 1_600_000));
        assert!(rise.restart_due(at(15_000), false, 800_000, 1_600_000));
    }
}
