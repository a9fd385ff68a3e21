//! Simulcast state and policy, free of participants and I/O: the layers of a published track
//! ([`Layer`], with a sliding-window [`RateMeter`]), the layer a subscriber's down-track
//! forwards and wants ([`LayerChoice`]), and how a subscriber's bandwidth is shared among its
//! video tracks ([`allocate`]). `bandwidth` applies this to the SFU's participants.
//!
//! A track without simulcast is a track with one layer, so forwarding has a single path.
//! Layers are ordered lowest first, the order in which the client lists its rids.

use std::time::{Duration, Instant};

use str0m::media::Rid;
use str0m::rtp::Ssrc;

/// Layers beyond this many are ignored (browsers send at most three or four).
pub(crate) const MAX_LAYERS: usize = 4;
/// Before moving up, the bandwidth left must cover the higher layer's bitrate times this.
const UPSWITCH_HEADROOM: f64 = 1.2;
/// ... and keep covering it this long.
pub(crate) const UPSWITCH_HOLD: Duration = Duration::from_secs(2);
/// A layer nobody selected for this long is paused at the publisher.
pub(crate) const PAUSE_UNUSED_AFTER: Duration = Duration::from_secs(2);
/// Per-packet bytes on the wire besides the payload (IP, UDP, RTP header and extensions,
/// SRTP tag), so layer bitrates compare with the transport-level bandwidth estimate.
pub(crate) const PACKET_OVERHEAD: usize = 60;
/// Bitrate assumed for the top layer before it has been measured; each lower layer a third.
const DEFAULT_TOP_BPS: u64 = 1_500_000;
/// Picture size assumed for the top layer before a keyframe told; each lower layer half.
const DEFAULT_TOP_SIZE: (u16, u16) = (1280, 720);
/// A display at most this wide is a thumbnail and never gets the top layer.
const THUMBNAIL_WIDTH: u16 = 320;

const BUCKETS: usize = 10;
const BUCKET: Duration = Duration::from_millis(100);
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Bytes per second over the last full second, in ten 100 ms buckets (no allocation).
#[derive(Debug, Clone, Default)]
pub(crate) struct RateMeter {
    origin: Option<Instant>,
    /// Bytes per bucket; bucket `slot % (BUCKETS + 1)` holds slot `slot`.
    bytes: [u64; BUCKETS + 1],
    /// The newest slot written.
    head: u64,
}

impl RateMeter {
    fn slot(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        (now.saturating_duration_since(origin).as_millis() / BUCKET.as_millis()) as u64
    }

    pub fn add(&mut self, now: Instant, bytes: usize) {
        let slot = self.slot(now);
        if slot > self.head {
            for s in (self.head + 1)..=slot.min(self.head + BUCKETS as u64 + 1) {
                self.bytes[(s % (BUCKETS as u64 + 1)) as usize] = 0;
            }
            self.head = slot;
        }
        // A packet stamped before the head (cannot happen with a monotonic clock) counts now.
        self.bytes[(self.head % (BUCKETS as u64 + 1)) as usize] += bytes as u64;
    }

    /// Bits per second over the ten full buckets before the current one.
    pub fn bps(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else {
            return 0;
        };
        let slot = (now.saturating_duration_since(origin).as_millis() / BUCKET.as_millis()) as u64;
        let first = slot.saturating_sub(BUCKETS as u64);
        let last = slot.saturating_sub(1).min(self.head);
        if slot == 0 || last < first {
            return 0;
        }
        let bytes: u64 = (first..=last)
            .filter(|s| self.head - s <= BUCKETS as u64)
            .map(|s| self.bytes[(s % (BUCKETS as u64 + 1)) as usize])
            .sum();
        bytes * 8 * 1000 / (BUCKETS as u64 * BUCKET.as_millis() as u64)
    }
}

/// One encoding of a published track.
#[derive(Debug)]
pub(crate) struct Layer {
    /// `None` for a track without simulcast.
    pub rid: Option<Rid>,
    /// Learned from the first packet of the layer.
    pub ssrc: Option<Ssrc>,
    /// Payload plus [`PACKET_OVERHEAD`] per packet.
    pub rate: RateMeter,
    /// The last non-zero rate measured, the cost of a paused layer.
    pub known_bps: u64,
    pub last_keyframe: Option<Instant>,
    /// Picture size from the last keyframe that carried one (VP8).
    pub size: Option<(u16, u16)>,
    /// Whether the publisher was last told to send it (all are sent to begin with).
    pub active: bool,
    /// When it was last resumed; its rate is trusted a full window after that.
    pub active_since: Instant,
    /// When a subscriber last selected it.
    pub needed_at: Instant,
    pub last_keyframe_request: Option<Instant>,
    /// A keyframe request arrived inside the throttle interval and is still owed.
    pub keyframe_owed: bool,
}

impl Layer {
    pub fn new(rid: Option<Rid>, now: Instant) -> Self {
        Self {
            rid,
            ssrc: None,
            rate: RateMeter::default(),
            known_bps: 0,
            last_keyframe: None,
            size: None,
            active: true,
            active_since: now,
            needed_at: now,
            last_keyframe_request: None,
            keyframe_owed: false,
        }
    }

    /// Bitrate this layer costs a subscriber: measured, else last measured, else assumed.
    /// A paused or just resumed layer's window is partial, so its measurement is not used.
    pub fn cost(&mut self, now: Instant, index: usize, count: usize) -> u64 {
        self.measured(now).unwrap_or_else(|| {
            let steps = count.saturating_sub(index + 1) as u32;
            DEFAULT_TOP_BPS / 3u64.pow(steps)
        })
    }

    /// Bitrate measured over a full window, else the last one measured, if any.
    pub fn measured(&mut self, now: Instant) -> Option<u64> {
        let settled = self.active && now >= self.active_since + RATE_WINDOW + BUCKET;
        let measured = self.rate.bps(now);
        if settled && measured > 0 {
            self.known_bps = measured;
        }
        (self.known_bps > 0).then_some(self.known_bps)
    }

    /// Picture size: from a keyframe, else assumed from the layer's place.
    pub fn picture_size(&self, index: usize, count: usize) -> (u16, u16) {
        self.size.unwrap_or_else(|| {
            let steps = count.saturating_sub(index + 1) as u32;
            (DEFAULT_TOP_SIZE.0 >> steps, DEFAULT_TOP_SIZE.1 >> steps)
        })
    }
}

/// What to do with a packet of some layer on one down-track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The layer being forwarded.
    Forward,
    /// The first packet of the target layer at a switch point: restart the rewriter, then
    /// forward.
    Switch,
    /// The target layer, not at a switch point: drop it and ask for a keyframe.
    Wait,
    /// Another layer.
    Skip,
}

/// The layer a down-track forwards (`current`) and the one it moves to (`target`).
#[derive(Debug, Clone)]
pub(crate) struct LayerChoice {
    pub current: Option<u8>,
    pub target: Option<u8>,
    /// Since when the allocation has offered a higher layer than the target.
    up_since: Option<Instant>,
    /// Display size the subscriber reported; `None` until it does.
    pub display: Option<(u16, u16)>,
}

impl Default for LayerChoice {
    fn default() -> Self {
        Self {
            current: None,
            target: Some(0),
            up_since: None,
            display: None,
        }
    }
}

impl LayerChoice {
    /// Decides about a packet of `layer`; `switch_point` is a keyframe start (any audio
    /// packet). Moves `current` to the target on a switch.
    pub fn on_packet(&mut self, layer: u8, switch_point: bool) -> Admit {
        if self.target == Some(layer) && self.current != self.target {
            if !switch_point {
                return Admit::Wait;
            }
            self.current = self.target;
            return Admit::Switch;
        }
        if self.current == Some(layer) {
            Admit::Forward
        } else {
            Admit::Skip
        }
    }

    /// Forgets what was being forwarded (the source changed); waits for a switch point.
    pub fn reset(&mut self) {
        self.current = None;
        self.target = Some(0);
        self.up_since = None;
    }

    /// Applies the allocation's offer: down (or stop) at once, up only after the offer held
    /// for [`UPSWITCH_HOLD`], unless nothing is being forwarded yet.
    pub fn steer(&mut self, now: Instant, offer: Option<u8>) {
        match (offer, self.target) {
            (None, _) => {
                self.target = None;
                self.current = None;
                self.up_since = None;
            }
            (Some(o), Some(t)) if o > t && self.current.is_some() => {
                let since = *self.up_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= UPSWITCH_HOLD {
                    self.target = Some(o);
                    self.up_since = None;
                }
            }
            _ => {
                self.target = offer;
                self.up_since = None;
            }
        }
    }

    /// While a queue stands on the subscriber's link: stops forwarding a layer above the
    /// target at once instead of at the target's keyframe. The higher layer's packets would
    /// keep the queue full, and that keyframe would wait behind them or be lost in it.
    pub fn drop_above_target(&mut self) {
        if self.current > self.target {
            self.current = None;
        }
    }
}

/// The highest layer worth sending to a display of this size: the smallest layer that covers
/// it, never the top one for a thumbnail. `None`: not visible.
pub(crate) fn layer_for_display(display: Option<(u16, u16)>, sizes: &[(u16, u16)]) -> Option<u8> {
    let top = sizes.len().checked_sub(1)?;
    let Some((w, h)) = display else {
        return Some(top as u8);
    };
    if w == 0 || h == 0 {
        return None;
    }
    let covering = sizes
        .iter()
        .position(|&(lw, lh)| lw >= w && lh >= h)
        .unwrap_or(top);
    let cap = if w <= THUMBNAIL_WIDTH && top > 0 {
        covering.min(top - 1)
    } else {
        covering
    };
    Some(cap as u8)
}

/// One video down-track's claim on its subscriber's bandwidth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Demand {
    /// Bitrate of each layer, lowest first; `layers` are valid.
    pub costs: [u64; MAX_LAYERS],
    pub layers: u8,
    /// Whether any layer of the track has arrived: until one has, probing reaches for none
    /// (a stream that is never mapped or never sent cannot be forwarded). Layers that have
    /// not arrived yet still count once one has: the publisher may start them, or resume
    /// them when the SFU asks, only after the estimate affords them.
    pub received: bool,
    /// The highest layer the display needs; `None` when not visible.
    pub cap: Option<u8>,
    /// The layer targeted now, so moving above it needs headroom.
    pub target: Option<u8>,
    /// Screen shares are served first and degraded last.
    pub screen: bool,
    /// No layer above the lowest costing more than this is offered (room and publisher
    /// limits, see [`crate::limits`]).
    pub max_bps: Option<u64>,
    /// The floor: the lowest layer costing at least this is offered before other tracks are
    /// raised, if the budget allows. 0: none.
    pub min_bps: u64,
    /// Among tracks of the same kind (screen or not), higher priority is raised first.
    pub priority: u8,
}

impl Demand {
    /// This demand and `offer` as probing sees them: nothing while no layer has arrived.
    pub(crate) fn for_probing(&self, offer: Option<u8>) -> (Demand, Option<u8>) {
        if self.received {
            return (*self, offer);
        }
        (Demand { cap: None, ..*self }, None)
    }

    /// The highest layer it may get: what the display needs, within the bitrate ceiling, but
    /// at least the lowest layer. `None` when not visible.
    pub(crate) fn ceiling(&self) -> Option<u8> {
        let cap = self.cap?.min(self.layers.saturating_sub(1));
        let Some(max) = self.max_bps else {
            return Some(cap);
        };
        Some(
            (1..=cap)
                .rev()
                .find(|&l| self.costs[l as usize] <= max)
                .unwrap_or(0),
        )
    }

    /// The layer its floor asks for: the lowest up to `ceiling` costing at least `min_bps`,
    /// else the lowest layer (no floor).
    fn floor(&self, ceiling: u8) -> u8 {
        if self.min_bps == 0 {
            return 0;
        }
        (0..=ceiling)
            .find(|&l| self.costs[l as usize] >= self.min_bps)
            .unwrap_or(0)
    }
}

/// A bitrate with the headroom needed to move up to it.
fn with_headroom(bps: u64) -> u64 {
    (bps as f64 * UPSWITCH_HEADROOM) as u64
}

/// The order in which tracks are raised: screen shares, then by priority, then as listed.
fn raise_order(demands: &[Demand]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|&i| (!demands[i].screen, std::cmp::Reverse(demands[i].priority)));
    order
}

/// Raises a track offered layer `from` to the highest layer up to `to` that `left` (bits/s)
/// affords, with headroom above its target, and takes the extra cost from `left`.
fn raise(d: &Demand, from: u8, to: u8, left: &mut u64) -> u8 {
    let have = d.costs[from as usize];
    for layer in (from + 1..=to).rev() {
        let cost = d.costs[layer as usize];
        let needed = if d.target.is_none_or(|t| layer > t) {
            with_headroom(cost)
        } else {
            cost
        };
        if needed.saturating_sub(have) <= *left {
            *left = left.saturating_sub(cost.saturating_sub(have));
            return layer;
        }
    }
    from
}

/// Shares `budget` (bits/s) among video tracks: every visible track gets its lowest layer;
/// then, in [`raise_order`], each is raised towards its floor; then each is raised as high as
/// the rest of the budget, its display and its ceiling allow. Returns the layer offered to
/// each demand, in order.
pub(crate) fn allocate(budget: u64, demands: &[Demand]) -> Vec<Option<u8>> {
    let ceilings: Vec<Option<u8>> = demands.iter().map(Demand::ceiling).collect();
    let mut offer: Vec<Option<u8>> = ceilings.iter().map(|c| c.map(|_| 0)).collect();
    let lowest: u64 = demands
        .iter()
        .zip(&ceilings)
        .filter(|(_, c)| c.is_some())
        .map(|(d, _)| d.costs[0])
        .sum();
    let mut left = budget.saturating_sub(lowest);
    let order = raise_order(demands);
    for to_floor in [true, false] {
        for &i in &order {
            let (Some(ceiling), Some(from)) = (ceilings[i], offer[i]) else {
                continue;
            };
            let d = &demands[i];
            let to = if to_floor { d.floor(ceiling) } else { ceiling };
            offer[i] = Some(raise(d, from, to, &mut left));
        }
    }
    offer
}

/// What to ask of the bandwidth estimator, in bits/s besides `audio`: `minimum`, the rate to
/// keep sending (padding fills up to it, within the estimate) so the estimate can grow into
/// the next layer up, or only what is sent without `reach_up`; and `desired`, the rate at
/// which every track gets all its display needs within its ceiling.
pub(crate) fn probe_rates(demands: &[Demand], offers: &[Option<u8>], reach_up: bool) -> (u64, u64) {
    let cost = |d: &Demand, layer: Option<u8>| layer.map_or(0, |l| d.costs[l as usize]);
    let sending: u64 = demands.iter().zip(offers).map(|(d, &o)| cost(d, o)).sum();
    let desired: u64 = demands.iter().map(|d| cost(d, d.ceiling())).sum();
    let next_step = raise_order(demands)
        .into_iter()
        .filter(|_| reach_up)
        .find_map(|i| {
            let (d, o) = (&demands[i], offers[i]);
            let next = o.filter(|&o| d.ceiling().is_some_and(|c| o < c))? + 1;
            Some(with_headroom(d.costs[next as usize]).saturating_sub(cost(d, o)))
        })
        .unwrap_or(0);
    ((sending + next_step).min(desired), desired)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: (u16, u16) = (320, 180);
    const SIZES: [(u16, u16); 3] = [T, (640, 360), (1280, 720)];

    fn cam(target: Option<u8>) -> Demand {
        Demand {
            costs: [150_000, 500_000, 1_500_000, 0],
            layers: 3,
            received: true,
            cap: Some(2),
            target,
            screen: false,
            max_bps: None,
            min_bps: 0,
            priority: 0,
        }
    }

    #[test]
    fn probing_ignores_a_track_nothing_arrived_from() {
        let mut silent = cam(Some(0));
        silent.received = false;
        let (cut, offer) = silent.for_probing(Some(1));
        assert_eq!((cut.ceiling(), offer), (None, None));
        assert_eq!(probe_rates(&[cut], &[offer], true), (0, 0));
        let (same, offer) = cam(Some(0)).for_probing(Some(0));
        assert_eq!((same.ceiling(), offer), (Some(2), Some(0)));
    }

    #[test]
    fn rate_meter_measures_the_last_second() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        for ms in 0..3000u64 {
            m.add(t0 + Duration::from_millis(ms), 125); // 1 Mbit/s
        }
        let bps = m.bps(t0 + Duration::from_millis(3000));
        assert!((990_000..=1_010_000).contains(&bps), "{bps}");
        assert_eq!(m.bps(t0 + Duration::from_secs(5)), 0);
        m.add(t0 + Duration::from_secs(60), 1000);
        assert_eq!(m.bps(t0 + Duration::from_millis(60_150)), 8000);
    }

    #[test]
    fn the_budget_picks_the_highest_fitting_layer_with_headroom_to_go_up() {
        assert_eq!(allocate(3_000_000, &[cam(Some(0))]), [Some(2)]);
        assert_eq!(allocate(1_700_000, &[cam(Some(0))]), [Some(1)]);
        assert_eq!(allocate(1_700_000, &[cam(Some(2))]), [Some(2)]);
        assert_eq!(allocate(300_000, &[cam(Some(2))]), [Some(0)]);
        assert_eq!(allocate(0, &[cam(Some(2))]), [Some(0)]);
    }

    #[test]
    fn screen_shares_are_raised_first() {
        let screen = Demand {
            screen: true,
            ..cam(Some(2))
        };
        let offer = allocate(1_900_000, &[cam(Some(2)), screen]);
        assert_eq!(offer, [Some(0), Some(2)]);
    }

    #[test]
    fn hidden_tracks_get_nothing_and_cost_nothing() {
        let hidden = Demand {
            cap: None,
            ..cam(Some(0))
        };
        assert_eq!(
            allocate(1_900_000, &[hidden, cam(Some(2))]),
            [None, Some(2)]
        );
    }

    #[test]
    fn a_bitrate_ceiling_caps_the_layer_but_never_below_the_lowest() {
        let capped = Demand {
            max_bps: Some(600_000),
            ..cam(Some(0))
        };
        assert_eq!(allocate(10_000_000, &[capped]), [Some(1)]);
        let tiny = Demand {
            max_bps: Some(50_000),
            ..capped
        };
        assert_eq!(allocate(10_000_000, &[tiny]), [Some(0)]);
        assert_eq!(
            probe_rates(&[capped], &[Some(1)], true),
            (500_000, 500_000),
            "no probing for a layer the ceiling forbids"
        );
    }

    #[test]
    fn higher_priority_is_raised_first_after_screen_shares() {
        let presenter = Demand {
            priority: 5,
            ..cam(Some(2))
        };
        assert_eq!(
            allocate(1_900_000, &[cam(Some(2)), presenter]),
            [Some(0), Some(2)]
        );
        let screen = Demand {
            screen: true,
            ..cam(Some(2))
        };
        assert_eq!(
            allocate(1_900_000, &[presenter, screen]),
            [Some(0), Some(2)],
            "a screen share still comes first"
        );
    }

    #[test]
    fn the_floor_is_kept_for_every_track_before_any_is_raised_further() {
        let floored = Demand {
            min_bps: 400_000,
            ..cam(Some(2))
        };
        // Without a floor the first track takes the top layer and the second stays lowest.
        assert_eq!(
            allocate(1_800_000, &[cam(Some(2)), cam(Some(2))]),
            [Some(2), Some(0)]
        );
        assert_eq!(allocate(1_800_000, &[floored, floored]), [Some(1), Some(1)]);
        // A floor the budget cannot afford is not kept; one no layer reaches is no floor.
        assert_eq!(allocate(400_000, &[floored, floored]), [Some(0), Some(0)]);
        let unreachable = Demand {
            min_bps: 5_000_000,
            ..cam(Some(2))
        };
        assert_eq!(
            allocate(1_800_000, &[cam(Some(2)), unreachable]),
            [Some(2), Some(0)]
        );
    }

    #[test]
    fn probing_aims_at_the_next_layer_up() {
        let low = cam(Some(0));
        let (minimum, desired) = probe_rates(&[low], &[Some(0)], true);
        assert_eq!(desired, 1_500_000);
        assert_eq!(minimum, 600_000);
        assert_eq!(
            probe_rates(&[low], &[Some(2)], true),
            (1_500_000, 1_500_000)
        );
        // Holding back: only what is sent.
        assert_eq!(probe_rates(&[low], &[Some(0)], false), (150_000, 1_500_000));
    }

    #[test]
    fn display_size_caps_the_layer() {
        assert_eq!(layer_for_display(None, &SIZES), Some(2));
        assert_eq!(layer_for_display(Some((0, 0)), &SIZES), None);
        assert_eq!(layer_for_display(Some((320, 180)), &SIZES), Some(0));
        assert_eq!(layer_for_display(Some((600, 340)), &SIZES), Some(1));
        assert_eq!(layer_for_display(Some((1920, 1080)), &SIZES), Some(2));
        // A tall thumbnail needs more than the lowest layer but never the top one.
        assert_eq!(layer_for_display(Some((300, 700)), &SIZES), Some(1));
        assert_eq!(layer_for_display(Some((640, 360)), &[T]), Some(0));
        assert_eq!(layer_for_display(Some((640, 360)), &[]), None);
    }

    #[test]
    fn up_waits_for_the_hold_down_is_at_once() {
        let t0 = Instant::now();
        let mut c = LayerChoice::default();
        c.steer(t0, Some(2));
        assert_eq!(c.target, Some(2), "nothing forwarded yet: no hold");
        assert_eq!(c.on_packet(2, false), Admit::Wait);
        assert_eq!(c.on_packet(0, true), Admit::Skip);
        assert_eq!(c.on_packet(2, true), Admit::Switch);
        assert_eq!(c.on_packet(2, false), Admit::Forward);
        c.steer(t0, Some(0));
        assert_eq!(c.target, Some(0));
        assert_eq!(c.on_packet(2, false), Admit::Forward, "until the switch");
        assert_eq!(c.on_packet(0, true), Admit::Switch);
        assert_eq!(c.on_packet(2, false), Admit::Skip);
        c.steer(t0, Some(2));
        c.steer(t0 + Duration::from_secs(1), Some(2));
        assert_eq!(c.target, Some(0));
        c.steer(t0 + UPSWITCH_HOLD, Some(2));
        assert_eq!(c.target, Some(2));
        c.steer(t0 + UPSWITCH_HOLD, None);
        assert_eq!((c.current, c.target), (None, None));
        assert_eq!(c.on_packet(0, true), Admit::Skip);
    }

    #[test]
    fn under_a_standing_queue_the_higher_layer_stops_before_the_switch() {
        let t0 = Instant::now();
        let mut c = LayerChoice::default();
        c.steer(t0, Some(2));
        assert_eq!(c.on_packet(2, true), Admit::Switch);
        c.steer(t0, Some(0));
        c.drop_above_target();
        assert_eq!(
            c.on_packet(2, false),
            Admit::Skip,
            "the higher layer stops at once"
        );
        assert_eq!(c.on_packet(0, false), Admit::Wait);
        assert_eq!(c.on_packet(0, true), Admit::Switch);
        c.drop_above_target();
        assert_eq!(
            c.on_packet(0, false),
            Admit::Forward,
            "the target itself keeps flowing"
        );
    }
}
