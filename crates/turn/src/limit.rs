//! Rate limits: a byte token bucket for the bandwidth of one allocation, and the per-IP limit
//! on failed authentications.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Bytes per second with a burst of one second's worth. Tokens are kept in byte-nanoseconds so
/// refilling loses no fractions.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u128,
    tokens: u128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` bytes per second.
    pub fn new(rate: u64, now: Instant) -> Self {
        let rate = u128::from(rate);
        Self {
            rate,
            tokens: rate * NANOS_PER_SEC,
            last: now,
        }
    }

    /// Takes `bytes` if there are enough tokens; leaves the bucket alone if not.
    pub fn take(&mut self, now: Instant, bytes: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        let full = self.rate * NANOS_PER_SEC;
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(full);
        let cost = (bytes as u128) * NANOS_PER_SEC;
        if cost > self.tokens {
            return false;
        }
        self.tokens -= cost;
        true
    }
}

/// Most source IPs tracked at once; failures from further IPs are not tracked (and not
/// blocked) until entries expire, so the table cannot grow without bound.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    window_end: Instant,
    blocked_until: Option<Instant>,
}

/// Counts failed authentications per source IP; `max` failures within `window` block the IP
/// for `block`.
#[derive(Debug, Clone)]
pub(crate) struct AuthLimiter {
    ips: BTreeMap<IpAddr, Failures>,
    max: u32,
    window: Duration,
    block: Duration,
}

impl AuthLimiter {
    pub fn new(max: u32, window: Duration, block: Duration) -> Self {
        Self {
            ips: BTreeMap::new(),
            max: max.max(1),
            window,
            block,
        }
    }

    /// Whether requests from `ip` are being dropped.
    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.ips
            .get(&ip)
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a failure; returns the time it blocks the IP until, if it does, for the timer.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) -> Option<Instant> {
        if self.ips.len() >= MAX_TRACKED && !self.ips.contains_key(&ip) {
            return None;
        }
        let window = self.window;
        let f = self.ips.entry(ip).or_insert(Failures {
            count: 0,
            window_end: now + window,
            blocked_until: None,
        });
        if now >= f.window_end {
            *f = Failures {
                count: 0,
                window_end: now + window,
                blocked_until: f.blocked_until,
            };
        }
        f.count += 1;
        if f.count < self.max {
            return None;
        }
        f.count = 0;
        let until = now + self.block;
        f.blocked_until = Some(until);
        Some(until)
    }

    /// Forgets IPs whose window and block are over.
    pub fn expire(&mut self, now: Instant) {
        self.ips
            .retain(|_, f| f.window_end > now || f.blocked_until.is_some_and(|u| u > now));
    }

    /// When the next entry can be forgotten.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.ips
            .values()
            .map(|f| {
                f.blocked_until
                    .map_or(f.window_end, |u| u.max(f.window_end))
            })
            .min()
    }

    /// Number of IPs tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.ips.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_rate_and_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0);
        assert!(b.take(t0, 600));
        assert!(!b.take(t0, 600));
        assert!(b.take(t0, 400));
        assert!(!b.take(t0, 1));
        assert!(b.take(t0 + Duration::from_millis(100), 100));
        assert!(!b.take(t0 + Duration::from_millis(100), 1));
        // Refill caps at one second's worth.
        assert!(!b.take(t0 + Duration::from_secs(10), 1001));
        assert!(b.take(t0 + Duration::from_secs(10), 1000));
    }

    #[test]
    fn limiter_blocks_after_max_failures_in_window() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let mut l = AuthLimiter::new(3, Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(l.failure(ip, t0), None);
        assert_eq!(l.failure(ip, t0), None);
        assert!(!l.is_blocked(ip, t0));
        assert_eq!(l.failure(ip, t0), Some(t0 + Duration::from_secs(30)));
        assert!(l.is_blocked(ip, t0 + Duration::from_secs(29)));
        assert!(!l.is_blocked(ip, t0 + Duration::from_secs(30)));
        assert!(!l.is_blocked("192.0.2.10".parse().unwrap(), t0));
        l.expire(t0 + Duration::from_secs(60));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn limiter_window_resets_count() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let mut l = AuthLimiter::new(2, Duration::from_secs(10), Duration::from_secs(30));
        assert_eq!(l.failure(ip, t0), None);
        assert_eq!(l.failure(ip, t0 + Duration::from_secs(11)), None);
        assert!(l.failure(ip, t0 + Duration::from_secs(12)).is_some());
        assert_eq!(l.next_deadline(), Some(t0 + Duration::from_secs(42)));
    }
}
