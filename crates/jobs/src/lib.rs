//! Background jobs: a reliable queue and the worker pool that runs it.
//!
//! Code that wants work done later pushes a typed [`Job`] through a [`Queue`]; a [`WorkerPool`],
//! in the same process or in any other instance, reserves it, runs the handler registered for its
//! kind in a [`Registry`], and acknowledges it. The queue lives in Redis ([`RedisBackend`]) when
//! the deployment has one, and in PostgreSQL ([`PgBackend`]) otherwise, so that a single instance
//! without Redis still never loses an accepted job on a crash. Both implement [`JobBackend`] and
//! pass the same conformance suite (`tests/conformance.rs`).
//!
//! # Layout
//!
//! - [`job`]: what a job is: the [`Job`] trait, the untyped [`JobSpec`], [`RunAt`], [`JobId`],
//!   [`Enqueued`], and what a handler returns on failure ([`JobFailure`]).
//! - [`queue`]: the [`Queue`] handle: enqueue (one, many, at a time), stats, dead-letter operations.
//! - [`backend`]: the [`JobBackend`] trait every store implements, the records it exchanges, and its
//!   two implementations: [`backend::redis`] and [`backend::postgres`].
//! - [`worker`]: [`Registry`] (handlers by kind), [`WorkerOptions`], [`WorkerPool`] (reserve in
//!   batches, run, acknowledge in batches, keep leases alive, heartbeat, drain on shutdown).
//! - [`periodic`]: [`Periodic`], which enqueues a job every N seconds from any number of instances,
//!   one job per tick.
//!
//! # The life of a job
//!
//! ```text
//! push ─► scheduled ─(run-at reached)─► ready ─(reserve)─► in flight ─(complete)─► deleted
//!             ▲                           ▲   ▲                │
//!             │                           │   └(lease expired)─┤
//!             └──(failed, attempts left: retry after back-off)─┤
//!                                         │                    │
//!                                   (dead_retry)               │
//!                                         │                    │
//!                                        dead ◄─(last attempt)─┘
//! ```
//!
//! (A job to run now skips `scheduled`.)
//!
//! - **Reserve** hands out up to a batch of ready jobs at once, each with a *lease*: a deadline on
//!   the store's clock (Redis `TIME`, PostgreSQL `now()`), never on a worker's, so instances with
//!   skewed clocks agree. The same call first promotes scheduled jobs that have come due and
//!   reclaims jobs whose lease expired (their worker was killed, or lost its connection).
//! - A lease is identified by the job id *and its attempt number*, which reserve increments. Every
//!   later call about the job (complete, fail, extend, release) names both and is ignored when the
//!   attempt no longer matches, so a worker that lost a lease can never complete or fail a job that
//!   was handed to someone else meanwhile.
//! - While a handler runs, its pool extends the lease every third of the visibility timeout, so a
//!   slow but alive job is not stolen; a job whose pool dies is reclaimed one visibility timeout
//!   after its last extension.
//! - A failed attempt is retried after an exponential back-off with jitter (see [`WorkerOptions`]);
//!   the last one (or a [`JobFailure::permanent`]) moves the job to the dead-letter queue, which keeps
//!   its kind, payload, attempts, last error and timestamps until it is retried or purged. A lease
//!   that expires on the last attempt dead-letters the job too, so a job that kills its worker
//!   cannot loop forever.
//! - A job with a unique key holds that key from enqueue until it completes or is dead-lettered;
//!   meanwhile, enqueueing another job with the same key is a no-op that returns the live job's id.
//!
//! # Guarantees
//!
//! Delivery is **at least once**: a job is deleted only after its handler returned `Ok` and the
//! acknowledgement reached the store, so a crash between the two (or a lease lost to a long pause)
//! runs the handler again. **Handlers must be idempotent**: make their effect conditional on state
//! they can check (a row's status, a unique constraint, an idempotency key) rather than assume they
//! run once. Every state change in the store is atomic (one Lua script in Redis, one statement or
//! transaction in PostgreSQL), so a job is never lost or duplicated by the queue itself. Order is
//! first in, first out among ready jobs, but with concurrent workers and retries, handlers must not
//! depend on it.
//!
//! Redis is as durable as its persistence settings (AOF with `appendfsync everysec` loses at most a
//! second of accepted jobs on a Redis crash); PostgreSQL loses none once `push` has returned.

pub mod backend;
pub mod job;
pub mod periodic;
pub mod queue;
pub mod worker;

pub use backend::{
    DeadJob, DeadSelector, FailedAttempt, JobBackend, Lease, NewJob, PeriodicTick, QueueStats,
    ReservedJob, WorkerBeat, WorkerStatus, postgres::PgBackend, redis::RedisBackend,
};
pub use job::{Enqueued, Job, JobFailure, JobId, JobSpec, RunAt};
pub use periodic::Periodic;
pub use queue::Queue;
pub use worker::{Handler, Jitter, JobContext, PoolSummary, Registry, WorkerOptions, WorkerPool};

/// A queue operation that failed for reasons outside the caller's control (the store is down or
/// answered something unreadable), or a payload that cannot be serialized.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("job payload does not serialize: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("stored job data is unreadable: {0}")]
    Corrupt(String),
}
