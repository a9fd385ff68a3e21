//! A fast response to a queue standing on a subscriber's downlink. str0m's estimate takes
//! 0.5–2 s to come down after a link narrows sharply (its loss controller waits for a second
//! of evidence, and the estimate the SFU is given is averaged over 3 s); meanwhile video the
//! link cannot carry fills its bottleneck queue, the queue drops the packets of the lower
//! layer's keyframe too, and the picture freezes. The round trip str0m measures from TWCC
//! feedback shows that queue within a few hundred milliseconds: [`QueueWatch`] compares it
//! with the lowest recent round trip, and while the difference is [`CONGESTED_QUEUE`] or
//! more the subscriber is held on the lowest layers (see `bandwidth.rs`). The hold ends once
//! the queue has stayed small for [`RELEASE_AFTER`]; a "queue" that outlasts
//! [`PATH_CHANGE_AFTER`] is taken for a longer path, and becomes the base.

use std::time::{Duration, Instant};

/// Queueing delay (round trip above the recent minimum) taken as a link narrower than what
/// is sent over it.
const CONGESTED_QUEUE: Duration = Duration::from_millis(100);
/// A queue below this counts as drained.
const DRAINED_QUEUE: Duration = Duration::from_millis(50);
/// How long the queue must stay drained before the hold ends.
const RELEASE_AFTER: Duration = Duration::from_secs(1);
/// On the lowest layers a real queue drains within this: a delay that stays is the path's.
const PATH_CHANGE_AFTER: Duration = Duration::from_secs(3);
/// The lowest round trip is taken over this window (two of them, alternating), so it
/// follows a path that got longer.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);

/// Watches one subscriber's round trip; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct QueueWatch {
    /// Lowest round trip in the current window and in the previous one.
    min_rtt: [Option<Duration>; 2],
    window_start: Option<Instant>,
    hold: Option<Hold>,
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    /// Since when the queue has stood without a break.
    queued_since: Option<Instant>,
    drained_since: Option<Instant>,
}

impl QueueWatch {
    /// Takes the latest round trip from TWCC feedback. Returns true if a hold began.
    pub(crate) fn sample(&mut self, now: Instant, rtt: Duration) -> bool {
        let base = self.base_rtt(now, rtt);
        let queue = rtt.saturating_sub(base);
        let began = self.hold.is_none() && queue >= CONGESTED_QUEUE;
        if queue >= CONGESTED_QUEUE {
            let hold = self.hold.get_or_insert(Hold {
                queued_since: None,
                drained_since: None,
            });
            hold.drained_since = None;
            let since = *hold.queued_since.get_or_insert(now);
            if now >= since + PATH_CHANGE_AFTER {
                self.min_rtt = [Some(rtt), None];
                self.window_start = Some(now);
                self.hold = None;
            }
        } else if let Some(hold) = &mut self.hold {
            hold.queued_since = None;
            if queue < DRAINED_QUEUE {
                let since = *hold.drained_since.get_or_insert(now);
                if now >= since + RELEASE_AFTER {
                    self.hold = None;
                }
            } else {
                hold.drained_since = None;
            }
        }
        began
    }

    /// Whether the subscriber is held on its lowest layers.
    pub(crate) fn holding(&self) -> bool {
        self.hold.is_some()
    }

    /// The lowest round trip over the last one to two windows, including `rtt`.
    fn base_rtt(&mut self, now: Instant, rtt: Duration) -> Duration {
        let start = *self.window_start.get_or_insert(now);
        if now >= start + MIN_RTT_WINDOW {
            self.min_rtt = [None, self.min_rtt[0]];
            self.window_start = Some(now);
        }
        let current = &mut self.min_rtt[0];
        *current = Some(current.map_or(rtt, |m| m.min(rtt)));
        self.min_rtt.iter().flatten().copied().min().unwrap_or(rtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `n` samples 200 ms apart with round trip `rtt_ms`; returns whether a hold began.
    fn feed(w: &mut QueueWatch, t: &mut Instant, n: u32, rtt_ms: u64) -> bool {
        let mut began = false;
        for _ in 0..n {
            *t += Duration::from_millis(200);
            began |= w.sample(*t, Duration::from_millis(rtt_ms));
        }
        began
    }

    #[test]
    fn a_standing_queue_holds_until_it_has_drained_for_a_second() {
        let (mut w, mut t) = (QueueWatch::default(), Instant::now());
        assert!(!feed(&mut w, &mut t, 10, 20));
        assert!(
            !feed(&mut w, &mut t, 1, 90),
            "70 ms of queue is not congestion"
        );
        assert!(!w.holding());
        assert!(feed(&mut w, &mut t, 1, 320), "300 ms of queue is");
        assert!(!feed(&mut w, &mut t, 2, 320), "a hold begins once");
        assert!(w.holding());
        feed(&mut w, &mut t, 4, 30);
        assert!(w.holding(), "drained for 0.6 s only");
        feed(&mut w, &mut t, 1, 100);
        feed(&mut w, &mut t, 5, 30);
        assert!(w.holding(), "a queue in between restarts the wait");
        feed(&mut w, &mut t, 1, 30);
        assert!(!w.holding(), "drained for a second");
    }

    #[test]
    fn a_path_that_got_longer_becomes_the_new_base() {
        let (mut w, mut t) = (QueueWatch::default(), Instant::now());
        feed(&mut w, &mut t, 5, 20);
        // A new route with 150 ms more delay: taken for a queue at first...
        assert!(feed(&mut w, &mut t, 1, 170));
        // ...for as long as a queue could stand on the lowest layers.
        feed(&mut w, &mut t, 14, 170);
        assert!(w.holding());
        feed(&mut w, &mut t, 1, 170);
        assert!(!w.holding(), "the longer path is the new base");
        assert!(!feed(&mut w, &mut t, 5, 175));
    }

    #[test]
    fn the_base_follows_the_lowest_round_trip_of_the_last_windows() {
        let (mut w, mut t) = (QueueWatch::default(), Instant::now());
        feed(&mut w, &mut t, 5, 200);
        assert!(!w.holding(), "a long path from the start is no queue");
        assert!(!feed(&mut w, &mut t, 5, 80));
        assert!(
            feed(&mut w, &mut t, 1, 200),
            "against the shorter round trip it is"
        );
    }
}
