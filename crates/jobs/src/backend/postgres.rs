//! The queue in PostgreSQL: the durable fallback for a deployment without Redis. A job accepted by
//! `push` is committed, so it survives a crash of the process or of the database server.
//!
//! The schema is `crates/storage/migrations/20261123000005_jobs.sql`: one `jobs` row per live or
//! dead job (completed jobs are deleted), `job_counters` for the processed/failed counters,
//! `job_workers` for pool heartbeats and `job_periodic` for the last tick of each schedule.
//!
//! - **Reserve** is one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)`: concurrent
//!   workers skip each other's rows instead of queueing on their locks, and each job goes to one of
//!   them. A run-at in the future is simply a row not yet due; expired leases are reclaimed by a
//!   statement of the same shape first.
//! - **Unique keys** are a partial unique index over live rows (`state <> 'dead'`): an insert that
//!   conflicts does nothing (`ON CONFLICT … DO NOTHING`) and the live row's id is read back.
//!   Completing (deleting) or dead-lettering a job frees its key with no extra step.
//! - **Batches** are passed as arrays and expanded with `unnest`, so a batch is one statement.
//! - Every time is the server's `now()`, as with Redis's `TIME`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

use super::{
    DeadJob, DeadSelector, FailedAttempt, JobBackend, Lease, MAX_BATCH, NewJob, PeriodicTick,
    QueueStats, ReservedJob, WorkerBeat, WorkerStatus, millis_ceil, redis::LEASE_EXPIRED,
};
use crate::{Enqueued, JobError, JobId, RunAt};

/// The partial unique index on live jobs' unique keys.
const UNIQUE_INDEX: &str = "jobs_unique_key_live";

/// Most expired leases one reserve reclaims.
const RECLAIM_LIMIT: i64 = 1000;

/// The queue in PostgreSQL; see the module docs.
#[derive(Debug, Clone)]
pub struct PgBackend {
    pool: PgPool,
}

impl PgBackend {
    /// The queue in the database behind `pool` (migrated with the storage crate's migrations).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn lease_arrays(leases: &[Lease]) -> (Vec<Uuid>, Vec<i32>) {
    leases.iter().map(|l| (l.id.0, to_i32(l.attempt))).unzip()
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.constraint() == Some(UNIQUE_INDEX))
}

/// Adds `jobs` (at most [`MAX_BATCH`]) that hold no unique key taken by a live job; returns the
/// ids inserted.
async fn insert(pool: &PgPool, jobs: &[&NewJob]) -> Result<Vec<Uuid>, JobError> {
    let mut ids = Vec::with_capacity(jobs.len());
    let mut kinds = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    let mut ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(jobs.len());
    let mut delays = Vec::with_capacity(jobs.len());
    let mut maxes: Vec<Option<i32>> = Vec::with_capacity(jobs.len());
    let mut keys: Vec<Option<String>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        ids.push(job.id.0);
        kinds.push(job.kind.clone());
        payloads.push(job.payload.clone());
        let (at, delay) = match job.run_at {
            RunAt::Now => (None, 0),
            RunAt::At(at) => (Some(at), 0),
            RunAt::In(delay) => (None, millis_ceil(delay)),
        };
        ats.push(at);
        delays.push(delay);
        maxes.push(job.max_attempts.map(to_i32));
        keys.push(job.unique_key.clone());
    }
    let rows = sqlx::query(
        "INSERT INTO jobs (id, kind, payload, run_at, max_attempts, unique_key)
         SELECT n.id, n.kind, n.payload::jsonb,
                coalesce(n.at, now() + n.delay_ms::float8 * interval '1 millisecond'),
                n.max_attempts, n.unique_key
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::int8[],
                     $6::int4[], $7::text[]) WITH ORDINALITY
              AS n(id, kind, payload, at, delay_ms, max_attempts, unique_key, position)
         ORDER BY n.position
         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state <> 'dead' DO NOTHING
         RETURNING id",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&ats)
    .bind(&delays)
    .bind(&maxes)
    .bind(&keys)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid, _>("id").map_err(JobError::from))
        .collect()
}

fn reserved(row: &PgRow) -> Result<ReservedJob, JobError> {
    Ok(ReservedJob {
        id: JobId(row.try_get("id")?),
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        attempt: to_u32(row.try_get("attempts")?),
        max_attempts: row.try_get::<Option<i32>, _>("max_attempts")?.map(to_u32),
        unique_key: row.try_get("unique_key")?,
        enqueued_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl JobBackend for PgBackend {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, JobError> {
        let mut answers = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(MAX_BATCH) {
            let mut pending: Vec<&NewJob> = chunk.iter().collect();
            let mut found: std::collections::HashMap<JobId, Enqueued> =
                std::collections::HashMap::new();
            // A job not inserted lost its unique key to a live job, whose id is read back. That
            // job may finish between the two statements, freeing the key: then insert again.
            for _ in 0..5 {
                if pending.is_empty() {
                    break;
                }
                let inserted = insert(&self.pool, &pending).await?;
                let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
                let mut lost_keys = Vec::new();
                for job in &pending {
                    if inserted.contains(&job.id.0) {
                        found.insert(
                            job.id,
                            Enqueued {
                                id: job.id,
                                duplicate: false,
                            },
                        );
                    } else if let Some(key) = &job.unique_key {
                        lost_keys.push(key.clone());
                    }
                }
                let holders: std::collections::HashMap<String, Uuid> = if lost_keys.is_empty() {
                    std::collections::HashMap::new()
                } else {
                    sqlx::query(
                        "SELECT unique_key, id FROM jobs
                         WHERE unique_key = ANY($1) AND state <> 'dead'",
                    )
                    .bind(&lost_keys)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| Ok((row.try_get("unique_key")?, row.try_get("id")?)))
                    .collect::<Result<_, sqlx::Error>>()?
                };
                pending.retain(|job| {
                    if found.contains_key(&job.id) {
                        return false;
                    }
                    let holder = job.unique_key.as_ref().and_then(|key| holders.get(key));
                    match holder {
                        Some(&holder) => {
                            found.insert(
                                job.id,
                                Enqueued {
                                    id: JobId(holder),
                                    duplicate: true,
                                },
                            );
                            false
                        }
                        None => true,
                    }
                });
            }
            if !pending.is_empty() {
                return Err(JobError::Corrupt(format!(
                    "{} unique jobs were neither inserted nor found live",
                    pending.len()
                )));
            }
            for job in chunk {
                let answer = found
                    .get(&job.id)
                    .copied()
                    .ok_or_else(|| JobError::Corrupt(format!("no answer for job {}", job.id)))?;
                answers.push(answer);
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
        sqlx::query(
            "WITH expired AS (
                 SELECT id FROM jobs
                 WHERE state = 'running' AND lease_until <= now()
                 ORDER BY lease_until
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             ), moved AS (
                 UPDATE jobs j SET
                     state = CASE WHEN j.attempts >= coalesce(j.max_attempts, $2) THEN 'dead'
                                  ELSE 'queued' END,
                     dead_at = CASE WHEN j.attempts >= coalesce(j.max_attempts, $2) THEN now() END,
                     lease_until = NULL,
                     run_at = now(),
                     last_error = $3
                 FROM expired WHERE j.id = expired.id
                 RETURNING 1
             )
             UPDATE job_counters SET value = value + (SELECT count(*) FROM moved)
             WHERE name = 'failed' AND EXISTS (SELECT 1 FROM moved)",
        )
        .bind(RECLAIM_LIMIT)
        .bind(to_i32(default_max_attempts.max(1)))
        .bind(LEASE_EXPIRED)
        .execute(&self.pool)
        .await?;
        let count = i64::try_from(count.clamp(1, 2 * MAX_BATCH)).unwrap_or(1);
        let rows = sqlx::query(
            "WITH picked AS (
                 SELECT id FROM jobs
                 WHERE state = 'queued' AND run_at <= now()
                 ORDER BY run_at, id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE jobs j SET
                 state = 'running',
                 attempts = j.attempts + 1,
                 lease_until = now() + $2::float8 * interval '1 millisecond'
             FROM picked WHERE j.id = picked.id
             RETURNING j.id, j.kind, j.payload::text AS payload, j.attempts, j.max_attempts,
                       j.unique_key, j.created_at",
        )
        .bind(count)
        .bind(millis_ceil(lease) as f64)
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = rows.iter().map(reserved).collect::<Result<Vec<_>, _>>()?;
        // RETURNING follows no order; hand jobs out oldest first, as Redis does.
        jobs.sort_by_key(|job| job.id);
        Ok(jobs)
    }

    async fn complete(&self, leases: &[Lease]) -> Result<u64, JobError> {
        let (ids, attempts) = lease_arrays(leases);
        let done: i64 = sqlx::query_scalar(
            "WITH done AS (
                 DELETE FROM jobs j
                 USING unnest($1::uuid[], $2::int4[]) AS c(id, attempt)
                 WHERE j.id = c.id AND j.attempts = c.attempt AND j.state = 'running'
                 RETURNING 1
             ), counted AS (
                 UPDATE job_counters SET value = value + (SELECT count(*) FROM done)
                 WHERE name = 'processed' AND EXISTS (SELECT 1 FROM done)
             )
             SELECT count(*) FROM done",
        )
        .bind(&ids)
        .bind(&attempts)
        .fetch_one(&self.pool)
        .await?;
        Ok(to_u64(done))
    }

    async fn fail(&self, failures: &[FailedAttempt]) -> Result<u64, JobError> {
        let ids: Vec<Uuid> = failures.iter().map(|f| f.lease.id.0).collect();
        let attempts: Vec<i32> = failures.iter().map(|f| to_i32(f.lease.attempt)).collect();
        let errors: Vec<String> = failures.iter().map(|f| f.error.clone()).collect();
        let delays: Vec<i64> = failures
            .iter()
            .map(|f| f.retry_in.map_or(-1, millis_ceil))
            .collect();
        let failed: i64 = sqlx::query_scalar(
            "WITH f AS (
                 SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::int8[])
                     AS f(id, attempt, error, delay_ms)
             ), moved AS (
                 UPDATE jobs j SET
                     state = CASE WHEN f.delay_ms < 0 THEN 'dead' ELSE 'queued' END,
                     dead_at = CASE WHEN f.delay_ms < 0 THEN now() END,
                     run_at = CASE WHEN f.delay_ms < 0 THEN j.run_at
                                   ELSE now() + f.delay_ms::float8 * interval '1 millisecond' END,
                     lease_until = NULL,
                     last_error = f.error
                 FROM f
                 WHERE j.id = f.id AND j.attempts = f.attempt AND j.state = 'running'
                 RETURNING 1
             ), counted AS (
                 UPDATE job_counters SET value = value + (SELECT count(*) FROM moved)
                 WHERE name = 'failed' AND EXISTS (SELECT 1 FROM moved)
             )
             SELECT count(*) FROM moved",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(&errors)
        .bind(&delays)
        .fetch_one(&self.pool)
        .await?;
        Ok(to_u64(failed))
    }

    async fn release(&self, leases: &[Lease]) -> Result<u64, JobError> {
        let (ids, attempts) = lease_arrays(leases);
        // A run-at a little in the past puts the jobs ahead of those queued meanwhile.
        let released = sqlx::query(
            "UPDATE jobs j SET
                 state = 'queued',
                 attempts = j.attempts - 1,
                 lease_until = NULL,
                 run_at = least(j.run_at, now())
             FROM unnest($1::uuid[], $2::int4[]) AS r(id, attempt)
             WHERE j.id = r.id AND j.attempts = r.attempt AND j.state = 'running'",
        )
        .bind(&ids)
        .bind(&attempts)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected())
    }

    async fn extend(&self, leases: &[Lease], lease: Duration) -> Result<Vec<JobId>, JobError> {
        let (ids, attempts) = lease_arrays(leases);
        let kept: std::collections::HashSet<Uuid> = sqlx::query_scalar(
            "UPDATE jobs j SET lease_until = now() + $3::float8 * interval '1 millisecond'
             FROM unnest($1::uuid[], $2::int4[]) AS e(id, attempt)
             WHERE j.id = e.id AND j.attempts = e.attempt AND j.state = 'running'
             RETURNING j.id",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(millis_ceil(lease) as f64)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        Ok(leases
            .iter()
            .filter(|l| !kept.contains(&l.id.0))
            .map(|l| l.id)
            .collect())
    }

    async fn heartbeat(&self, beat: &WorkerBeat) -> Result<(), JobError> {
        sqlx::query(
            "WITH beat AS (
                 INSERT INTO job_workers (id, concurrency, busy, seen_at, expires_at)
                 VALUES ($1, $2, $3, now(), now() + $4::float8 * interval '1 millisecond')
                 ON CONFLICT (id) DO UPDATE SET
                     concurrency = EXCLUDED.concurrency,
                     busy = EXCLUDED.busy,
                     seen_at = EXCLUDED.seen_at,
                     expires_at = EXCLUDED.expires_at
             )
             DELETE FROM job_workers WHERE expires_at <= now() AND id <> $1",
        )
        .bind(&beat.id)
        .bind(to_i32(beat.concurrency.max(1)))
        .bind(to_i32(beat.busy))
        .bind(millis_ceil(beat.ttl) as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn retire(&self, worker_id: &str) -> Result<(), JobError> {
        sqlx::query("DELETE FROM job_workers WHERE id = $1")
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn enqueue_periodic(
        &self,
        every: Duration,
        job: NewJob,
    ) -> Result<PeriodicTick, JobError> {
        let every = millis_ceil(every).max(1);
        let mut tx = self.pool.begin().await?;
        let now: i64 = sqlx::query_scalar("SELECT (extract(epoch FROM now()) * 1000)::int8")
            .fetch_one(&mut *tx)
            .await?;
        let tick = now.div_euclid(every);
        let next_in = Duration::from_millis(to_u64((tick + 1) * every - now));
        let tick_u64 = to_u64(tick);
        // Claims the tick only if no instance claimed it or a later one: the high-water mark is
        // what keeps a tick from running twice after its job completed and freed its unique key.
        let claimed = sqlx::query(
            "INSERT INTO job_periodic (name, last_tick) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET last_tick = EXCLUDED.last_tick
             WHERE job_periodic.last_tick < EXCLUDED.last_tick",
        )
        .bind(&job.kind)
        .bind(tick)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            tx.commit().await?;
            return Ok(PeriodicTick {
                tick: tick_u64,
                enqueued: None,
                next_in,
            });
        }
        let key = format!("{}:{tick}", job.kind);
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO jobs (id, kind, payload, run_at, max_attempts, unique_key)
             VALUES ($1, $2, $3::jsonb, now(), $4, $5)
             ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state <> 'dead' DO NOTHING
             RETURNING id",
        )
        .bind(job.id.0)
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.max_attempts.map(to_i32))
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let enqueued = match inserted {
            Some(id) => Enqueued {
                id: JobId(id),
                duplicate: false,
            },
            None => {
                let holder: Uuid = sqlx::query_scalar(
                    "SELECT id FROM jobs WHERE unique_key = $1 AND state <> 'dead'",
                )
                .bind(&key)
                .fetch_one(&mut *tx)
                .await?;
                Enqueued {
                    id: JobId(holder),
                    duplicate: true,
                }
            }
        };
        tx.commit().await?;
        Ok(PeriodicTick {
            tick: tick_u64,
            enqueued: Some(enqueued),
            next_in,
        })
    }

    async fn stats(&self) -> Result<QueueStats, JobError> {
        let depths = sqlx::query(
            "SELECT count(*) FILTER (WHERE state = 'queued' AND run_at <= now()) AS ready,
                    count(*) FILTER (WHERE state = 'queued' AND run_at > now()) AS scheduled,
                    count(*) FILTER (WHERE state = 'running') AS in_flight,
                    count(*) FILTER (WHERE state = 'dead') AS dead,
                    (SELECT value FROM job_counters WHERE name = 'processed') AS processed,
                    (SELECT value FROM job_counters WHERE name = 'failed') AS failed
             FROM jobs",
        )
        .fetch_one(&self.pool)
        .await?;
        let workers = sqlx::query(
            "SELECT id, concurrency, busy, seen_at FROM job_workers
             WHERE expires_at > now() ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(WorkerStatus {
                id: row.try_get("id")?,
                concurrency: to_u32(row.try_get("concurrency")?),
                busy: to_u32(row.try_get("busy")?),
                seen_at: row.try_get("seen_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let count = |name: &str| -> Result<u64, JobError> {
            Ok(to_u64(depths.try_get::<Option<i64>, _>(name)?.unwrap_or(0)))
        };
        Ok(QueueStats {
            ready: count("ready")?,
            scheduled: count("scheduled")?,
            in_flight: count("in_flight")?,
            dead: count("dead")?,
            processed: count("processed")?,
            failed: count("failed")?,
            busy: workers.iter().map(|w| u64::from(w.busy)).sum(),
            workers,
        })
    }

    async fn dead_list(&self, limit: usize, offset: usize) -> Result<Vec<DeadJob>, JobError> {
        let rows = sqlx::query(
            "SELECT id, kind, payload, attempts, max_attempts, last_error, unique_key,
                    created_at, dead_at
             FROM jobs WHERE state = 'dead'
             ORDER BY dead_at DESC, id DESC
             LIMIT $1 OFFSET $2",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadJob {
                    id: JobId(row.try_get("id")?),
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    attempts: to_u32(row.try_get("attempts")?),
                    max_attempts: row.try_get::<Option<i32>, _>("max_attempts")?.map(to_u32),
                    last_error: row.try_get("last_error")?,
                    unique_key: row.try_get("unique_key")?,
                    enqueued_at: row.try_get("created_at")?,
                    failed_at: row.try_get("dead_at")?,
                })
            })
            .collect()
    }

    async fn dead_retry(&self, which: DeadSelector) -> Result<u64, JobError> {
        let only: Option<Uuid> = match which {
            DeadSelector::All => None,
            DeadSelector::Id(id) => Some(id.0),
        };
        const REVIVE: &str = "UPDATE jobs SET state = 'queued', attempts = 0, dead_at = NULL,
                                  run_at = now()
                              WHERE state = 'dead'";
        // Jobs without a unique key cannot conflict: all at once.
        let mut retried = sqlx::query(&format!(
            "{REVIVE} AND unique_key IS NULL AND ($1::uuid IS NULL OR id = $1)"
        ))
        .bind(only)
        .execute(&self.pool)
        .await?
        .rows_affected();
        // A unique job whose key a live job took meanwhile stays dead: one at a time, so that
        // a conflict skips that job only.
        let unique: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM jobs
             WHERE state = 'dead' AND unique_key IS NOT NULL AND ($1::uuid IS NULL OR id = $1)
             ORDER BY dead_at, id",
        )
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        for id in unique {
            match sqlx::query(&format!("{REVIVE} AND id = $1"))
                .bind(id)
                .execute(&self.pool)
                .await
            {
                Ok(done) => retried += done.rows_affected(),
                Err(error) if is_unique_violation(&error) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(retried)
    }

    async fn dead_purge(&self) -> Result<u64, JobError> {
        Ok(sqlx::query("DELETE FROM jobs WHERE state = 'dead'")
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
