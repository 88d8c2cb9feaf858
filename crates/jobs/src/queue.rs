//! The handle through which code enqueues jobs and operators inspect the queue.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use clubpulse_state::RedisConn;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::{
    DeadJob, DeadSelector, Enqueued, Job, JobBackend, JobError, JobId, JobSpec, NewJob, PgBackend,
    QueueStats, RedisBackend, RunAt,
};

/// A cheap-to-clone handle on one queue. Clones share the backend, and a worker pool running on a
/// clone in this process is woken at once by a push instead of waiting for its next poll.
#[derive(Clone)]
pub struct Queue {
    backend: Arc<dyn JobBackend>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// A queue on any backend.
    pub fn new(backend: Arc<dyn JobBackend>) -> Self {
        Self {
            backend,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The queue in Redis (see [`RedisBackend`]).
    pub fn redis(conn: RedisConn) -> Self {
        Self::new(Arc::new(RedisBackend::new(conn)))
    }

    /// The queue in PostgreSQL (see [`PgBackend`]).
    pub fn postgres(pool: PgPool) -> Self {
        Self::new(Arc::new(PgBackend::new(pool)))
    }

    /// The queue of a deployment: in Redis when it has one, otherwise in PostgreSQL (which then
    /// also keeps a single instance's accepted jobs across a crash).
    pub fn for_deployment(redis: Option<RedisConn>, pool: PgPool) -> Self {
        match redis {
            Some(conn) => Self::redis(conn),
            None => Self::postgres(pool),
        }
    }

    /// The store behind the queue.
    pub fn backend(&self) -> &Arc<dyn JobBackend> {
        &self.backend
    }

    /// Enqueues `job` to run now.
    pub async fn push<J: Job>(&self, job: &J) -> Result<Enqueued, JobError> {
        self.push_typed(job, RunAt::Now).await
    }

    /// Enqueues `job` to run at `run_at` (or now, if that has passed).
    pub async fn push_at<J: Job>(
        &self,
        job: &J,
        run_at: DateTime<Utc>,
    ) -> Result<Enqueued, JobError> {
        self.push_typed(job, RunAt::At(run_at)).await
    }

    /// Enqueues `job` to run `delay` from now (measured by the store's clock).
    pub async fn push_in<J: Job>(&self, job: &J, delay: Duration) -> Result<Enqueued, JobError> {
        self.push_typed(job, RunAt::In(delay)).await
    }

    /// Enqueues many jobs to run now, in order, in as few round trips as the store allows (one per
    /// few hundred jobs). Answers are in the same order.
    pub async fn push_many<J: Job>(&self, jobs: &[J]) -> Result<Vec<Enqueued>, JobError> {
        let jobs = jobs
            .iter()
            .map(|job| typed(job, RunAt::Now))
            .collect::<Result<Vec<_>, _>>()?;
        self.enqueue(jobs).await
    }

    /// Enqueues an untyped job.
    pub async fn push_spec(&self, spec: JobSpec) -> Result<Enqueued, JobError> {
        let mut answers = self.push_specs(vec![spec]).await?;
        answers
            .pop()
            .ok_or_else(|| JobError::Corrupt("no answer to an enqueue".to_owned()))
    }

    /// Enqueues untyped jobs, in order, batched like [`Queue::push_many`].
    pub async fn push_specs(&self, specs: Vec<JobSpec>) -> Result<Vec<Enqueued>, JobError> {
        let jobs = specs
            .into_iter()
            .map(|spec| {
                Ok(NewJob {
                    id: JobId::new(),
                    kind: spec.kind,
                    payload: serde_json::to_string(&spec.payload)?,
                    run_at: spec.run_at,
                    unique_key: spec.unique_key,
                    max_attempts: spec.max_attempts,
                })
            })
            .collect::<Result<Vec<_>, JobError>>()?;
        self.enqueue(jobs).await
    }

    /// Queue depths, counters and live worker pools.
    pub async fn stats(&self) -> Result<QueueStats, JobError> {
        self.backend.stats().await
    }

    /// Up to `limit` dead jobs, most recently dead first, after skipping `offset` of them.
    pub async fn dead_list(&self, limit: usize, offset: usize) -> Result<Vec<DeadJob>, JobError> {
        self.backend.dead_list(limit, offset).await
    }

    /// Puts dead jobs back in the queue with their attempts reset; returns how many. A unique job
    /// whose key a live job holds again stays dead.
    pub async fn dead_retry(&self, which: DeadSelector) -> Result<u64, JobError> {
        let retried = self.backend.dead_retry(which).await?;
        if retried > 0 {
            self.wake.notify_waiters();
        }
        Ok(retried)
    }

    /// Deletes every dead job; returns how many.
    pub async fn dead_purge(&self) -> Result<u64, JobError> {
        self.backend.dead_purge().await
    }

    async fn push_typed<J: Job>(&self, job: &J, run_at: RunAt) -> Result<Enqueued, JobError> {
        let mut answers = self.enqueue(vec![typed(job, run_at)?]).await?;
        answers
            .pop()
            .ok_or_else(|| JobError::Corrupt("no answer to an enqueue".to_owned()))
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, JobError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let answers = self.backend.enqueue(jobs).await?;
        self.wake.notify_waiters();
        Ok(answers)
    }

    /// Wakes worker pools of this process waiting on an empty queue.
    pub(crate) fn wake_workers(&self) {
        self.wake.notify_waiters();
    }

    /// Resolves when a push through this queue (or a clone) may have made work available.
    pub(crate) fn pushed(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }
}

fn typed<J: Job>(job: &J, run_at: RunAt) -> Result<NewJob, JobError> {
    Ok(NewJob {
        id: JobId::new(),
        kind: J::KIND.to_owned(),
        payload: serde_json::to_string(job)?,
        run_at,
        unique_key: job.unique_key(),
        max_attempts: job.max_attempts(),
    })
}

pub(crate) fn new_job<J: Job>(job: &J) -> Result<NewJob, JobError> {
    typed(job, RunAt::Now)
}
