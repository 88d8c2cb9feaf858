//! Shared, short-lived state: what every instance must agree on without asking PostgreSQL.
//!
//! Each part is a trait with two implementations that pass the same conformance suite
//! (`tests/conformance.rs`): one on Redis (any number of instances, Redis Cluster included) and an
//! in-process twin for a single instance with no Redis. [`StateBackends::connect`] picks one set from
//! the configuration; nothing above this crate knows which it got.
//!
//! # Layout
//!
//! - [`redis_conn`]: the Redis connection, single node or cluster, and key naming.
//! - [`sessions`]: login sessions ([`SessionStore`]), keyed by the hash of an opaque token.
//! - [`availability`]: per-facility, per-local-day slot bitmaps ([`AvailabilityCache`]), a cache of
//!   PostgreSQL kept coherent by a per-day generation counter.
//! - [`popularity`]: confirmed-booking counts per facility, local weekday and hour
//!   ([`PopularTimes`]).
//! - [`holds`]: a mirror of active holds with their expiry ([`HoldMirror`]), for fast reads only;
//!   PostgreSQL stays the authority.
//! - [`rate_limit`]: exact sliding-window request limits per caller-chosen key ([`RateLimiter`]),
//!   agreed on by every instance.
//! - [`channels`]: real-time channels ([`Channels`]): publish to every instance that listens, with
//!   offsets that only grow and a short history to replay from.
//! - [`tokens`]: single-use tokens with a time to live, such as password-reset links
//!   ([`OneTimeTokens`]).

pub mod availability;
pub mod channels;
pub mod holds;
pub mod popularity;
pub mod rate_limit;
pub mod redis_conn;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;

pub use availability::{AvailabilityCache, Cached, DayBits, DayKey};
pub use channels::{ChannelEvent, Channels, History, Listener, ListenerHandle};
pub use holds::{HoldMirror, MirroredHold};
pub use popularity::{PopularSlot, PopularTimes};
pub use rate_limit::{Decision, Limit, RateLimiter};
pub use redis_conn::{RedisConn, RedisOptions};
pub use sessions::{NewSession, SessionRecord, SessionStore, SessionToken, TokenHash};
pub use tokens::{OneTimeTokens, TokenPurpose};

/// A state operation that failed for reasons outside the caller's control.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored state is unreadable: {0}")]
    Corrupt(String),
}

/// Which implementation backs the state parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Redis,
    InProcess,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::InProcess => "in-process",
        }
    }
}

/// Every state part, behind its trait: all Redis-backed ([`StateBackends::redis`]) or all
/// in-process twins ([`StateBackends::in_process`]), never a mix. Cloning shares the parts.
#[derive(Clone)]
pub struct StateBackends {
    pub kind: BackendKind,
    /// Login sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// The slot-bitmap cache of availability reads.
    pub availability: Arc<dyn AvailabilityCache>,
    /// Popular-times counts.
    pub popularity: Arc<dyn PopularTimes>,
    /// The mirror of active holds.
    pub holds: Arc<dyn HoldMirror>,
    /// Sliding-window rate limits.
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Single-use tokens (password resets).
    pub tokens: Arc<dyn OneTimeTokens>,
    /// Real-time channels with their history.
    pub channels: Arc<dyn Channels>,
    redis: Option<RedisConn>,
}

impl std::fmt::Debug for StateBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateBackends")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl StateBackends {
    /// Redis-backed parts when `redis` is given, in-process twins otherwise.
    pub async fn connect(redis: Option<RedisOptions>) -> Result<Self, StateError> {
        match redis {
            Some(options) => {
                let conn = RedisConn::connect(&options).await?;
                Ok(Self::redis(conn))
            }
            None => Ok(Self::in_process()),
        }
    }

    /// Every part on Redis, sharing `conn`.
    pub fn redis(conn: RedisConn) -> Self {
        Self {
            kind: BackendKind::Redis,
            sessions: Arc::new(sessions::RedisSessionStore::new(conn.clone())),
            availability: Arc::new(availability::RedisAvailabilityCache::new(conn.clone())),
            popularity: Arc::new(popularity::RedisPopularTimes::new(conn.clone())),
            holds: Arc::new(holds::RedisHoldMirror::new(conn.clone())),
            rate_limiter: Arc::new(rate_limit::RedisRateLimiter::new(conn.clone())),
            tokens: Arc::new(tokens::RedisOneTimeTokens::new(conn.clone())),
            channels: Arc::new(channels::RedisChannels::new(conn.clone())),
            redis: Some(conn),
        }
    }

    /// Every part in this process, for a single instance without Redis.
    pub fn in_process() -> Self {
        Self {
            kind: BackendKind::InProcess,
            sessions: Arc::new(sessions::MemorySessionStore::default()),
            availability: Arc::new(availability::MemoryAvailabilityCache::default()),
            popularity: Arc::new(popularity::MemoryPopularTimes::default()),
            holds: Arc::new(holds::MemoryHoldMirror::default()),
            rate_limiter: Arc::new(rate_limit::MemoryRateLimiter::default()),
            tokens: Arc::new(tokens::MemoryOneTimeTokens::default()),
            channels: Arc::new(channels::MemoryChannels::default()),
            redis: None,
        }
    }

    /// The Redis connection the parts share, when they are on Redis (for other Redis-backed
    /// services of the same deployment, such as the job queue and the audit buffer).
    pub fn redis_conn(&self) -> Option<&RedisConn> {
        self.redis.as_ref()
    }

    /// Round trip to the backing store (`/ready`); the in-process twin is always up.
    pub async fn ping(&self) -> Result<(), StateError> {
        match &self.redis {
            Some(conn) => conn.ping().await,
            None => Ok(()),
        }
    }
}
