//! The in-process rate limiter: one instance, no Redis. Lost on restart, which only forgets recent
//! requests.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{Decision, Limit, RateLimiter, decision, degenerate};
use crate::StateError;

/// How often at most a check sweeps out the logs of keys that went idle.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The admitted requests of one key, oldest first, and the window they were last checked under.
#[derive(Debug)]
struct Log {
    window: Duration,
    admitted: VecDeque<Instant>,
}

#[derive(Debug)]
struct Inner {
    logs: HashMap<String, Log>,
    last_sweep: Instant,
}

/// Sliding logs in a mutex-guarded map on the monotonic clock; the lock is never held across an
/// await, and a check is a single critical section (hence atomic, hence exact).
#[derive(Debug)]
pub struct MemoryRateLimiter {
    inner: Mutex<Inner>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                logs: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }
}

impl MemoryRateLimiter {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A check leaves every log consistent at each step, so a poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How long from `now` until `at + window`, zero if already past.
fn until_leaves(at: Instant, window: Duration, now: Instant) -> Duration {
    (at + window).saturating_duration_since(now)
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, limit: Limit) -> Result<Decision, StateError> {
        if let Some(decided) = degenerate(limit) {
            return Ok(decided);
        }
        let window = limit.effective_window();
        let mut inner = self.lock();
        // Read under the lock, so each log is appended in clock order and its front is its oldest.
        let now = Instant::now();
        if now.saturating_duration_since(inner.last_sweep) >= SWEEP_EVERY {
            inner.logs.retain(|_, log| {
                log.admitted
                    .back()
                    .is_some_and(|&newest| now.saturating_duration_since(newest) < log.window)
            });
            inner.last_sweep = now;
        }
        // Looked up before inserting, so a known key costs no allocation.
        let log = match inner.logs.get_mut(key) {
            Some(log) => log,
            None => inner.logs.entry(key.to_owned()).or_insert_with(|| Log {
                window,
                admitted: VecDeque::new(),
            }),
        };
        log.window = window;
        while log
            .admitted
            .front()
            .is_some_and(|&oldest| now.saturating_duration_since(oldest) >= window)
        {
            log.admitted.pop_front();
        }
        let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
        let allowed = log.admitted.len() < max;
        if allowed {
            log.admitted.push_back(now);
        }
        let logged = log.admitted.len();
        let reset_after = log
            .admitted
            .front()
            .map_or(Duration::ZERO, |&oldest| until_leaves(oldest, window, now));
        // Refused means at least `max` logged: one more fits once the first `logged − max + 1` left.
        let retry_after = log
            .admitted
            .get(logged.saturating_sub(max))
            .map_or(Duration::ZERO, |&nth| until_leaves(nth, window, now));
        let logged = u64::try_from(logged).unwrap_or(u64::MAX);
        Ok(decision(limit, allowed, logged, reset_after, retry_after))
    }
}
