//! Sessions in Redis.
//!
//! Keys (under the deployment prefix):
//! - `session:<token hash>`: a hash with the record; its Redis TTL is the idle deadline (capped by the
//!   absolute one), so an idle session disappears by itself.
//! - `user-sessions:<user id>`: a hash from session id to token hash, to list and revoke a user's
//!   sessions.
//!
//! The two keys may live on different cluster nodes, so no operation spans both atomically. The
//! ordering makes that safe: a login writes the session and then indexes it; logout-all first takes
//! the whole index away in one step and then deletes what it listed. A login racing a logout-all
//! therefore ends up either deleted or indexed (revocable later), never alive and unlisted.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone as _, Utc};
use redis::Script;
use std::sync::LazyLock;
use uuid::Uuid;

use super::{NewSession, SessionRecord, SessionStore, SessionToken, TokenHash};
use crate::{RedisConn, StateError, redis_conn::script};

/// The fields of a session hash, in the order scripts return them.
const FIELDS: [&str; 8] = [
    "id", "user_id", "role", "ua", "created", "seen", "idle", "abs",
];

/// Writes a new session and sets its expiry. KEYS: session. ARGV: the fields' values in `FIELDS` order.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        redis.call('HSET', KEYS[1], 'id', ARGV[1], 'user_id', ARGV[2], 'role', ARGV[3], 'ua', ARGV[4],
            'created', ARGV[5], 'seen', ARGV[6], 'idle', ARGV[7], 'abs', ARGV[8])
        redis.call('PEXPIREAT', KEYS[1], ARGV[7])
        return 1
        ",
    )
});

/// Adds a session to a user's index and keeps the index alive at least as long as the session.
/// KEYS: index. ARGV: session id, token hash, absolute lifetime in ms.
static INDEX: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
        end
        return 1
        ",
    )
});

/// Looks a session up and marks it used, in one round trip. KEYS: session. ARGV: now (ms), idle
/// timeout (ms). Returns the fields in `FIELDS` order, or nil.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local f = redis.call('HMGET', KEYS[1], 'id', 'user_id', 'role', 'ua', 'created', 'abs')
        if not f[1] or not f[6] then return false end
        local now = tonumber(ARGV[1])
        local abs = tonumber(f[6])
        if abs <= now then
            redis.call('DEL', KEYS[1])
            return false
        end
        local idle = string.format('%d', math.min(now + tonumber(ARGV[2]), abs))
        redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'idle', idle)
        redis.call('PEXPIREAT', KEYS[1], idle)
        return {f[1], f[2], f[3], f[4] or '', f[5], ARGV[1], idle, f[6]}
        ",
    )
});

/// Deletes a session, returning its owner and id. KEYS: session.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local f = redis.call('HMGET', KEYS[1], 'user_id', 'id')
        if not f[1] then return false end
        redis.call('DEL', KEYS[1])
        return {f[1], f[2]}
        ",
    )
});

/// Removes a user's whole index in one step and returns it. KEYS: index.
static TAKE_INDEX: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local all = redis.call('HVALS', KEYS[1])
        redis.call('DEL', KEYS[1])
        return all
        ",
    )
});

/// Sessions in Redis; see the module docs for the key layout.
#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    redis: RedisConn,
}

impl RedisSessionStore {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn session_key(&self, token: &TokenHash) -> String {
        self.redis.key(format_args!("session:{}", token.as_str()))
    }

    fn index_key(&self, user_id: Uuid) -> String {
        self.redis.key(format_args!("user-sessions:{user_id}"))
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Builds a record from the fields in `FIELDS` order.
fn parse(token: &TokenHash, f: &[Option<String>]) -> Result<Option<SessionRecord>, StateError> {
    let corrupt = |what: &str| StateError::Corrupt(format!("session field {what}"));
    let get = |i: usize| f.get(i).cloned().flatten();
    let Some(id) = get(0) else { return Ok(None) };
    let time = |i: usize| -> Result<DateTime<Utc>, StateError> {
        get(i)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(|| corrupt(FIELDS[i]))
    };
    Ok(Some(SessionRecord {
        id: id.parse().map_err(|_| corrupt("id"))?,
        token_hash: token.clone(),
        user_id: get(1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("user_id"))?,
        role: get(2)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("role"))?,
        user_agent: get(3).filter(|ua| !ua.is_empty()),
        created_at: time(4)?,
        last_seen_at: time(5)?,
        idle_expires_at: time(6)?,
        absolute_expires_at: time(7)?,
    }))
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(
        &self,
        token: &SessionToken,
        session: NewSession,
    ) -> Result<SessionRecord, StateError> {
        let absolute_timeout = session.absolute_timeout;
        let record = SessionRecord::start(token, session);
        let session_key = self.session_key(&record.token_hash);
        self.redis
            .script::<i64>(
                CREATE
                    .key(&session_key)
                    .arg(record.id.to_string())
                    .arg(record.user_id.to_string())
                    .arg(record.role.as_str())
                    .arg(record.user_agent.as_deref().unwrap_or(""))
                    .arg(millis(record.created_at))
                    .arg(millis(record.last_seen_at))
                    .arg(millis(record.idle_expires_at))
                    .arg(millis(record.absolute_expires_at)),
            )
            .await?;
        self.redis
            .script::<i64>(
                INDEX
                    .key(self.index_key(record.user_id))
                    .arg(record.id.to_string())
                    .arg(record.token_hash.as_str())
                    .arg(duration_ms(absolute_timeout)),
            )
            .await?;
        Ok(record)
    }

    async fn touch(
        &self,
        token: &TokenHash,
        idle_timeout: Duration,
    ) -> Result<Option<SessionRecord>, StateError> {
        let fields: Option<Vec<Option<String>>> = self
            .redis
            .script(
                TOUCH
                    .key(self.session_key(token))
                    .arg(millis(Utc::now()))
                    .arg(duration_ms(idle_timeout)),
            )
            .await?;
        match fields {
            Some(fields) => parse(token, &fields),
            None => Ok(None),
        }
    }

    async fn list_for_user(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StateError> {
        let index_key = self.index_key(user_id);
        let entries: Vec<(String, String)> = self
            .redis
            .query(redis::cmd("HGETALL").arg(&index_key))
            .await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let reads = entries
            .iter()
            .map(|(_, token)| {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(self.session_key(&TokenHash(token.clone())))
                    .arg(&FIELDS[..]);
                cmd
            })
            .collect();
        let rows: Vec<Vec<Option<String>>> = self.redis.batch(reads).await?;
        let now = Utc::now();
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for ((session_id, token), fields) in entries.into_iter().zip(rows) {
            match parse(&TokenHash(token), &fields)? {
                Some(record)
                    if record.idle_expires_at > now && record.absolute_expires_at > now =>
                {
                    live.push(record);
                }
                _ => dead.push(session_id),
            }
        }
        if !dead.is_empty() {
            self.redis
                .query::<i64>(redis::cmd("HDEL").arg(&index_key).arg(dead))
                .await?;
        }
        live.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(live)
    }

    async fn revoke(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StateError> {
        let index_key = self.index_key(user_id);
        let token: Option<String> = self
            .redis
            .query(
                redis::cmd("HGET")
                    .arg(&index_key)
                    .arg(session_id.to_string()),
            )
            .await?;
        let Some(token) = token else { return Ok(false) };
        let deleted: i64 = self
            .redis
            .query(redis::cmd("DEL").arg(self.session_key(&TokenHash(token))))
            .await?;
        self.redis
            .query::<i64>(
                redis::cmd("HDEL")
                    .arg(&index_key)
                    .arg(session_id.to_string()),
            )
            .await?;
        Ok(deleted == 1)
    }

    async fn revoke_token(&self, token: &TokenHash) -> Result<bool, StateError> {
        let owner: Option<(String, String)> = self
            .redis
            .script(&TAKE.key(self.session_key(token)))
            .await?;
        let Some((user_id, session_id)) = owner else {
            return Ok(false);
        };
        if let Ok(user_id) = user_id.parse::<Uuid>() {
            self.redis
                .query::<i64>(
                    redis::cmd("HDEL")
                        .arg(self.index_key(user_id))
                        .arg(session_id),
                )
                .await?;
        }
        Ok(true)
    }

    async fn revoke_all(&self, user_id: Uuid) -> Result<u64, StateError> {
        let tokens: Vec<String> = self
            .redis
            .script(&TAKE_INDEX.key(self.index_key(user_id)))
            .await?;
        if tokens.is_empty() {
            return Ok(0);
        }
        // One DEL per key: in a cluster the keys live in different slots.
        let deletes = tokens
            .into_iter()
            .map(|token| {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(self.session_key(&TokenHash(token)));
                cmd
            })
            .collect();
        let deleted: Vec<u64> = self.redis.batch(deletes).await?;
        Ok(deleted.into_iter().sum())
    }
}
