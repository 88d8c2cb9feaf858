//! The queue in Redis: every state change is one Lua script, so it is atomic, and every key shares
//! the hash tag `{jobs}`, so they all live in one slot and the scripts run unchanged on Redis
//! Cluster.
//!
//! # Keys
//!
//! Under the deployment prefix `P` ([`RedisConn::key`]), with `Q = P{jobs}:`:
//!
//! | key              | type   | contents                                                          |
//! |------------------|--------|-------------------------------------------------------------------|
//! | `Q job:<id>`     | hash   | `kind`, `payload` (JSON text), `attempts`, `max` (0 = pool default), `unique` (empty = none), `created` and, once failed, `error` and `failed` (ms) |
//! | `Q ready`        | list   | ids visible now, oldest at the head                               |
//! | `Q scheduled`    | zset   | ids by run-at (ms): first runs in the future, and retries         |
//! | `Q inflight`     | zset   | reserved ids by lease deadline (ms)                               |
//! | `Q dead`         | zset   | dead-lettered ids by when they died (ms); their hashes stay       |
//! | `Q unique`       | hash   | unique key → id of the live job holding it                        |
//! | `Q stats`        | hash   | `processed`, `failed`: cumulative counters                        |
//! | `Q workers`      | hash   | pool id → `concurrency busy seen_ms expires_ms`                   |
//! | `Q periodic`     | hash   | schedule (job kind) → last tick claimed                           |
//!
//! A job is in exactly one of `ready`, `scheduled`, `inflight` and `dead`, or in none once it
//! completed (its hash is deleted then). Every script lists the eight fixed keys in `KEYS` (so a
//! cluster client routes it to the slot's node) and builds job-hash names from the `Q job:` prefix
//! passed as `ARGV[1]`: those keys are not declared, which Redis allows as long as they hash to the
//! same slot, which the shared `{jobs}` tag guarantees. (A key prefix must therefore not contain a
//! brace pair of its own that is empty, `{}`.)
//!
//! Reserve pops a batch with `LPOP key count`, so Redis 6.2 or later is required.
//!
//! Times come from `TIME` inside the scripts, in milliseconds: rounded down when judging what is
//! due or expired, rounded up when computing a run-at from a delay, so that a delayed job never
//! becomes visible early. Numbers going into commands are formatted with `%d`, as Lua's default
//! conversion would round large ones.
//!
//! # Costs
//!
//! Per job, enqueue is one `HSET` plus its share of one `RPUSH`; reserve is an `HMGET`, an
//! `HINCRBY` and its share of one `ZADD`; complete is an `HMGET`, a `ZREM` and a `DEL`. The pool
//! sends each of these for up to hundreds of jobs in one script call.

use std::{sync::LazyLock, time::Duration};

use ::redis::Script;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clubpulse_state::RedisConn;

use super::{
    DeadJob, DeadSelector, FailedAttempt, JobBackend, Lease, MAX_BATCH, NewJob, PeriodicTick,
    QueueStats, ReservedJob, WorkerBeat, WorkerStatus, millis_ceil,
};
use crate::{Enqueued, JobError, JobId, RunAt};

/// The eight keys in the order every script expects them.
const KEY_NAMES: [&str; 8] = [
    "ready",
    "scheduled",
    "inflight",
    "dead",
    "unique",
    "stats",
    "workers",
    "periodic",
];

/// Most ids a dead-letter retry or purge handles per script call, so that no call blocks Redis
/// for long.
const DEAD_CHUNK: usize = 1000;

/// Most due or expired jobs one reserve promotes or reclaims (the rest wait for the next call).
const HOUSEKEEPING_LIMIT: usize = 1000;

/// Shared prelude: key names, the server clock in ms, and helpers.
const PRELUDE: &str = r"
local ready, scheduled, inflight, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local uniq, stats, workers, periodic = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local jobp = ARGV[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Run-at times are counted from now rounded up, so that a delayed job never shows early.
local now_up = tonumber(clock[1]) * 1000 + math.ceil(tonumber(clock[2]) / 1000)
local function fmt(n) return string.format('%d', n) end
-- Frees a unique key, but only if this job is the one holding it.
local function release_key(id, key)
  if key and key ~= '' and redis.call('HGET', uniq, key) == id then
    redis.call('HDEL', uniq, key)
  end
end
-- Moves a job (already out of ready/scheduled/inflight) to the dead-letter queue.
local function bury(id, k, err)
  redis.call('HSET', k, 'error', err, 'failed', fmt(now))
  redis.call('ZADD', dead, fmt(now), id)
  release_key(id, redis.call('HGET', k, 'unique'))
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// ARGV[2..]: per job `id, kind, payload, unique ('' = none), max (0 = default), at_ms (0 = none),
/// delay_ms`. Returns per job `{id, duplicate (0/1)}`, flattened.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local out = {}
local push = {}
for i = 2, #ARGV, 7 do
  local id, key = ARGV[i], ARGV[i + 3]
  local existing = false
  if key ~= '' then
    existing = redis.call('HGET', uniq, key)
    if not existing then redis.call('HSET', uniq, key, id) end
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = '1'
  else
    local at, delay = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
    local due = now
    if at > 0 then due = at elseif delay > 0 then due = now_up + delay end
    redis.call('HSET', jobp .. id, 'kind', ARGV[i + 1], 'payload', ARGV[i + 2], 'unique', key,
      'max', ARGV[i + 4], 'attempts', '0', 'created', fmt(now))
    if due > now then
      redis.call('ZADD', scheduled, fmt(due), id)
    else
      push[#push + 1] = id
    end
    out[#out + 1] = id
    out[#out + 1] = '0'
  end
end
if #push > 0 then redis.call('RPUSH', ready, unpack(push)) end
return out
",
    )
});

/// ARGV[2]: count, ARGV[3]: lease (ms), ARGV[4]: default max attempts, ARGV[5]: housekeeping
/// limit, ARGV[6]: error recorded on a reclaimed job. Returns per job `{id, kind, payload,
/// attempt, max, unique, created_ms}`, flattened.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local limit = tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', fmt(now), 'LIMIT', 0, limit)
if #due > 0 then
  redis.call('ZREM', scheduled, unpack(due))
  redis.call('RPUSH', ready, unpack(due))
end
local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', fmt(now), 'LIMIT', 0, limit)
local lost = 0
for _, id in ipairs(expired) do
  redis.call('ZREM', inflight, id)
  local k = jobp .. id
  local v = redis.call('HMGET', k, 'attempts', 'max')
  if v[1] then
    lost = lost + 1
    local max = tonumber(v[2])
    if not max or max <= 0 then max = tonumber(ARGV[4]) end
    if tonumber(v[1]) >= max then
      bury(id, k, ARGV[6])
    else
      redis.call('HSET', k, 'error', ARGV[6])
      redis.call('RPUSH', ready, id)
    end
  end
end
if lost > 0 then redis.call('HINCRBY', stats, 'failed', lost) end
local out = {}
local ids = redis.call('LPOP', ready, ARGV[2])
if ids then
  local deadline = fmt(now + tonumber(ARGV[3]))
  local leases = {}
  for _, id in ipairs(ids) do
    local k = jobp .. id
    local v = redis.call('HMGET', k, 'kind', 'payload', 'max', 'unique', 'created')
    if v[1] then
      local attempt = redis.call('HINCRBY', k, 'attempts', 1)
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
      out[#out + 1] = id
      out[#out + 1] = v[1]
      out[#out + 1] = v[2] or 'null'
      out[#out + 1] = fmt(attempt)
      out[#out + 1] = v[3] or '0'
      out[#out + 1] = v[4] or ''
      out[#out + 1] = v[5] or '0'
    end
  end
  if #leases > 0 then redis.call('ZADD', inflight, unpack(leases)) end
end
return out
",
    )
});

/// ARGV[2..]: per job `id, attempt`. Returns how many were still leased that way.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local n = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local k = jobp .. id
  local v = redis.call('HMGET', k, 'attempts', 'unique')
  if v[1] == ARGV[i + 1] and redis.call('ZREM', inflight, id) == 1 then
    release_key(id, v[2])
    redis.call('DEL', k)
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', stats, 'processed', n) end
return n
",
    )
});

/// ARGV[2..]: per job `id, attempt, error, delay_ms (-1 = dead-letter)`. Returns how many were
/// still leased that way.
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local n = 0
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  local k = jobp .. id
  if redis.call('HGET', k, 'attempts') == ARGV[i + 1] and redis.call('ZREM', inflight, id) == 1 then
    n = n + 1
    local delay = tonumber(ARGV[i + 3])
    if delay < 0 then
      bury(id, k, ARGV[i + 2])
    else
      redis.call('HSET', k, 'error', ARGV[i + 2])
      if delay == 0 then
        redis.call('RPUSH', ready, id)
      else
        redis.call('ZADD', scheduled, fmt(now_up + delay), id)
      end
    end
  end
end
if n > 0 then redis.call('HINCRBY', stats, 'failed', n) end
return n
",
    )
});

/// ARGV[2..]: per job `id, attempt`. Puts still-leased jobs back at the head of ready and gives
/// their attempt back. Returns how many.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local n = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local k = jobp .. id
  if redis.call('HGET', k, 'attempts') == ARGV[i + 1] and redis.call('ZREM', inflight, id) == 1 then
    redis.call('HINCRBY', k, 'attempts', -1)
    redis.call('LPUSH', ready, id)
    n = n + 1
  end
end
return n
",
    )
});

/// ARGV[2]: lease (ms); ARGV[3..]: per job `id, attempt`. Returns the ids whose lease was lost.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local deadline = fmt(now + tonumber(ARGV[2]))
local lost = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', jobp .. id, 'attempts') == ARGV[i + 1] and redis.call('ZSCORE', inflight, id) then
    redis.call('ZADD', inflight, deadline, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
",
    )
});

/// ARGV[2]: pool id, ARGV[3]: concurrency, ARGV[4]: busy, ARGV[5]: ttl (ms), ARGV[6]: '1' to
/// retire the pool instead. Also forgets every pool whose entry expired.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if ARGV[6] == '1' then
  redis.call('HDEL', workers, ARGV[2])
else
  redis.call('HSET', workers, ARGV[2],
    ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. fmt(now) .. ' ' .. fmt(now + tonumber(ARGV[5])))
end
local all = redis.call('HGETALL', workers)
for i = 1, #all, 2 do
  local expires = tonumber(string.match(all[i + 1], '(%d+)$'))
  if not expires or expires <= now then redis.call('HDEL', workers, all[i]) end
end
return 1
",
    )
});

/// Returns `{ready, scheduled, inflight, dead, processed, failed, now_ms, pool id, pool entry, …}`.
/// Scheduled jobs already due count as ready, as the next reserve will promote them.
static STATS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local due = redis.call('ZCOUNT', scheduled, '-inf', fmt(now))
local out = {
  fmt(redis.call('LLEN', ready) + due),
  fmt(redis.call('ZCARD', scheduled) - due),
  fmt(redis.call('ZCARD', inflight)),
  fmt(redis.call('ZCARD', dead)),
  redis.call('HGET', stats, 'processed') or '0',
  redis.call('HGET', stats, 'failed') or '0',
  fmt(now),
}
local all = redis.call('HGETALL', workers)
for i = 1, #all do out[#out + 1] = all[i] end
return out
",
    )
});

/// ARGV[2]: offset, ARGV[3]: limit. Returns per dead job `{id, kind, payload, attempts, max,
/// error, unique, created_ms, failed_ms}`, most recently dead first.
static DEAD_LIST: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local from = tonumber(ARGV[2])
local ids = redis.call('ZREVRANGE', dead, fmt(from), fmt(from + tonumber(ARGV[3]) - 1))
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('HMGET', jobp .. id, 'kind', 'payload', 'attempts', 'max', 'error', 'unique',
    'created', 'failed')
  out[#out + 1] = id
  out[#out + 1] = v[1] or ''
  out[#out + 1] = v[2] or 'null'
  out[#out + 1] = v[3] or '0'
  out[#out + 1] = v[4] or '0'
  out[#out + 1] = v[5] or ''
  out[#out + 1] = v[6] or ''
  out[#out + 1] = v[7] or '0'
  out[#out + 1] = v[8] or '0'
end
return out
",
    )
});

/// ARGV[2]: one id, or '' for a chunk of all; ARGV[3]: how many dead jobs to skip (kept dead by
/// an earlier chunk); ARGV[4]: chunk size. Returns `{retried, kept, examined}`.
static DEAD_RETRY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local ids
if ARGV[2] ~= '' then
  if redis.call('ZSCORE', dead, ARGV[2]) then ids = { ARGV[2] } else ids = {} end
else
  local from = tonumber(ARGV[3])
  ids = redis.call('ZRANGE', dead, fmt(from), fmt(from + tonumber(ARGV[4]) - 1))
end
local retried, kept = 0, 0
for _, id in ipairs(ids) do
  local k = jobp .. id
  local key = redis.call('HGET', k, 'unique')
  if not key then
    redis.call('ZREM', dead, id)
  elseif key ~= '' and redis.call('HSETNX', uniq, key, id) == 0 then
    kept = kept + 1
  else
    redis.call('ZREM', dead, id)
    redis.call('HSET', k, 'attempts', '0')
    redis.call('HDEL', k, 'failed')
    redis.call('RPUSH', ready, id)
    retried = retried + 1
  end
end
return { retried, kept, #ids }
",
    )
});

/// ARGV[2]: chunk size. Deletes the oldest dead jobs; returns how many.
static DEAD_PURGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local ids = redis.call('ZRANGE', dead, 0, tonumber(ARGV[2]) - 1)
for _, id in ipairs(ids) do redis.call('DEL', jobp .. id) end
if #ids > 0 then redis.call('ZREM', dead, unpack(ids)) end
return #ids
",
    )
});

/// ARGV[2]: period (ms), ARGV[3]: id, ARGV[4]: kind (names the schedule), ARGV[5]: payload,
/// ARGV[6]: max. Claims the current tick if no later-or-equal one was, and enqueues the job with
/// unique key `kind:tick`. Returns `{id or '', duplicate (0/1), tick, next_in_ms}`.
static PERIODIC: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local every = tonumber(ARGV[2])
local tick = math.floor(now / every)
local next_in = fmt((tick + 1) * every - now)
local last = tonumber(redis.call('HGET', periodic, ARGV[4]) or '-1')
if tick <= last then return { '', '0', fmt(tick), next_in } end
redis.call('HSET', periodic, ARGV[4], fmt(tick))
local id = ARGV[3]
local key = ARGV[4] .. ':' .. fmt(tick)
local existing = redis.call('HGET', uniq, key)
if existing then return { existing, '1', fmt(tick), next_in } end
redis.call('HSET', uniq, key, id)
redis.call('HSET', jobp .. id, 'kind', ARGV[4], 'payload', ARGV[5], 'unique', key,
  'max', ARGV[6], 'attempts', '0', 'created', fmt(now))
redis.call('RPUSH', ready, id)
return { id, '0', fmt(tick), next_in }
",
    )
});

/// The error recorded on a job whose lease expired.
pub(crate) const LEASE_EXPIRED: &str =
    "lease expired: its worker stopped renewing it (killed, stuck, or cut off from the store)";

/// The queue in Redis; see the module docs for the key layout.
#[derive(Debug, Clone)]
pub struct RedisBackend {
    redis: RedisConn,
    keys: [String; 8],
    job_prefix: String,
}

impl RedisBackend {
    /// The queue on `redis`, under its key prefix.
    pub fn new(redis: RedisConn) -> Self {
        let keys = KEY_NAMES.map(|name| redis.key(format_args!("{{jobs}}:{name}")));
        let job_prefix = redis.key("{jobs}:job:");
        Self {
            redis,
            keys,
            job_prefix,
        }
    }

    /// Runs `script` on the queue's keys with `args` after the job-hash prefix.
    async fn run<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        args: impl FnOnce(&mut ::redis::ScriptInvocation<'_>),
    ) -> Result<T, JobError> {
        let mut invocation = script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        invocation.arg(&self.job_prefix);
        args(&mut invocation);
        Ok(self.redis.script(&invocation).await?)
    }

    async fn leases<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        extra: Option<i64>,
        leases: &[Lease],
    ) -> Result<T, JobError> {
        self.run(script, |inv| {
            if let Some(extra) = extra {
                inv.arg(extra);
            }
            for lease in leases {
                inv.arg(lease.id.to_string()).arg(lease.attempt);
            }
        })
        .await
    }
}

fn corrupt(what: impl std::fmt::Display) -> JobError {
    JobError::Corrupt(what.to_string())
}

fn parse<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, JobError> {
    raw.parse()
        .map_err(|_| corrupt(format_args!("{what} {raw:?}")))
}

fn millis_to_time(ms: i64) -> Result<DateTime<Utc>, JobError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt(format_args!("time {ms} ms")))
}

fn optional(raw: &str) -> Option<String> {
    (!raw.is_empty()).then(|| raw.to_owned())
}

fn max_attempts(raw: &str) -> Result<Option<u32>, JobError> {
    parse::<u32>(raw, "max attempts").map(|max| (max > 0).then_some(max))
}

/// Splits a flat reply into records of `width` fields.
fn records(
    reply: &[String],
    width: usize,
) -> Result<std::slice::ChunksExact<'_, String>, JobError> {
    if !reply.len().is_multiple_of(width) {
        return Err(corrupt(format_args!(
            "a reply of {} fields, expected a multiple of {width}",
            reply.len()
        )));
    }
    Ok(reply.chunks_exact(width))
}

#[async_trait]
impl JobBackend for RedisBackend {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, JobError> {
        let mut answers = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(MAX_BATCH) {
            let reply: Vec<String> = self
                .run(&ENQUEUE, |inv| {
                    for job in chunk {
                        let (at, delay) = match job.run_at {
                            RunAt::Now => (0, 0),
                            RunAt::At(at) => (at.timestamp_millis().max(1), 0),
                            RunAt::In(delay) => (0, millis_ceil(delay)),
                        };
                        inv.arg(job.id.to_string())
                            .arg(&job.kind)
                            .arg(&job.payload)
                            .arg(job.unique_key.as_deref().unwrap_or(""))
                            .arg(job.max_attempts.unwrap_or(0))
                            .arg(at)
                            .arg(delay);
                    }
                })
                .await?;
            for record in records(&reply, 2)? {
                answers.push(Enqueued {
                    id: parse(&record[0], "job id")?,
                    duplicate: record[1] == "1",
                });
            }
        }
        Ok(answers)
    }

    async fn reserve(
        &self,
        count: usize,
        lease: Duration,
        default_max_attempts: u32,
    ) -> Result<Vec<ReservedJob>, JobError> {
        let count = count.clamp(1, 2 * MAX_BATCH);
        let reply: Vec<String> = self
            .run(&RESERVE, |inv| {
                inv.arg(count)
                    .arg(millis_ceil(lease))
                    .arg(default_max_attempts.max(1))
                    .arg(HOUSEKEEPING_LIMIT)
                    .arg(LEASE_EXPIRED);
            })
            .await?;
        records(&reply, 7)?
            .map(|r| {
                Ok(ReservedJob {
                    id: parse(&r[0], "job id")?,
                    kind: r[1].clone(),
                    payload: r[2].clone(),
                    attempt: parse(&r[3], "attempt")?,
                    max_attempts: max_attempts(&r[4])?,
                    unique_key: optional(&r[5]),
                    enqueued_at: millis_to_time(parse(&r[6], "creation time")?)?,
                })
            })
            .collect()
    }

    async fn complete(&self, leases: &[Lease]) -> Result<u64, JobError> {
        let mut done = 0;
        for chunk in leases.chunks(MAX_BATCH) {
            done += self.leases::<u64>(&COMPLETE, None, chunk).await?;
        }
        Ok(done)
    }

    async fn fail(&self, attempts: &[FailedAttempt]) -> Result<u64, JobError> {
        let mut failed = 0;
        for chunk in attempts.chunks(MAX_BATCH) {
            failed += self
                .run::<u64>(&FAIL, |inv| {
                    for attempt in chunk {
                        inv.arg(attempt.lease.id.to_string())
                            .arg(attempt.lease.attempt)
                            .arg(&attempt.error)
                            .arg(attempt.retry_in.map_or(-1, millis_ceil));
                    }
                })
                .await?;
        }
        Ok(failed)
    }

    async fn release(&self, leases: &[Lease]) -> Result<u64, JobError> {
        let mut released = 0;
        for chunk in leases.chunks(MAX_BATCH) {
            released += self.leases::<u64>(&RELEASE, None, chunk).await?;
        }
        Ok(released)
    }

    async fn extend(&self, leases: &[Lease], lease: Duration) -> Result<Vec<JobId>, JobError> {
        let mut lost = Vec::new();
        for chunk in leases.chunks(MAX_BATCH) {
            let ids: Vec<String> = self
                .leases(&EXTEND, Some(millis_ceil(lease)), chunk)
                .await?;
            for id in ids {
                lost.push(parse(&id, "job id")?);
            }
        }
        Ok(lost)
    }

    async fn heartbeat(&self, beat: &WorkerBeat) -> Result<(), JobError> {
        self.run::<i64>(&HEARTBEAT, |inv| {
            inv.arg(&beat.id)
                .arg(beat.concurrency)
                .arg(beat.busy)
                .arg(millis_ceil(beat.ttl))
                .arg("0");
        })
        .await?;
        Ok(())
    }

    async fn retire(&self, worker_id: &str) -> Result<(), JobError> {
        self.run::<i64>(&HEARTBEAT, |inv| {
            inv.arg(worker_id).arg(0).arg(0).arg(0).arg("1");
        })
        .await?;
        Ok(())
    }

    async fn enqueue_periodic(
        &self,
        every: Duration,
        job: NewJob,
    ) -> Result<PeriodicTick, JobError> {
        let reply: Vec<String> = self
            .run(&PERIODIC, |inv| {
                inv.arg(millis_ceil(every).max(1))
                    .arg(job.id.to_string())
                    .arg(&job.kind)
                    .arg(&job.payload)
                    .arg(job.max_attempts.unwrap_or(0));
            })
            .await?;
        let [id, duplicate, tick, next_in] = reply.as_slice() else {
            return Err(corrupt(format_args!(
                "periodic enqueue returned {} values",
                reply.len()
            )));
        };
        let enqueued = if id.is_empty() {
            None
        } else {
            Some(Enqueued {
                id: parse(id, "job id")?,
                duplicate: duplicate == "1",
            })
        };
        Ok(PeriodicTick {
            tick: parse(tick, "tick")?,
            enqueued,
            next_in: Duration::from_millis(parse(next_in, "time to the next tick")?),
        })
    }

    async fn stats(&self) -> Result<QueueStats, JobError> {
        let reply: Vec<String> = self.run(&STATS, |_| {}).await?;
        let Some((head, pools)) = reply.split_at_checked(7) else {
            return Err(corrupt("a stats reply of fewer than 7 fields"));
        };
        let count = |i: usize, what: &str| parse::<u64>(&head[i], what);
        let now: i64 = parse(&head[6], "server time")?;
        let mut workers = Vec::new();
        for entry in records(pools, 2)? {
            let fields: Vec<&str> = entry[1].split(' ').collect();
            let &[concurrency, busy, seen, expires] = fields.as_slice() else {
                return Err(corrupt(format_args!("worker entry {:?}", entry[1])));
            };
            if parse::<i64>(expires, "worker expiry")? <= now {
                continue;
            }
            workers.push(WorkerStatus {
                id: entry[0].clone(),
                concurrency: parse(concurrency, "worker concurrency")?,
                busy: parse(busy, "worker busy count")?,
                seen_at: millis_to_time(parse(seen, "worker heartbeat time")?)?,
            });
        }
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(QueueStats {
            ready: count(0, "ready count")?,
            scheduled: count(1, "scheduled count")?,
            in_flight: count(2, "in-flight count")?,
            dead: count(3, "dead count")?,
            processed: count(4, "processed counter")?,
            failed: count(5, "failed counter")?,
            busy: workers.iter().map(|w| u64::from(w.busy)).sum(),
            workers,
        })
    }

    async fn dead_list(&self, limit: usize, offset: usize) -> Result<Vec<DeadJob>, JobError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reply: Vec<String> = self
            .run(&DEAD_LIST, |inv| {
                inv.arg(offset).arg(limit);
            })
            .await?;
        records(&reply, 9)?
            .map(|r| {
                Ok(DeadJob {
                    id: parse(&r[0], "job id")?,
                    kind: r[1].clone(),
                    payload: serde_json::from_str(&r[2])
                        .map_err(|e| corrupt(format_args!("dead job payload: {e}")))?,
                    attempts: parse(&r[3], "attempts")?,
                    max_attempts: max_attempts(&r[4])?,
                    last_error: optional(&r[5]),
                    unique_key: optional(&r[6]),
                    enqueued_at: millis_to_time(parse(&r[7], "creation time")?)?,
                    failed_at: millis_to_time(parse(&r[8], "failure time")?)?,
                })
            })
            .collect()
    }

    async fn dead_retry(&self, which: DeadSelector) -> Result<u64, JobError> {
        let one = match which {
            DeadSelector::All => String::new(),
            DeadSelector::Id(id) => id.to_string(),
        };
        let (mut retried, mut skip) = (0, 0);
        loop {
            let reply: Vec<u64> = self
                .run(&DEAD_RETRY, |inv| {
                    inv.arg(&one).arg(skip).arg(DEAD_CHUNK);
                })
                .await?;
            let &[moved, kept, examined] = reply.as_slice() else {
                return Err(corrupt("a dead-retry reply of the wrong length"));
            };
            retried += moved;
            skip += kept;
            if !one.is_empty() || examined < DEAD_CHUNK as u64 {
                return Ok(retried);
            }
        }
    }

    async fn dead_purge(&self) -> Result<u64, JobError> {
        let mut purged = 0;
        loop {
            let n: u64 = self
                .run(&DEAD_PURGE, |inv| {
                    inv.arg(DEAD_CHUNK);
                })
                .await?;
            purged += n;
            if n < DEAD_CHUNK as u64 {
                return Ok(purged);
            }
        }
    }
}
