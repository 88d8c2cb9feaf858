//! The store behind a queue: one trait, two implementations ([`redis`] and [`postgres`]), and the
//! records they exchange with the [`Queue`](crate::Queue) and the worker pool.
//!
//! Every method is one atomic step in the store and takes or returns a batch where the pool would
//! otherwise make one round trip per job. Methods about a reserved job name its [`Lease`] (id and
//! attempt) and silently skip jobs whose lease is no longer that one: the job was reclaimed and
//! reserved again, or already finished.

pub mod postgres;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Enqueued, JobError, JobId, RunAt};

/// Most jobs sent to the store in one call; larger batches are split.
pub(crate) const MAX_BATCH: usize = 500;

/// A job on its way into the store, payload already serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub kind: String,
    /// The payload as JSON text.
    pub payload: String,
    pub run_at: RunAt,
    pub unique_key: Option<String>,
    pub max_attempts: Option<u32>,
}

/// A job handed to a worker, with its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservedJob {
    pub id: JobId,
    pub kind: String,
    /// The payload as JSON text.
    pub payload: String,
    /// This attempt's number, from 1; with the id, it names the lease.
    pub attempt: u32,
    /// The job's own limit; `None` means the pool's default.
    pub max_attempts: Option<u32>,
    pub unique_key: Option<String>,
    pub enqueued_at: DateTime<Utc>,
}

impl ReservedJob {
    /// The lease this reservation holds.
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id,
            attempt: self.attempt,
        }
    }
}

/// One reservation of one job: valid until the job is reserved again (a higher attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    pub id: JobId,
    pub attempt: u32,
}

/// An attempt that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAttempt {
    pub lease: Lease,
    pub error: String,
    /// Run again after this delay (on the store's clock); `None` dead-letters the job.
    pub retry_in: Option<Duration>,
}

/// What a worker pool reports about itself, periodically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerBeat {
    pub id: String,
    pub concurrency: u32,
    /// Handlers running now.
    pub busy: u32,
    /// Forget the entry if no beat refreshes it within this time (the pool died).
    pub ttl: Duration,
}

/// A live worker pool, as last reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStatus {
    pub id: String,
    pub concurrency: u32,
    pub busy: u32,
    /// When its last heartbeat arrived (store's clock).
    pub seen_at: DateTime<Utc>,
}

/// Queue depths and counters, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct QueueStats {
    /// Visible now, waiting for a worker (scheduled jobs that have come due included).
    pub ready: u64,
    /// Waiting for their run-at time (first runs and retries).
    pub scheduled: u64,
    /// Reserved by a worker.
    pub in_flight: u64,
    /// In the dead-letter queue.
    pub dead: u64,
    /// Jobs completed successfully, ever, by every instance.
    pub processed: u64,
    /// Attempts that failed (handler error or panic, unknown kind, undecodable payload, expired
    /// lease), ever, by every instance. A job retried three times counts three.
    pub failed: u64,
    /// Worker pools that sent a heartbeat recently, by id.
    pub workers: Vec<WorkerStatus>,
    /// Handlers running now, summed over `workers`.
    pub busy: u64,
}

/// A job in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadJob {
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: u32,
    pub max_attempts: Option<u32>,
    pub last_error: Option<String>,
    pub unique_key: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    /// When it was dead-lettered.
    pub failed_at: DateTime<Utc>,
}

/// Which dead jobs to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadSelector {
    All,
    Id(JobId),
}

/// The outcome of one periodic-scheduler call; see [`Periodic`](crate::Periodic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodicTick {
    /// The current tick: whole periods since the Unix epoch, on the store's clock.
    pub tick: u64,
    /// The job this call enqueued for the tick; `None` when the tick was already claimed.
    pub enqueued: Option<Enqueued>,
    /// Time to the next tick, on the store's clock.
    pub next_in: Duration,
}

/// A job store. Implementations must make each method atomic and judge every time (run-at, lease
/// deadlines, heartbeats, ticks) by the store's own clock.
#[async_trait]
pub trait JobBackend: Send + Sync + std::fmt::Debug {
    /// Adds jobs, in order. A job whose unique key a live job holds (including one earlier in the
    /// same batch) is not added; its answer names the live job and is marked duplicate.
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, JobError>;

    /// Reserves up to `count` ready jobs for `lease`, oldest first. Before that, promotes scheduled
    /// jobs that have come due and reclaims jobs whose lease expired: back to ready, or to the
    /// dead-letter queue when that was their last attempt (limit `default_max_attempts` unless the
    /// job has its own).
    async fn reserve(
        &self,
        count: usize,
        lease: Duration,
        default_max_attempts: u32,
    ) -> Result<Vec<ReservedJob>, JobError>;

    /// Deletes successfully run jobs, releases their unique keys, counts them as processed.
    /// Returns how many leases were still current.
    async fn complete(&self, leases: &[Lease]) -> Result<u64, JobError>;

    /// Records failed attempts: each job is scheduled again or dead-lettered (releasing its unique
    /// key), and counted as failed. Returns how many leases were still current.
    async fn fail(&self, attempts: &[FailedAttempt]) -> Result<u64, JobError>;

    /// Gives jobs back unrun (a pool shutting down), at the front of the queue, without using up
    /// the attempt. Returns how many leases were still current.
    async fn release(&self, leases: &[Lease]) -> Result<u64, JobError>;

    /// Pushes the lease deadline of running jobs to `lease` from now. Returns the ids whose lease
    /// was lost (reclaimed, or finished elsewhere).
    async fn extend(&self, leases: &[Lease], lease: Duration) -> Result<Vec<JobId>, JobError>;

    /// Records a pool's heartbeat and forgets pools whose last one is older than its ttl.
    async fn heartbeat(&self, beat: &WorkerBeat) -> Result<(), JobError>;

    /// Forgets a pool that stopped.
    async fn retire(&self, worker_id: &str) -> Result<(), JobError>;

    /// Enqueues `job` for the current tick of a schedule that runs every `every`, unless this
    /// schedule (named by the job's kind) already claimed this tick or a later one. The job's
    /// unique key becomes `<kind>:<tick>`.
    async fn enqueue_periodic(
        &self,
        every: Duration,
        job: NewJob,
    ) -> Result<PeriodicTick, JobError>;

    async fn stats(&self) -> Result<QueueStats, JobError>;

    /// Dead jobs, most recently dead first.
    async fn dead_list(&self, limit: usize, offset: usize) -> Result<Vec<DeadJob>, JobError>;

    /// Moves dead jobs back to ready with their attempts reset. A job whose unique key a live job
    /// holds again stays dead (running both would be the harm the key prevents). Returns how many
    /// moved.
    async fn dead_retry(&self, which: DeadSelector) -> Result<u64, JobError>;

    /// Deletes every dead job. Returns how many.
    async fn dead_purge(&self) -> Result<u64, JobError>;
}

/// Whole milliseconds of `d`, rounded up so that a non-zero delay stays non-zero.
pub(crate) fn millis_ceil(d: Duration) -> i64 {
    i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
}
