//! The availability cache in Redis.
//!
//! Keys of one day (under the deployment prefix; `<date>` is `YYYY-MM-DD`):
//! - `avail:{<facility>:<date>}:gen`: the generation counter (absent = 0). Its TTL is at least a
//!   day after its last bump and at least as long as the bitmaps stored under it.
//! - `avail:{<facility>:<date>}:cached`: the generation the stored bitmaps were computed under; its
//!   presence also tells an empty (closed-day) bitmap from a missing one.
//! - `avail:{<facility>:<date>}:held` and `…:booked`: the bitmaps as raw strings (`SETBIT` layout).
//!
//! The braces make the four keys one hash tag, hence one cluster slot, so that:
//! - a read is a single `MGET` of all four, which Redis runs atomically: the generation and the
//!   bitmaps it returns are one consistent snapshot, and `get_days` sends one such command per day
//!   in one batch;
//! - `store_day` is one Lua script that compares the generation and writes the bitmaps atomically,
//!   so no `invalidate` can slip between the check and the write;
//! - `invalidate` is one Lua script that bumps the counter and drops the bitmaps.
//!
//! The bitmaps and `cached` are written together with one expiry, so they vanish together; a reply
//! with `cached` but a bitmap missing is treated as a miss anyway.

use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::Script;

use super::{AvailabilityCache, Cached, DayBits, DayKey, GENERATION_TTL};
use crate::{RedisConn, StateError, redis_conn::script};

/// Stores a day's bitmaps if its generation is still the one the caller read.
/// KEYS: gen, cached, held, booked. ARGV: generation read, held, booked, TTL (ms).
/// Returns 1 when stored, 0 when refused.
static STORE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local current = redis.call('GET', KEYS[1]) or '0'
        if current ~= ARGV[1] then return 0 end
        local ttl = tonumber(ARGV[4])
        redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
        redis.call('SET', KEYS[3], ARGV[2], 'PX', ttl)
        redis.call('SET', KEYS[4], ARGV[3], 'PX', ttl)
        if current ~= '0' and redis.call('PTTL', KEYS[1]) < ttl then
            redis.call('PEXPIRE', KEYS[1], ttl)
        end
        return 1
        ",
    )
});

/// Bumps a day's generation and drops its bitmaps. A counter that starts anew starts at the current
/// time in milliseconds (see the module docs of `availability`).
/// KEYS: gen, cached, held, booked. ARGV: minimum TTL of the counter (ms). Returns the generation.
static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local g = redis.call('INCR', KEYS[1])
        if g == 1 then
            local t = redis.call('TIME')
            g = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            redis.call('SET', KEYS[1], string.format('%d', g))
        end
        local ttl = tonumber(ARGV[1])
        if redis.call('PTTL', KEYS[1]) < ttl then
            redis.call('PEXPIRE', KEYS[1], ttl)
        end
        redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
        return g
        ",
    )
});

/// The availability cache in Redis; see the module docs for the key layout.
#[derive(Debug, Clone)]
pub struct RedisAvailabilityCache {
    redis: RedisConn,
}

/// The four keys of one day, in the order the scripts and `MGET` use.
struct DayKeys {
    gen_key: String,
    cached: String,
    held: String,
    booked: String,
}

impl RedisAvailabilityCache {
    /// The availability cache on `redis`.
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn keys(&self, day: &DayKey) -> DayKeys {
        // The prefix goes in front of the braces: the hash tag is the first `{…}` of the whole key.
        let base = format!(
            "avail:{{{}:{}}}",
            day.facility_id,
            day.date.format("%Y-%m-%d")
        );
        DayKeys {
            gen_key: self.redis.key(format_args!("{base}:gen")),
            cached: self.redis.key(format_args!("{base}:cached")),
            held: self.redis.key(format_args!("{base}:held")),
            booked: self.redis.key(format_args!("{base}:booked")),
        }
    }
}

/// `text` with Redis glob characters escaped, to match it literally.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn parse_generation(raw: Option<&[u8]>, what: &str) -> Result<u64, StateError> {
    match raw {
        None => Ok(0),
        Some(raw) => std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| StateError::Corrupt(format!("availability {what} is not a number"))),
    }
}

/// Reads one `MGET gen cached held booked` reply.
fn parse_day(reply: Vec<Option<Vec<u8>>>) -> Result<Cached, StateError> {
    let mut fields = reply.into_iter();
    let (Some(generation), Some(cached), Some(held), Some(booked)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(StateError::Corrupt(
            "availability read returned too few values".to_owned(),
        ));
    };
    let generation = parse_generation(generation.as_deref(), "generation")?;
    let Some(cached) = cached else {
        return Ok(Cached::Miss { generation });
    };
    if parse_generation(Some(&cached), "cached generation")? != generation {
        return Ok(Cached::Miss { generation });
    }
    match (held, booked) {
        (Some(held), Some(booked)) => Ok(Cached::Hit(DayBits { held, booked })),
        _ => Ok(Cached::Miss { generation }),
    }
}

#[async_trait]
impl AvailabilityCache for RedisAvailabilityCache {
    async fn clear(&self) -> Result<u64, StateError> {
        // Only the markers that say bitmaps are stored: without one a day is a miss, and its
        // bitmaps expire with their TTL or are overwritten by the next store.
        let pattern = format!("{}*:cached", glob_escape(&self.redis.key("avail:")));
        let nodes = if self.redis.is_cluster() {
            self.redis.options().urls.len()
        } else {
            1
        };
        let mut cleared = 0;
        for seed in 0..nodes {
            let mut node = self.redis.seed_connection(seed).await?;
            let mut cursor = 0_u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut node)
                    .await?;
                if !keys.is_empty() {
                    let deletes = keys
                        .iter()
                        .map(|key| {
                            let mut del = redis::cmd("DEL");
                            del.arg(key);
                            del
                        })
                        .collect();
                    let removed: Vec<u64> = self.redis.batch(deletes).await?;
                    cleared += removed.iter().sum::<u64>();
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(cleared)
    }

    async fn get_days(&self, keys: &[DayKey]) -> Result<Vec<Cached>, StateError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let reads = keys
            .iter()
            .map(|day| {
                let k = self.keys(day);
                let mut cmd = redis::cmd("MGET");
                cmd.arg(k.gen_key).arg(k.cached).arg(k.held).arg(k.booked);
                cmd
            })
            .collect();
        let replies: Vec<Vec<Option<Vec<u8>>>> = self.redis.batch(reads).await?;
        if replies.len() != keys.len() {
            return Err(StateError::Corrupt(format!(
                "availability read returned {} answers for {} days",
                replies.len(),
                keys.len()
            )));
        }
        replies.into_iter().map(parse_day).collect()
    }

    async fn store_day(
        &self,
        key: &DayKey,
        generation: u64,
        bits: &DayBits,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let ttl_ms = duration_ms(ttl);
        if ttl_ms == 0 {
            return Ok(false);
        }
        let k = self.keys(key);
        let stored: i64 = self
            .redis
            .script(
                STORE
                    .key(k.gen_key)
                    .key(k.cached)
                    .key(k.held)
                    .key(k.booked)
                    .arg(generation.to_string())
                    .arg(bits.held.as_slice())
                    .arg(bits.booked.as_slice())
                    .arg(ttl_ms),
            )
            .await?;
        Ok(stored == 1)
    }

    async fn invalidate(&self, keys: &[DayKey]) -> Result<(), StateError> {
        let ttl_ms = duration_ms(GENERATION_TTL);
        // One script per day (each day is its own slot); they run concurrently on the multiplexed
        // connection.
        futures::future::try_join_all(keys.iter().map(|day| {
            let k = self.keys(day);
            async move {
                self.redis
                    .script::<i64>(
                        INVALIDATE
                            .key(k.gen_key)
                            .key(k.cached)
                            .key(k.held)
                            .key(k.booked)
                            .arg(ttl_ms),
                    )
                    .await
            }
        }))
        .await?;
        Ok(())
    }
}
