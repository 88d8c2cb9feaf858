//! Rate limiting: an exact sliding-window limiter shared by every instance.
//!
//! A [`Limit`] of `max` requests per `window` admits at most `max` requests per key in *any*
//! interval of length `window`, across all instances, not merely per fixed calendar window (which
//! lets up to `2 × max` through around a boundary).
//!
//! # Algorithm: a sliding log
//!
//! Each key keeps the times of the requests it admitted, oldest first. A check, as one atomic step:
//!
//! 1. drops every logged time `t` with `t + window <= now` (it has left the window);
//! 2. admits the request if fewer than `max` times remain, logging `now`; refuses it otherwise,
//!    logging nothing (a refused request costs the caller nothing, so a client hammering a limit
//!    is let through again as soon as its old requests age out);
//! 3. reports `remaining = max − logged`, `reset_after` = when the oldest logged request leaves the
//!    window, and, when refused, `retry_after` = when enough logged requests have left for one more
//!    to fit (the `(logged − max + 1)`-th oldest; that is the oldest one unless `max` was lowered
//!    for a key that already had more requests logged).
//!
//! It is exact because the decision and the logging are one indivisible step per key (a Lua script
//! on Redis, a mutex in process) and every admitted request is in the log until it has left the
//! window: at any instant the log holds exactly the admitted requests of the last `window`, so
//! admitting only below `max` keeps every window at `max` or fewer. The cost is one log entry per
//! admitted request, at most `max` per key.
//!
//! Time is the Redis server's clock on Redis (so instances with skewed clocks agree) and the
//! process's monotonic clock in process.
//!
//! # Degenerate limits
//!
//! Decided without touching the store, identically on every backend: a `max` of zero refuses every
//! request (with `retry_after` = the window, as a back-off hint); a zero `window` holds no request,
//! so every request is admitted and nothing is counted. Windows longer than [`MAX_WINDOW`] are
//! treated as [`MAX_WINDOW`].

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use self::{memory::MemoryRateLimiter, redis::RedisRateLimiter};
use crate::StateError;

/// The longest window honoured (about 100 years); longer ones are shortened to it. It keeps every
/// time in microseconds well inside the integer range of a Redis sorted-set score (an `f64`).
pub const MAX_WINDOW: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// At most `max` requests in any interval of length `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    /// `max` requests per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }

    /// The window actually enforced (at most [`MAX_WINDOW`]).
    pub(crate) fn effective_window(self) -> Duration {
        self.window.min(MAX_WINDOW)
    }
}

/// The outcome of one [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted (and was counted).
    pub allowed: bool,
    /// The `max` of the limit checked against.
    pub limit: u32,
    /// Requests still admitted in the current window after this one.
    pub remaining: u32,
    /// Until the oldest counted request leaves the window (when a slot frees up); zero if none
    /// counted.
    pub reset_after: Duration,
    /// When refused: how long until a request would be admitted. `None` when admitted.
    pub retry_after: Option<Duration>,
}

/// Where rate-limit logs live.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts a request against `key` (already namespaced by the caller, e.g.
    /// `"ip:203.0.113.7:global"`) and decides, in one atomic round trip. Refused requests are not
    /// counted.
    async fn check(&self, key: &str, limit: Limit) -> Result<Decision, StateError>;
}

/// The decision for a limit that needs no log (see "Degenerate limits" in the module docs).
pub(crate) fn degenerate(limit: Limit) -> Option<Decision> {
    if limit.max == 0 {
        Some(Decision {
            allowed: false,
            limit: 0,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: Some(limit.effective_window()),
        })
    } else if limit.window.is_zero() {
        Some(Decision {
            allowed: true,
            limit: limit.max,
            remaining: limit.max,
            reset_after: Duration::ZERO,
            retry_after: None,
        })
    } else {
        None
    }
}

/// Builds a decision from the log after the check: `logged` requests in the window (this one
/// included if admitted), `reset_after` and `retry_after` as measured by the backend. Both waits are
/// capped at the window, which only matters if a clock stepped back.
pub(crate) fn decision(
    limit: Limit,
    allowed: bool,
    logged: u64,
    reset_after: Duration,
    retry_after: Duration,
) -> Decision {
    let window = limit.effective_window();
    let remaining = u64::from(limit.max).saturating_sub(logged);
    Decision {
        allowed,
        limit: limit.max,
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset_after: reset_after.min(window),
        retry_after: (!allowed).then(|| retry_after.min(window)),
    }
}
