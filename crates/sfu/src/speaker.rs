//! Active-speaker detection from the RFC 6464 audio level that clients put in an RTP header
//! extension of every audio packet (`urn:ietf:params:rtp-hdrext:ssrc-audio-level`).
//!
//! Per audio up-track a peak meter holds the loudest recent level: it rises at once and falls
//! by [`RELEASE_DB_PER_SEC`], so the short pauses of speech do not count as silence. Every
//! [`TICK`] each room picks its loudest participant above [`THRESHOLD_DBOV`]; a different
//! speaker takes over only when louder than the current one by [`SWITCH_MARGIN_DB`] (or when
//! the current one went quiet), and only after winning [`SWITCH_TICKS`] ticks in a row, so the
//! choice does not flap. A change is broadcast as `active_speaker` (`null` for silence, after
//! [`SILENCE_TICKS`]); a participant that arrives later is told the current speaker.
//!
//! Per packet this costs one hash lookup and a comparison, with no allocation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::media::Mid;

use stoa_proto::{ParticipantId, RoomName, ServerMessage, TrackKind};

use crate::{ParticipantKind, Sfu};

/// How often each room's active speaker is decided.
pub const TICK: Duration = Duration::from_millis(300);
/// Quieter than this (dBov, 0 is loudest) is silence.
pub const THRESHOLD_DBOV: f32 = -50.0;
/// How fast a meter falls once the sound stops.
pub const RELEASE_DB_PER_SEC: f32 = 30.0;
/// How much louder than the current speaker another must be to take over.
pub const SWITCH_MARGIN_DB: f32 = 6.0;
/// Ticks a new speaker must win in a row before it is announced.
pub const SWITCH_TICKS: u8 = 2;
/// Ticks of silence in a row before "nobody speaks" is announced.
pub const SILENCE_TICKS: u8 = 4;

const SILENCE_DBOV: f32 = -127.0;

/// A peak meter: the loudest level heard, and when.
#[derive(Debug, Clone, Copy)]
struct Meter {
    peak: f32,
    at: Instant,
}

impl Meter {
    fn level(&self, now: Instant) -> f32 {
        let fallen = now.saturating_duration_since(self.at).as_secs_f32() * RELEASE_DB_PER_SEC;
        (self.peak - fallen).max(SILENCE_DBOV)
    }
}

/// One room's decision so far.
#[derive(Debug, Default)]
struct RoomSpeaker {
    active: Option<ParticipantId>,
    /// A different choice and how many ticks in a row it has won.
    pending: Option<(Option<ParticipantId>, u8)>,
    /// Participants that know `active`.
    informed: Vec<ParticipantId>,
}

impl RoomSpeaker {
    /// Moves towards `desired`; true when `active` changed.
    fn step(&mut self, desired: Option<ParticipantId>) -> bool {
        if desired == self.active {
            self.pending = None;
            return false;
        }
        let wins = match self.pending {
            Some((choice, n)) if choice == desired => n.saturating_add(1),
            _ => 1,
        };
        let needed = if desired.is_some() {
            SWITCH_TICKS
        } else {
            SILENCE_TICKS
        };
        if wins < needed {
            self.pending = Some((desired, wins));
            return false;
        }
        self.active = desired;
        self.pending = None;
        true
    }
}

/// Meters of every audio up-track and the decision of every room.
#[derive(Debug, Default)]
pub(crate) struct Speakers {
    meters: HashMap<(ParticipantId, Mid), Meter>,
    rooms: HashMap<RoomName, RoomSpeaker>,
    next_tick: Option<Instant>,
}

impl Speakers {
    /// Feeds one packet's audio level (`None` when the packet has none; in -dBov as str0m
    /// parses it, 0 loudest, -127 silence).
    pub fn observe(&mut self, now: Instant, id: ParticipantId, mid: Mid, level: Option<i8>) {
        let Some(level) = level else {
            return;
        };
        let dbov = f32::from(level.clamp(-127, 0));
        let meter = self.meters.entry((id, mid)).or_insert(Meter {
            peak: SILENCE_DBOV,
            at: now,
        });
        if dbov >= meter.level(now) {
            *meter = Meter {
                peak: dbov,
                at: now,
            };
        }
    }

    /// The smoothed level of one track as of the last tick, for statistics.
    pub fn level_dbov(&self, id: ParticipantId, mid: Mid) -> Option<f32> {
        let meter = self.meters.get(&(id, mid))?;
        Some(meter.level(self.next_tick.map_or(meter.at, |t| t - TICK)))
    }
}

/// The speaker a room should have, given the current one and the loudest, with their levels.
fn choose(
    active: Option<(ParticipantId, f32)>,
    loudest: Option<(ParticipantId, f32)>,
) -> Option<ParticipantId> {
    let loud = loudest.filter(|(_, level)| *level >= THRESHOLD_DBOV);
    match (active, loud) {
        (Some((a, la)), Some((c, lc))) if la >= THRESHOLD_DBOV => {
            Some(if lc > la + SWITCH_MARGIN_DB { c } else { a })
        }
        (Some((a, la)), None) if la >= THRESHOLD_DBOV => Some(a),
        (_, loud) => loud.map(|(c, _)| c),
    }
}

impl Sfu {
    /// When speakers are next decided, while anyone is connected.
    pub(crate) fn next_speaker_tick(&self) -> Option<Instant> {
        self.speakers
            .next_tick
            .filter(|_| !self.participants.is_empty())
    }

    /// Decides every room's active speaker, once per [`TICK`].
    pub(crate) fn detect_speakers(&mut self, now: Instant) {
        if self.speakers.next_tick.is_some_and(|t| now < t) {
            return;
        }
        self.speakers.next_tick = Some(now + TICK);
        let participants = &self.participants;
        self.speakers
            .meters
            .retain(|(id, _), _| participants.contains_key(id));
        let rooms = &self.rooms;
        self.speakers
            .rooms
            .retain(|room, _| rooms.contains_key(room));
        let names: Vec<RoomName> = self.rooms.keys().cloned().collect();
        for room in names {
            self.decide_speaker(now, &room);
        }
    }

    fn decide_speaker(&mut self, now: Instant, room: &RoomName) {
        let active = self.speakers.rooms.get(room).and_then(|r| r.active);
        let loudest = self
            .room_members(room)
            .map(|p| (p.id, self.speaker_level(now, p.id)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let desired = choose(active.map(|a| (a, self.speaker_level(now, a))), loudest);
        let members: Vec<ParticipantId> = self
            .room_members(room)
            .filter(|p| p.kind == ParticipantKind::Interactive)
            .map(|p| p.id)
            .collect();
        let state = self.speakers.rooms.entry(room.clone()).or_default();
        let changed = state.step(desired);
        let message = ServerMessage::ActiveSpeaker {
            participant: state.active,
        };
        let newcomers: Vec<ParticipantId> = match (changed, state.active) {
            (true, _) => members.clone(),
            (false, Some(_)) => members
                .iter()
                .filter(|id| !state.informed.contains(id))
                .copied()
                .collect(),
            (false, None) => Vec::new(),
        };
        state.informed = members;
        for to in newcomers {
            self.signal(to, message.clone());
        }
    }

    /// The loudest of a participant's audio tracks now, in dBov.
    fn speaker_level(&self, now: Instant, id: ParticipantId) -> f32 {
        let Some(p) = self.participants.get(&id) else {
            return SILENCE_DBOV;
        };
        p.up.iter()
            .filter(|t| t.kind == TrackKind::Audio && !t.host_muted)
            .filter_map(|t| self.speakers.meters.get(&(id, t.mid)))
            .map(|m| m.level(now))
            .fold(SILENCE_DBOV, f32::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ParticipantId = ParticipantId(1);
    const B: ParticipantId = ParticipantId(2);

    #[test]
    fn a_louder_speaker_takes_over_only_by_a_margin() {
        assert_eq!(choose(None, Some((A, -30.0))), Some(A));
        assert_eq!(choose(None, Some((A, -70.0))), None);
        assert_eq!(choose(Some((A, -30.0)), Some((B, -27.0))), Some(A));
        assert_eq!(choose(Some((A, -30.0)), Some((B, -20.0))), Some(B));
        assert_eq!(choose(Some((A, -80.0)), Some((B, -45.0))), Some(B));
        assert_eq!(choose(Some((A, -80.0)), None), None);
    }

    #[test]
    fn changes_need_consecutive_wins() {
        let mut r = RoomSpeaker::default();
        assert!(!r.step(Some(A)));
        assert!(r.step(Some(A)));
        assert!(!r.step(Some(B)));
        assert!(!r.step(Some(A)), "a single win does not switch");
        assert!(!r.step(Some(B)));
        assert!(r.step(Some(B)));
        for _ in 1..SILENCE_TICKS {
            assert!(!r.step(None));
        }
        assert!(r.step(None));
        assert_eq!(r.active, None);
    }

    #[test]
    fn a_meter_holds_peaks_and_falls_slowly() {
        let t0 = Instant::now();
        let mut s = Speakers::default();
        let mid = Mid::from("0");
        s.observe(t0, A, mid, Some(-20));
        s.observe(t0 + Duration::from_millis(100), A, mid, Some(-127));
        let m = s.meters[&(A, mid)];
        assert!((m.level(t0 + Duration::from_millis(500)) - -35.0).abs() < 0.1);
        assert_eq!(m.level(t0 + Duration::from_secs(60)), SILENCE_DBOV);
        s.observe(t0, B, mid, Some(i8::MIN));
        assert_eq!(s.meters[&(B, mid)].peak, SILENCE_DBOV);
    }
}
