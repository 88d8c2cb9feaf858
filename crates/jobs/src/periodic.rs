//! Periodic jobs: enqueue a job every N seconds, from any number of instances, one job per tick.
//!
//! # Design
//!
//! Time is cut into ticks: tick `t` of a schedule with period `p` is `[t·p, (t+1)·p)` since the
//! Unix epoch, **on the store's clock** (Redis `TIME`, PostgreSQL `now()`), so instances with skewed
//! clocks agree on the current tick. Every instance runs [`Periodic::run`]; at each tick boundary,
//! each one asks the store to enqueue that tick's job ([`JobBackend::enqueue_periodic`]), and the
//! store does two things atomically:
//!
//! 1. It keeps, per schedule (named by the job kind), the last tick it enqueued a job for, and
//!    enqueues only for a later tick. This high-water mark is what makes "one job per tick" hold
//!    for good: the unique key alone would not, because a unique key is released when its job
//!    completes, so an instance arriving late (a slow start, a long pause) could enqueue the same
//!    tick again after the first job ran.
//! 2. The job gets the unique key `<kind>:<tick>`, so it also follows the unique-job rules (its
//!    id is returned to anyone enqueueing the same key while it is live) and shows its tick in the
//!    dead-letter queue.
//!
//! The answer includes the time to the next tick on the store's clock, which is how long each
//! instance sleeps. Consequences:
//!
//! - Any number of schedulers yield one job per tick; with none running, ticks are skipped, not
//!   caught up (a job per missed tick would arrive in a burst after an outage).
//! - The job, like any job, runs at least once; a tick whose job runs long does not delay the next
//!   tick, so handlers of long periodic work should check that the previous run finished (or give
//!   the job a coarser unique key of its own through a separate, non-periodic enqueue).
//!
//! [`JobBackend::enqueue_periodic`]: crate::JobBackend::enqueue_periodic

use std::{future::Future, time::Duration};

use crate::{Job, JobError, NewJob, Queue, queue::new_job};

/// Pause after a failed call to the store, at most.
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Schedules of periodic jobs; see the module docs.
#[derive(Debug, Clone)]
pub struct Periodic {
    queue: Queue,
    schedules: Vec<(Duration, NewJob)>,
}

impl Periodic {
    pub fn new(queue: Queue) -> Self {
        Self {
            queue,
            schedules: Vec::new(),
        }
    }

    /// Adds a schedule: `job` every `every` (at least a millisecond). One schedule per job kind:
    /// the kind names it in the store, so two schedules of one kind would share their ticks.
    pub fn every<J: Job>(mut self, every: Duration, job: &J) -> Result<Self, JobError> {
        let every = every.max(Duration::from_millis(1));
        self.schedules.push((every, new_job(job)?));
        Ok(self)
    }

    /// Enqueues each schedule's job at each of its ticks until `shutdown` resolves.
    pub async fn run<S>(self, shutdown: S)
    where
        S: Future<Output = ()> + Send,
    {
        let schedules = self
            .schedules
            .into_iter()
            .map(|(every, job)| schedule(self.queue.clone(), every, job));
        tokio::select! {
            () = shutdown => {}
            _ = futures::future::join_all(schedules) => {}
        }
    }
}

async fn schedule(queue: Queue, every: Duration, template: NewJob) {
    loop {
        let job = NewJob {
            id: crate::JobId::new(),
            ..template.clone()
        };
        let pause = match queue.backend().enqueue_periodic(every, job).await {
            Ok(tick) => {
                if let Some(enqueued) = tick.enqueued.filter(|e| !e.duplicate) {
                    queue.wake_workers();
                    tracing::debug!(
                        job.id = %enqueued.id,
                        job.kind = %template.kind,
                        tick = tick.tick,
                        "periodic job enqueued"
                    );
                }
                // A little past the boundary, so that the store's clock has surely reached it.
                tick.next_in + Duration::from_millis(5)
            }
            Err(error) => {
                tracing::warn!(job.kind = %template.kind, error = %error, "enqueueing a periodic job failed");
                every.min(ERROR_PAUSE)
            }
        };
        tokio::time::sleep(pause).await;
    }
}
