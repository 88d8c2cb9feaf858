//! The hold mirror in Redis.
//!
//! One key per hold, `hold:<booking id>` (under the deployment prefix), holding
//! `<facility id>|<start ms>|<end ms>` and expiring at the hold's expiry (`SET … PXAT`, i.e. `SET`
//! and `PEXPIREAT` in one atomic command, so no mirror ever exists without its expiry); and one
//! sorted set per facility, `holds:{<facility id>}`, of `<booking id>|<start ms>|<end ms>` scored by
//! expiry, which answers "what is held here now" with one `ZRANGE … BYSCORE`. A member whose score
//! has passed is skipped by readers and dropped at the facility's next hold; the set expires with
//! its last member. The two live in different cluster slots, so a hold is written to the key first
//! and to the set second; a reader that catches the one without the other only sees the hold a
//! moment late. Expiry is judged by the Redis server's clock for the keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use std::sync::LazyLock;

use redis::Script;

use super::{HoldMirror, MirroredHold};
use crate::{RedisConn, StateError, redis_conn::script};

/// Holds mirrored in Redis; see the module docs for the key layout.
#[derive(Debug, Clone)]
pub struct RedisHoldMirror {
    redis: RedisConn,
}

impl RedisHoldMirror {
    /// The hold mirror on `redis`.
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn hold_key(&self, booking_id: Uuid) -> String {
        self.redis.key(format_args!("hold:{booking_id}"))
    }

    fn facility_key(&self, facility_id: Uuid) -> String {
        self.redis.key(format_args!("holds:{{{facility_id}}}"))
    }
}

/// Adds a hold to its facility's set, drops the set's expired members, and keeps the set alive
/// until its last member's expiry. KEYS: the facility's set. ARGV: member, expiry (ms).
static ADD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = redis.call('TIME')
        local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', ms))
        if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[2]) then
            redis.call('PEXPIREAT', KEYS[1], ARGV[2])
        end
        return 1
        ",
    )
});

/// A hold as its per-hold key and its facility's set store it: `<facility>|<start ms>|<end ms>`
/// and `<booking>|<start ms>|<end ms>`.
fn slot(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    format!("{}|{}", start.timestamp_millis(), end.timestamp_millis())
}

fn corrupt(raw: &str) -> StateError {
    StateError::Corrupt(format!("hold mirror value {raw:?}"))
}

/// A hold's range, `[start, end)`.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Reads `<uuid>|<start ms>|<end ms>` (or a bare `<uuid>`, without the range).
fn parse(raw: &str) -> Result<(Uuid, Option<Span>), StateError> {
    let mut parts = raw.split('|');
    let id = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| corrupt(raw))?;
    let instant = |p: Option<&str>| {
        p.and_then(|p| p.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis)
    };
    match (parts.next(), parts.next()) {
        (None, None) => Ok((id, None)),
        (start, end) => match (instant(start), instant(end)) {
            (Some(start), Some(end)) => Ok((id, Some((start, end)))),
            _ => Err(corrupt(raw)),
        },
    }
}

#[async_trait]
impl HoldMirror for RedisHoldMirror {
    async fn put(&self, hold: &MirroredHold) -> Result<(), StateError> {
        if hold.expires_at <= Utc::now() {
            return self.remove(hold.booking_id).await;
        }
        let range = slot(hold.start, hold.end);
        let expires = hold.expires_at.timestamp_millis();
        self.redis
            .query::<()>(
                redis::cmd("SET")
                    .arg(self.hold_key(hold.booking_id))
                    .arg(format!("{}|{range}", hold.facility_id))
                    .arg("PXAT")
                    .arg(expires),
            )
            .await?;
        let mut add = ADD.prepare_invoke();
        add.key(self.facility_key(hold.facility_id))
            .arg(format!("{}|{range}", hold.booking_id))
            .arg(expires);
        self.redis.script::<i64>(&add).await?;
        Ok(())
    }

    async fn remove(&self, booking_id: Uuid) -> Result<(), StateError> {
        let stored: Option<String> = self
            .redis
            .query(redis::cmd("GETDEL").arg(self.hold_key(booking_id)))
            .await?;
        if let Some(raw) = stored
            && let (facility_id, Some((start, end))) = parse(&raw)?
        {
            self.redis
                .query::<i64>(
                    redis::cmd("ZREM")
                        .arg(self.facility_key(facility_id))
                        .arg(format!("{booking_id}|{}", slot(start, end))),
                )
                .await?;
        }
        Ok(())
    }

    async fn get(&self, booking_id: Uuid) -> Result<Option<Uuid>, StateError> {
        let stored: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(self.hold_key(booking_id)))
            .await?;
        stored.map(|raw| parse(&raw).map(|(id, _)| id)).transpose()
    }

    async fn on_facility(&self, facility_id: Uuid) -> Result<Vec<MirroredHold>, StateError> {
        let now = Utc::now().timestamp_millis();
        let members: Vec<(String, i64)> = self
            .redis
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.facility_key(facility_id))
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .arg("BYSCORE")
                    .arg("WITHSCORES"),
            )
            .await?;
        let mut live = Vec::with_capacity(members.len());
        for (member, expires) in members {
            let (booking_id, range) = parse(&member)?;
            let ((start, end), expires_at) = range
                .zip(DateTime::<Utc>::from_timestamp_millis(expires))
                .ok_or_else(|| corrupt(&member))?;
            live.push(MirroredHold {
                booking_id,
                facility_id,
                start,
                end,
                expires_at,
            });
        }
        live.sort_by_key(|h| (h.start, h.booking_id));
        Ok(live)
    }
}
