//! The rate limiter in Redis.
//!
//! One sorted set per key, `rl:{<key>}` (under the deployment prefix): each member is one admitted
//! request, scored by its time in microseconds on the Redis server's clock (`TIME`), with a random
//! nonce from the caller in the member name so that two requests in the same microsecond stay two
//! members. Times near 1.7 × 10¹⁵ µs are exact in a score (an `f64` holds integers up to 2⁵³).
//!
//! A check is one Lua script on that single key, so it is atomic (Redis runs a script alone) and
//! fits one cluster slot whatever the key contains: it reads `TIME`, drops members scored at or
//! before `now − window`, admits and `ZADD`s only below `max`, sets the key to expire one window
//! after now (by then every member has left the window), and returns the counts and waits. Using the
//! server's clock for every instance is what makes instances with skewed clocks agree.

use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::Script;

use super::{Decision, Limit, RateLimiter, decision, degenerate};
use crate::{RedisConn, StateError, redis_conn::script};

/// One sliding-log check.
/// KEYS: the log. ARGV: max, window (µs), window (ms, rounded up), nonce.
/// Returns `{allowed (0/1), logged, reset_after (µs), retry_after (µs, 0 when admitted)}`.
/// Numbers going into commands are formatted with `%d`, as Lua's default conversion would round
/// microsecond times to 14 significant digits.
static CHECK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local max = tonumber(ARGV[1])
        local window = tonumber(ARGV[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
        local logged = redis.call('ZCARD', KEYS[1])
        local allowed = 0
        if logged < max then
            local at = string.format('%d', now)
            redis.call('ZADD', KEYS[1], at, at .. ':' .. ARGV[4])
            logged = logged + 1
            allowed = 1
        end
        local reset_after = 0
        local retry_after = 0
        if logged > 0 then
            local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
            reset_after = tonumber(oldest[2]) + window - now
            if allowed == 0 then
                local nth = string.format('%d', logged - max)
                local entry = redis.call('ZRANGE', KEYS[1], nth, nth, 'WITHSCORES')
                retry_after = tonumber(entry[2]) + window - now
            end
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
        end
        return {allowed, logged, reset_after, retry_after}
        ",
    )
});

/// Sliding-log rate limiting in Redis; see the module docs for the key layout.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    redis: RedisConn,
}

impl RedisRateLimiter {
    /// The rate limiter on `redis`.
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn log_key(&self, key: &str) -> String {
        self.redis.key(format_args!("rl:{{{key}}}"))
    }
}

/// `d` in whole microseconds, rounded up (so a non-zero window stays non-zero).
fn micros_ceil(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// A wait returned by the script, in microseconds.
fn wait(raw: i64, what: &str) -> Result<Duration, StateError> {
    u64::try_from(raw)
        .map(Duration::from_micros)
        .map_err(|_| StateError::Corrupt(format!("rate-limit {what} of {raw} µs")))
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, limit: Limit) -> Result<Decision, StateError> {
        if let Some(decided) = degenerate(limit) {
            return Ok(decided);
        }
        let window_us = micros_ceil(limit.effective_window());
        let reply: Vec<i64> = self
            .redis
            .script(
                CHECK
                    .key(self.log_key(key))
                    .arg(limit.max)
                    .arg(window_us)
                    .arg(window_us.div_ceil(1000))
                    .arg(format!("{:016x}", rand::random::<u64>())),
            )
            .await?;
        let &[allowed, logged, reset_after, retry_after] = reply.as_slice() else {
            return Err(StateError::Corrupt(format!(
                "rate-limit check returned {} values",
                reply.len()
            )));
        };
        let logged = u64::try_from(logged)
            .map_err(|_| StateError::Corrupt(format!("rate-limit log of {logged} requests")))?;
        Ok(decision(
            limit,
            allowed == 1,
            logged,
            wait(reset_after, "reset")?,
            wait(retry_after, "retry")?,
        ))
    }
}
