//! The worker pool: reserves jobs in batches, runs their handlers concurrently, acknowledges them
//! in batches, keeps their leases alive, reports a heartbeat, and drains on shutdown.
//!
//! One pool is a handful of tasks around a semaphore of `concurrency` permits:
//!
//! - the **fetch loop** (the caller's task) waits for a free permit, takes every other free one up
//!   to `batch_size`, and reserves that many jobs in one call; each job runs in its own task
//!   holding one permit. An empty answer sleeps until `poll_interval` passes or a push through the
//!   same [`Queue`] in this process wakes it.
//! - the **acker** collects outcomes from finished handlers and sends them to the store in batches
//!   (everything that finished while the previous batch was on the wire), retrying a failed call a
//!   few times; a handler's permit is released as soon as it returns, not when it is acknowledged.
//! - the **keeper** extends the lease of every reserved, unacknowledged job every third of the
//!   visibility timeout, and sends the pool's heartbeat.
//!
//! On shutdown the fetch loop stops reserving, in-flight handlers get up to `drain_timeout` to
//! finish, and those still running then are aborted and their jobs released (back to the head of
//! the queue, the attempt not counted). Pending acknowledgements are flushed before `run` returns.
//!
//! A handler's panic is caught and fails its job with the panic's message; so do an unknown kind
//! and a payload that does not decode, so that such a job ends in the dead-letter queue after its
//! attempts instead of blocking anything.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::{FutureExt as _, future::BoxFuture};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch},
    task::JoinSet,
};

use crate::{
    FailedAttempt, Job, JobBackend, JobError, JobFailure, JobId, Lease, Queue, ReservedJob,
    WorkerBeat,
};

/// How retry delays are randomized, so that jobs failing together do not retry together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential delay.
    None,
    /// Uniform in `[0, delay]`: spreads retries the most, but may retry at once.
    Full,
    /// Uniform in `[delay / 2, delay]`: still spread, and never sooner than half the delay. The
    /// default, as a failing dependency usually needs some time before a retry can succeed.
    #[default]
    Equal,
}

/// How a worker pool runs. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Handlers running at once. Default 16.
    pub concurrency: usize,
    /// Most jobs reserved in one call to the store (capped at 1000). Default 100.
    pub batch_size: usize,
    /// Attempts before a job without its own limit is dead-lettered. Default 5.
    pub max_attempts: u32,
    /// Delay before the first retry; each later one doubles it. Default 1 s.
    pub backoff_base: Duration,
    /// Longest delay between retries. Default 1 h.
    pub backoff_cap: Duration,
    /// Randomization of retry delays. Default [`Jitter::Equal`].
    pub jitter: Jitter,
    /// How long a reserved job stays invisible to other workers without a lease extension: a job
    /// of a pool that died runs again this long after the pool's last extension. Extensions are
    /// sent every third of it, so it must exceed three round trips to the store by far. Default
    /// 30 s.
    pub visibility_timeout: Duration,
    /// Pause after finding the queue empty. Default 500 ms.
    pub poll_interval: Duration,
    /// Time in-flight handlers get to finish on shutdown before they are aborted. Default 30 s.
    pub drain_timeout: Duration,
    /// Time between heartbeats; the pool counts as gone three intervals after its last one.
    /// Default 5 s.
    pub heartbeat_interval: Duration,
    /// The pool's id in stats; `None` makes one from the process id and a random suffix.
    pub worker_id: Option<String>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            batch_size: 100,
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(3600),
            jitter: Jitter::Equal,
            visibility_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            worker_id: None,
        }
    }
}

impl WorkerOptions {
    /// The delay before retrying a job whose attempt number `failed_attempt` (from 1) failed:
    /// `backoff_base · 2^(failed_attempt − 1)`, capped at `backoff_cap`, then jittered.
    pub fn retry_delay(&self, failed_attempt: u32) -> Duration {
        let doublings = failed_attempt.saturating_sub(1).min(31);
        let ceiling = self
            .backoff_base
            .saturating_mul(1 << doublings)
            .min(self.backoff_cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(match self.jitter {
            Jitter::None => nanos,
            Jitter::Full => rand::random_range(0..=nanos),
            Jitter::Equal => nanos / 2 + rand::random_range(0..=nanos - nanos / 2),
        })
    }

    /// Values out of range brought into range (zero concurrency would never run anything).
    fn normalized(mut self) -> Self {
        self.concurrency = self.concurrency.max(1);
        self.batch_size = self.batch_size.clamp(1, 1000);
        self.max_attempts = self.max_attempts.max(1);
        self.visibility_timeout = self.visibility_timeout.max(Duration::from_millis(300));
        self.poll_interval = self.poll_interval.max(Duration::from_millis(1));
        self.heartbeat_interval = self.heartbeat_interval.max(Duration::from_millis(10));
        self
    }
}

/// What a handler knows about the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: JobId,
    pub kind: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The attempt after which a failure dead-letters the job.
    pub max_attempts: u32,
    pub unique_key: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    /// The queue the job came from, to enqueue follow-up jobs.
    pub queue: Queue,
}

impl JobContext {
    /// Whether a failure now would dead-letter the job.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// A handler of jobs of type `J`: implemented by every `Fn(J, JobContext) -> impl Future<Output =
/// Result<(), JobFailure>>` that can be shared between tasks, such as an `async move` closure.
pub trait Handler<J>: Send + Sync + 'static {
    type Future: Future<Output = Result<(), JobFailure>> + Send + 'static;

    fn call(&self, job: J, ctx: JobContext) -> Self::Future;
}

impl<J, F, Fut> Handler<J> for F
where
    F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
{
    type Future = Fut;

    fn call(&self, job: J, ctx: JobContext) -> Fut {
        self(job, ctx)
    }
}

/// A handler with its job type erased: decodes the payload, then runs.
type ErasedHandler =
    dyn Fn(&str, JobContext) -> BoxFuture<'static, Result<(), JobFailure>> + Send + Sync;

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<ErasedHandler>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<&str> = self.kinds().collect();
        kinds.sort_unstable();
        f.debug_struct("Registry").field("kinds", &kinds).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `handler` for jobs of kind `J::KIND` (replacing an earlier handler of that kind). A
    /// payload that does not decode as `J` fails the attempt, like an error from the handler.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl clubpulse_jobs::Job for Ping { const KIND: &'static str = "ping"; }
    /// let mut registry = clubpulse_jobs::Registry::new();
    /// registry.register::<Ping, _>(|_job: Ping, ctx: clubpulse_jobs::JobContext| async move {
    ///     tracing::info!(job.id = %ctx.id, "pong");
    ///     Ok(())
    /// });
    /// ```
    pub fn register<J: Job, H: Handler<J>>(&mut self, handler: H) -> &mut Self {
        let erased = move |payload: &str, ctx: JobContext| -> BoxFuture<'static, _> {
            match serde_json::from_str::<J>(payload) {
                Ok(job) => handler.call(job, ctx).boxed(),
                Err(error) => {
                    let failure = JobFailure::new(format_args!(
                        "payload does not decode as a {} job: {error}",
                        J::KIND
                    ));
                    futures::future::ready(Err(failure)).boxed()
                }
            }
        };
        self.handlers.insert(J::KIND.to_owned(), Arc::new(erased));
        self
    }

    /// The kinds that have a handler.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}

/// What one pool did between start and shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    pub worker_id: String,
    /// Handlers that returned `Ok`.
    pub succeeded: u64,
    /// Attempts that failed (error, panic, unknown kind, undecodable payload).
    pub failed: u64,
    /// Jobs released unfinished because the drain timeout passed.
    pub abandoned: u64,
}

/// Runs jobs from a queue; see the module docs.
#[derive(Debug)]
pub struct WorkerPool;

/// Most outcomes acknowledged in one call.
const ACK_BATCH: usize = 1000;

/// Calls to acknowledge a batch before giving up on it (its jobs are then reclaimed when their
/// lease expires, and run again).
const ACK_ATTEMPTS: u32 = 8;

#[derive(Debug)]
enum Outcome {
    Completed(Lease),
    Failed(FailedAttempt),
    Abandoned(Lease),
}

#[derive(Debug, Default)]
struct Counters {
    succeeded: AtomicU64,
    failed: AtomicU64,
    abandoned: AtomicU64,
    running: AtomicUsize,
}

/// Leases reserved by this pool and not yet acknowledged: the keeper extends them.
type Tracked = Arc<Mutex<HashSet<Lease>>>;

fn lock(tracked: &Tracked) -> std::sync::MutexGuard<'_, HashSet<Lease>> {
    tracked.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WorkerPool {
    /// Runs handlers from `registry` for jobs of `queue` until `shutdown` resolves, then drains
    /// (see the module docs) and returns what the pool did. Errors from the store are logged and
    /// retried, never returned: a pool outlives a Redis or PostgreSQL outage.
    pub async fn run<S>(
        queue: Queue,
        registry: Registry,
        options: WorkerOptions,
        shutdown: S,
    ) -> PoolSummary
    where
        S: Future<Output = ()> + Send,
    {
        let options = Arc::new(options.normalized());
        let worker_id = options.worker_id.clone().unwrap_or_else(|| {
            format!("pool-{}-{:08x}", std::process::id(), rand::random::<u32>())
        });
        let backend = queue.backend().clone();
        let registry = Arc::new(registry);
        let tracked: Tracked = Arc::default();
        let counters = Arc::new(Counters::default());
        let (outcomes, outcomes_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(backend.clone(), outcomes_rx, tracked.clone()));
        let (stop, stopped) = watch::channel(false);
        let keeper = tokio::spawn(keep_alive(
            backend.clone(),
            tracked.clone(),
            counters.clone(),
            options.clone(),
            worker_id.clone(),
            stopped,
        ));
        let mut kinds: Vec<&str> = registry.kinds().collect();
        kinds.sort_unstable();
        tracing::info!(
            worker.id = %worker_id,
            concurrency = options.concurrency,
            kinds = ?kinds,
            "worker pool started"
        );

        let semaphore = Arc::new(Semaphore::new(options.concurrency));
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut error_pause = Duration::from_millis(50);
        loop {
            while tasks.try_join_next().is_some() {}
            let first = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = semaphore.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while permits.len() < options.batch_size {
                match semaphore.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let woken = queue.pushed();
            let reserved = match backend
                .reserve(
                    permits.len(),
                    options.visibility_timeout,
                    options.max_attempts,
                )
                .await
            {
                Ok(jobs) => {
                    error_pause = Duration::from_millis(50);
                    jobs
                }
                Err(error) => {
                    tracing::warn!(worker.id = %worker_id, error = %error, "reserving jobs failed; retrying");
                    drop(permits);
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(error_pause) => {}
                    }
                    error_pause = (error_pause * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if reserved.is_empty() {
                drop(permits);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = woken => {}
                    () = tokio::time::sleep(options.poll_interval) => {}
                }
                continue;
            }
            lock(&tracked).extend(reserved.iter().map(ReservedJob::lease));
            let mut jobs = reserved.into_iter();
            for (job, permit) in jobs.by_ref().zip(permits) {
                let guard = OutcomeGuard::new(job.lease(), outcomes.clone(), counters.clone());
                tasks.spawn(execute(
                    job,
                    registry.clone(),
                    queue.clone(),
                    options.clone(),
                    guard,
                    permit,
                ));
            }
            // A store never answers with more jobs than asked for; if one did, give them back.
            for extra in jobs {
                let _ = outcomes.send(Outcome::Abandoned(extra.lease()));
            }
        }

        tracing::info!(worker.id = %worker_id, running = tasks.len(), "worker pool draining");
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(options.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                worker.id = %worker_id,
                running = tasks.len(),
                "drain timeout passed; releasing jobs still running"
            );
            tasks.abort_all();
            let aborted = async { while tasks.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(5), aborted).await;
        }
        drop(tasks);
        drop(outcomes);
        if tokio::time::timeout(Duration::from_secs(30), acker)
            .await
            .is_err()
        {
            tracing::error!(worker.id = %worker_id, "acknowledgements did not finish; their jobs will be reclaimed");
        }
        let _ = stop.send(true);
        let _ = keeper.await;
        let summary = PoolSummary {
            worker_id,
            succeeded: counters.succeeded.load(Ordering::Relaxed),
            failed: counters.failed.load(Ordering::Relaxed),
            abandoned: counters.abandoned.load(Ordering::Relaxed),
        };
        tracing::info!(
            worker.id = %summary.worker_id,
            succeeded = summary.succeeded,
            failed = summary.failed,
            abandoned = summary.abandoned,
            "worker pool stopped"
        );
        summary
    }
}

/// Reports a job's outcome to the acker exactly once: explicitly when the handler returned, or as
/// abandoned when the task is dropped first (aborted at the drain timeout).
struct OutcomeGuard {
    lease: Lease,
    outcomes: mpsc::UnboundedSender<Outcome>,
    counters: Arc<Counters>,
    sent: bool,
}

impl OutcomeGuard {
    fn new(
        lease: Lease,
        outcomes: mpsc::UnboundedSender<Outcome>,
        counters: Arc<Counters>,
    ) -> Self {
        counters.running.fetch_add(1, Ordering::Relaxed);
        Self {
            lease,
            outcomes,
            counters,
            sent: false,
        }
    }

    fn send(mut self, outcome: Outcome) {
        self.sent = true;
        let _ = self.outcomes.send(outcome);
    }
}

impl Drop for OutcomeGuard {
    fn drop(&mut self) {
        self.counters.running.fetch_sub(1, Ordering::Relaxed);
        if !self.sent {
            self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            let _ = self.outcomes.send(Outcome::Abandoned(self.lease));
        }
    }
}

/// Runs one job's handler and reports the outcome.
async fn execute(
    job: ReservedJob,
    registry: Arc<Registry>,
    queue: Queue,
    options: Arc<WorkerOptions>,
    guard: OutcomeGuard,
    permit: OwnedSemaphorePermit,
) {
    let lease = job.lease();
    let max_attempts = job.max_attempts.unwrap_or(options.max_attempts);
    let handler = registry.handlers.get(&job.kind).cloned();
    let ctx = JobContext {
        id: job.id,
        kind: job.kind,
        attempt: job.attempt,
        max_attempts,
        unique_key: job.unique_key,
        enqueued_at: job.enqueued_at,
        queue,
    };
    let kind = ctx.kind.clone();
    // Only registered kinds become label values.
    let label = if handler.is_some() {
        kind.clone()
    } else {
        "unknown".to_owned()
    };
    let started = std::time::Instant::now();
    let result = match handler {
        None => Err(JobFailure::new(format_args!(
            "no handler is registered for job kind {kind:?}"
        ))),
        Some(handler) => {
            let payload = job.payload;
            AssertUnwindSafe(async move { handler(&payload, ctx).await })
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .copied()
                        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                        .unwrap_or("a non-string payload");
                    Err(JobFailure::new(format_args!("handler panicked: {message}")))
                })
        }
    };
    metrics::histogram!("clubpulse_job_duration_seconds", "kind" => label.clone())
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            metrics::counter!("clubpulse_jobs_finished_total", "kind" => label, "outcome" => "done")
                .increment(1);
            guard.counters.succeeded.fetch_add(1, Ordering::Relaxed);
            guard.send(Outcome::Completed(lease));
        }
        Err(failure) => {
            guard.counters.failed.fetch_add(1, Ordering::Relaxed);
            let retry_in = (!failure.is_permanent() && lease.attempt < max_attempts)
                .then(|| options.retry_delay(lease.attempt));
            let outcome = if retry_in.is_some() {
                "retried"
            } else {
                "dead"
            };
            metrics::counter!("clubpulse_jobs_finished_total", "kind" => label, "outcome" => outcome)
                .increment(1);
            match retry_in {
                Some(delay) => tracing::warn!(
                    job.id = %lease.id,
                    job.kind = %kind,
                    job.attempt = lease.attempt,
                    retry_in_ms = delay.as_millis(),
                    error = %failure,
                    "job failed; it will be retried"
                ),
                None => tracing::error!(
                    job.id = %lease.id,
                    job.kind = %kind,
                    job.attempt = lease.attempt,
                    error = %failure,
                    "job failed for good; moved to the dead-letter queue"
                ),
            }
            guard.send(Outcome::Failed(FailedAttempt {
                lease,
                error: failure.message().to_owned(),
                retry_in,
            }));
        }
    }
    drop(permit);
}

/// Sends outcomes to the store in batches until every sender is gone.
async fn acknowledge(
    backend: Arc<dyn JobBackend>,
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    tracked: Tracked,
) {
    let mut batch = Vec::with_capacity(ACK_BATCH);
    while outcomes.recv_many(&mut batch, ACK_BATCH).await > 0 {
        let mut completed = Vec::new();
        let mut failed = Vec::new();
        let mut abandoned = Vec::new();
        for outcome in batch.drain(..) {
            match outcome {
                Outcome::Completed(lease) => completed.push(lease),
                Outcome::Failed(attempt) => failed.push(attempt),
                Outcome::Abandoned(lease) => abandoned.push(lease),
            }
        }
        let backend = &*backend;
        settle("complete", completed.len(), || backend.complete(&completed)).await;
        settle("fail", failed.len(), || backend.fail(&failed)).await;
        settle("release", abandoned.len(), || backend.release(&abandoned)).await;
        let mut tracked = lock(&tracked);
        for lease in completed
            .iter()
            .chain(failed.iter().map(|f| &f.lease))
            .chain(&abandoned)
        {
            tracked.remove(lease);
        }
    }
}

/// Calls `op` until it succeeds, a bounded number of times with growing pauses.
async fn settle<F, Fut>(what: &str, jobs: usize, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, JobError>>,
{
    if jobs == 0 {
        return;
    }
    let mut pause = Duration::from_millis(50);
    for attempt in 1..=ACK_ATTEMPTS {
        match op().await {
            Ok(_) => return,
            Err(error) if attempt < ACK_ATTEMPTS => {
                tracing::warn!(action = what, jobs, error = %error, "acknowledging jobs failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(error) => tracing::error!(
                action = what,
                jobs,
                error = %error,
                "acknowledging jobs failed; giving up, they will run again once their lease expires"
            ),
        }
    }
}

/// Extends leases and sends heartbeats until told to stop, then retires the pool's entry.
async fn keep_alive(
    backend: Arc<dyn JobBackend>,
    tracked: Tracked,
    counters: Arc<Counters>,
    options: Arc<WorkerOptions>,
    worker_id: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut beat = tokio::time::interval(options.heartbeat_interval);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut extend = tokio::time::interval(options.visibility_timeout / 3);
    extend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let concurrency = u32::try_from(options.concurrency).unwrap_or(u32::MAX);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = beat.tick() => {
                let busy = counters.running.load(Ordering::Relaxed);
                let beat = WorkerBeat {
                    id: worker_id.clone(),
                    concurrency,
                    busy: u32::try_from(busy).unwrap_or(u32::MAX),
                    ttl: options.heartbeat_interval * 3,
                };
                if let Err(error) = backend.heartbeat(&beat).await {
                    tracing::warn!(worker.id = %worker_id, error = %error, "worker heartbeat failed");
                }
            }
            _ = extend.tick() => {
                let leases: Vec<Lease> = lock(&tracked).iter().copied().collect();
                if leases.is_empty() {
                    continue;
                }
                match backend.extend(&leases, options.visibility_timeout).await {
                    Ok(lost) => {
                        let tracked = lock(&tracked);
                        let lost: Vec<JobId> = lost
                            .into_iter()
                            .filter(|id| leases.iter().any(|l| l.id == *id && tracked.contains(l)))
                            .collect();
                        if !lost.is_empty() {
                            tracing::warn!(
                                worker.id = %worker_id,
                                jobs = ?lost,
                                "lost the lease of running jobs; another worker may run them too"
                            );
                        }
                    }
                    Err(error) => {
                        tracing::warn!(worker.id = %worker_id, error = %error, "extending leases failed");
                    }
                }
            }
        }
    }
    if let Err(error) = backend.retire(&worker_id).await {
        tracing::warn!(worker.id = %worker_id, error = %error, "retiring the worker entry failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(jitter: Jitter) -> WorkerOptions {
        WorkerOptions {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            jitter,
            ..WorkerOptions::default()
        }
    }

    #[test]
    fn retry_delays_double_up_to_the_cap_without_jitter() {
        let options = options(Jitter::None);
        let delays: Vec<u128> = (1..=6)
            .map(|a| options.retry_delay(a).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(options.retry_delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_delay() {
        let options = options(Jitter::Full);
        for _ in 0..1000 {
            assert!(options.retry_delay(3) <= Duration::from_millis(400));
        }
    }

    #[test]
    fn equal_jitter_stays_between_half_the_delay_and_the_delay() {
        let options = options(Jitter::Equal);
        for _ in 0..1000 {
            let delay = options.retry_delay(3);
            assert!(delay >= Duration::from_millis(200) && delay <= Duration::from_millis(400));
        }
    }
}
