//! Bounds on what strangers can make the server do: sliding-window rate limits keyed by
//! client address or account, and the password-hashing pool (argon2 takes about 19 MiB per
//! hash, so hashes run on a fixed number of threads behind a bounded queue).

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Events per key in a sliding window; keys are dropped once their events are stale.
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    events: Mutex<Table>,
}

struct Table {
    keys: HashMap<String, VecDeque<Instant>>,
    /// Size at which stale keys are swept next: twice what survived the last sweep, so
    /// sweeping costs O(1) per event however many keys are fresh.
    sweep_at: usize,
}

/// Keys tracked before stale ones are first swept.
const SWEEP_AT: usize = 50_000;
/// Keys tracked at most: a flood of distinct fresh keys beyond it is forgotten at once.
const MAX_KEYS: usize = 200_000;

impl RateLimiter {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            events: Mutex::new(Table {
                keys: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }

    /// Whether `key` reached its limit in the window ending at `now`.
    pub fn exhausted(&self, key: &str, now: Instant) -> bool {
        let mut events = self.events.lock().expect("rate limiter lock");
        events.keys.get_mut(key).is_some_and(|q| {
            while q.front().is_some_and(|t| now - *t > self.window) {
                q.pop_front();
            }
            q.len() >= self.limit
        })
    }

    /// Counts one event for `key`.
    pub fn record(&self, key: &str, now: Instant) {
        let mut table = self.events.lock().expect("rate limiter lock");
        if table.keys.len() >= table.sweep_at {
            let window = self.window;
            table
                .keys
                .retain(|_, q| q.back().is_some_and(|t| now - *t <= window));
            if table.keys.len() >= MAX_KEYS {
                table.keys.clear();
            }
            table.sweep_at = (2 * table.keys.len()).max(SWEEP_AT);
        }
        let q = table.keys.entry(key.to_string()).or_default();
        q.push_back(now);
        while q.len() > self.limit {
            q.pop_front();
        }
    }

    /// Counts one event unless the limit is reached; `false` when refused.
    pub fn try_record(&self, key: &str, now: Instant) -> bool {
        if self.exhausted(key, now) {
            return false;
        }
        self.record(key, now);
        true
    }
}

/// Every bound of the accounts endpoints, shared by all requests.
pub struct Guards {
    pub hashing: HashPool,
    /// Failed log-ins per (email, client address): locks the guesser, not the account.
    pub login_pair: RateLimiter,
    /// Failed log-ins per client address, whatever the email.
    pub login_addr: RateLimiter,
    /// Failed log-ins per email from anywhere: only a guesser with many addresses hits it.
    pub login_email: RateLimiter,
    /// Accounts created per client address.
    pub signups: RateLimiter,
}

/// Threads that hash passwords; more would only add memory, not throughput, on small hosts.
pub const HASH_THREADS: usize = 2;
/// Hashes waiting for a thread before sign-ups and log-ins answer 503.
pub const HASH_QUEUE: usize = 16;
pub const LOGIN_FAILURES_PER_PAIR: usize = 5;
pub const LOGIN_FAILURES_PER_ADDRESS: usize = 20;
pub const LOGIN_FAILURES_PER_EMAIL: usize = 100;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const SIGNUPS_PER_ADDRESS: usize = 20;
pub const SIGNUP_WINDOW: Duration = Duration::from_secs(3600);

impl Guards {
    /// The bounds above, with `signups_per_hour` accounts per client address.
    pub fn new(signups_per_hour: usize) -> Self {
        Self {
            hashing: HashPool::new(HASH_THREADS, HASH_QUEUE),
            login_pair: RateLimiter::new(LOGIN_FAILURES_PER_PAIR, LOGIN_WINDOW),
            login_addr: RateLimiter::new(LOGIN_FAILURES_PER_ADDRESS, LOGIN_WINDOW),
            login_email: RateLimiter::new(LOGIN_FAILURES_PER_EMAIL, LOGIN_WINDOW),
            signups: RateLimiter::new(signups_per_hour, SIGNUP_WINDOW),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for password hashing with a bounded queue in front.
pub struct HashPool {
    jobs: SyncSender<Job>,
}

/// The pool's queue is full: the caller should answer 503 and let the client retry.
#[derive(Debug)]
pub struct Busy;

impl HashPool {
    pub fn new(threads: usize, queue: usize) -> Self {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("stoa-hash-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock().expect("hash queue lock").recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job();
                })
                .expect("a password-hashing thread starts");
        }
        Self { jobs }
    }

    /// Runs `work` on the pool; [`Busy`] at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        self.submit(work)?.await.map_err(|_| Busy)
    }

    /// Queues `work`; the receiver gets its result.
    fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, Busy> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        match self.jobs.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_at_its_limit_until_the_window_passes() {
        let limiter = RateLimiter::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(limiter.try_record("a", t0));
        assert!(limiter.try_record("a", t0));
        assert!(!limiter.try_record("a", t0 + Duration::from_secs(1)));
        assert!(limiter.try_record("b", t0), "other keys are separate");
        assert!(limiter.try_record("a", t0 + Duration::from_secs(11)));
    }

    #[test]
    fn a_flood_of_keys_stays_bounded() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(2 * MAX_KEYS) {
            limiter.record(&i.to_string(), t0);
        }
        assert!(limiter.events.lock().unwrap().keys.len() <= MAX_KEYS);
        // Stale keys go at the next sweep.
        let later = t0 + Duration::from_secs(61);
        let table_size = limiter.events.lock().unwrap().keys.len();
        for i in 0..table_size {
            limiter.record(&format!("new-{i}"), later);
        }
        assert!(limiter.events.lock().unwrap().keys.len() <= table_size);
    }

    #[tokio::test]
    async fn the_pool_refuses_work_beyond_its_queue() {
        let pool = HashPool::new(1, 1);
        let (started, running) = oneshot::channel();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = pool
            .submit(move || {
                let _ = started.send(());
                hold.recv().is_ok()
            })
            .unwrap();
        running.await.unwrap();
        // The one thread is busy and the queue has one slot.
        let second = pool.submit(|| 2).unwrap();
        assert!(matches!(pool.submit(|| 3), Err(Busy)));
        release.send(()).unwrap();
        assert!(first.await.unwrap());
        assert_eq!(second.await.unwrap(), 2);
        assert_eq!(pool.run(|| 4).await.unwrap(), 4);
    }
}
