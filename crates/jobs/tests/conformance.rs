//! The job-queue conformance suite: every test runs against a single Redis server, a Redis
//! Cluster and PostgreSQL, so the backends cannot drift apart.
//!
//! Addresses come from `CLUBPULSE_TEST_REDIS_URL`, `CLUBPULSE_TEST_REDIS_CLUSTER_URL` and
//! `CLUBPULSE_TEST_DATABASE_URL`, which `scripts/test` sets after starting the servers. Each Redis
//! test uses its own random key prefix; each PostgreSQL test its own freshly migrated database.
//! Timeouts are short (visibility 1–2 s, back-off base 20–100 ms) to keep the suite quick.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use clubpulse_jobs::{
    DeadSelector, FailedAttempt, Jitter, Job, JobContext, JobFailure, JobSpec, Periodic,
    PoolSummary, Queue, QueueStats, Registry, RunAt, WorkerBeat, WorkerOptions, WorkerPool,
};
use clubpulse_state::{RedisConn, RedisOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::oneshot;
use uuid::Uuid;

fn env_url(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite through scripts/test, which starts the servers")
    })
}

async fn redis_queue(url_var: &str, cluster: bool) -> Queue {
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let options = RedisOptions::new(&env_url(url_var), cluster, prefix);
    Queue::redis(
        RedisConn::connect(&options)
            .await
            .expect("connect to Redis"),
    )
}

async fn postgres_queue() -> Queue {
    let url = clubpulse_storage::testing::fresh_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(&url)
        .await
        .expect("connect to the test database");
    Queue::postgres(pool)
}

/// Generates one test per backend for each conformance check.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod redis_single {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                super::$name(super::redis_queue("CLUBPULSE_TEST_REDIS_URL", false).await).await;
            })*
        }
        mod redis_cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                super::$name(super::redis_queue("CLUBPULSE_TEST_REDIS_CLUSTER_URL", true).await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                super::$name(super::postgres_queue().await).await;
            })*
        }
    };
}

conformance!(
    an_enqueued_job_is_reserved_once_then_completed_and_counted,
    a_batch_is_enqueued_and_reserved_in_order,
    a_job_scheduled_for_later_is_not_visible_before_its_time,
    a_failing_job_is_retried_with_backoff_then_dead_lettered_with_its_payload_attempts_and_error,
    a_permanent_failure_skips_the_remaining_attempts,
    poison_jobs_end_in_the_dead_letter_queue_while_other_jobs_keep_flowing,
    a_job_of_a_dead_worker_is_reclaimed_after_the_visibility_timeout,
    a_stale_lease_can_neither_complete_nor_fail_nor_extend_the_job,
    a_lease_expiring_on_the_last_attempt_dead_letters_the_job,
    a_slow_job_keeps_its_lease_while_its_worker_is_alive,
    a_second_enqueue_of_a_live_unique_key_returns_the_live_job,
    a_unique_key_is_released_when_its_job_completes_or_dies,
    dead_jobs_can_be_listed_retried_one_by_one_or_all_at_once_and_purged,
    a_dead_job_whose_unique_key_was_taken_again_stays_dead_on_retry,
    stats_count_outcomes_and_list_live_workers_with_their_busy_handlers,
    shutting_down_lets_in_flight_jobs_finish,
    jobs_still_running_at_the_drain_timeout_go_back_to_the_queue_without_losing_an_attempt,
    hundreds_of_jobs_across_several_pools_are_each_processed_exactly_once,
    a_periodic_job_is_enqueued_once_per_tick_however_many_schedulers_run,
);

// --- Jobs -------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Count {
    n: u64,
}

impl Job for Count {
    const KIND: &'static str = "count";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flaky {
    note: String,
}

impl Job for Flaky {
    const KIND: &'static str = "flaky";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Once {
    key: String,
}

impl Job for Once {
    const KIND: &'static str = "once";

    fn unique_key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Panicky;

impl Job for Panicky {
    const KIND: &'static str = "panicky";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slow {
    millis: u64,
}

impl Job for Slow {
    const KIND: &'static str = "slow";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tick;

impl Job for Tick {
    const KIND: &'static str = "tick";
}

// --- Helpers ----------------------------------------------------------------------------------

/// Short timeouts for tests.
fn fast() -> WorkerOptions {
    WorkerOptions {
        concurrency: 8,
        batch_size: 16,
        max_attempts: 5,
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        jitter: Jitter::Equal,
        visibility_timeout: Duration::from_secs(2),
        poll_interval: Duration::from_millis(20),
        drain_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_millis(100),
        worker_id: None,
    }
}

const LEASE: Duration = Duration::from_secs(5);

/// A pool running in the background until [`RunningPool::stop`].
struct RunningPool {
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<PoolSummary>,
}

impl RunningPool {
    fn start(queue: &Queue, registry: Registry, options: WorkerOptions) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(WorkerPool::run(
            queue.clone(),
            registry,
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Self { stop, handle }
    }

    async fn stop(self) -> PoolSummary {
        let _ = self.stop.send(());
        self.handle.await.unwrap()
    }
}

/// Polls stats until `done` holds, failing the test after `within`.
async fn wait_for(
    queue: &Queue,
    within: Duration,
    what: &str,
    done: impl Fn(&QueueStats) -> bool,
) -> QueueStats {
    let deadline = Instant::now() + within;
    loop {
        let stats = queue.stats().await.unwrap();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; stats: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn idle(stats: &QueueStats) -> bool {
    stats.ready == 0 && stats.scheduled == 0 && stats.in_flight == 0
}

/// Runs a pool until nothing is left to do (a test fails if jobs are left unprocessed), then stops
/// it.
async fn drain(queue: &Queue, registry: Registry, options: WorkerOptions) -> PoolSummary {
    let pool = RunningPool::start(queue, registry, options);
    wait_for(queue, Duration::from_secs(20), "the queue to drain", idle).await;
    pool.stop().await
}

/// A registry whose `count` handler records each `n` it sees.
fn counting(seen: &Arc<Mutex<HashMap<u64, u32>>>) -> Registry {
    let mut registry = Registry::new();
    let seen = seen.clone();
    registry.register::<Count, _>(move |job: Count, _ctx: JobContext| {
        let seen = seen.clone();
        async move {
            *seen.lock().unwrap().entry(job.n).or_default() += 1;
            Ok(())
        }
    });
    registry
}

async fn reserve(queue: &Queue, count: usize, lease: Duration) -> Vec<clubpulse_jobs::ReservedJob> {
    queue.backend().reserve(count, lease, 5).await.unwrap()
}

fn failure(job: &clubpulse_jobs::ReservedJob, error: &str) -> FailedAttempt {
    FailedAttempt {
        lease: job.lease(),
        error: error.to_owned(),
        retry_in: None,
    }
}

// --- Enqueue, reserve, complete ---------------------------------------------------------------

async fn an_enqueued_job_is_reserved_once_then_completed_and_counted(queue: Queue) {
    let enqueued = queue.push(&Count { n: 7 }).await.unwrap();
    assert!(!enqueued.duplicate);

    let jobs = reserve(&queue, 10, LEASE).await;
    let again = reserve(&queue, 10, LEASE).await;
    let during = queue.stats().await.unwrap();
    let completed = queue.backend().complete(&[jobs[0].lease()]).await.unwrap();
    let completed_twice = queue.backend().complete(&[jobs[0].lease()]).await.unwrap();
    let after = queue.stats().await.unwrap();

    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, enqueued.id);
    assert_eq!(jobs[0].kind, "count");
    assert_eq!(
        serde_json::from_str::<Count>(&jobs[0].payload).unwrap(),
        Count { n: 7 }
    );
    assert_eq!(jobs[0].attempt, 1);
    assert_eq!(jobs[0].max_attempts, None);
    assert!(again.is_empty(), "a reserved job is invisible to others");
    assert_eq!((during.ready, during.in_flight), (0, 1));
    assert_eq!((completed, completed_twice), (1, 0));
    assert_eq!(
        (after.ready, after.in_flight, after.processed, after.failed),
        (0, 0, 1, 0)
    );
}

async fn a_batch_is_enqueued_and_reserved_in_order(queue: Queue) {
    let jobs: Vec<Count> = (0..120).map(|n| Count { n }).collect();

    let enqueued = queue.push_many(&jobs).await.unwrap();
    let first = reserve(&queue, 50, LEASE).await;
    let rest = reserve(&queue, 100, LEASE).await;

    assert_eq!(enqueued.len(), 120);
    assert!(enqueued.iter().all(|e| !e.duplicate));
    let reserved: Vec<_> = first.iter().chain(&rest).map(|j| j.id).collect();
    let pushed: Vec<_> = enqueued.iter().map(|e| e.id).collect();
    assert_eq!(first.len(), 50);
    assert_eq!(reserved, pushed, "first in, first out");
}

async fn a_job_scheduled_for_later_is_not_visible_before_its_time(queue: Queue) {
    // Far enough ahead that the early look lands before it on a busy machine; the later look
    // waits from the moment before the first push, so it is always after.
    let later = Duration::from_millis(3000);
    let pushing = tokio::time::Instant::now();
    queue.push_in(&Count { n: 1 }, later).await.unwrap();
    queue
        .push_at(
            &Count { n: 2 },
            Utc::now() + chrono::Duration::from_std(later).unwrap(),
        )
        .await
        .unwrap();
    queue
        .push_spec(JobSpec {
            run_at: RunAt::At(Utc::now() - chrono::Duration::seconds(60)),
            ..JobSpec::new("count", json!({"n": 3}))
        })
        .await
        .unwrap();

    let early_stats = queue.stats().await.unwrap();
    let early = reserve(&queue, 10, LEASE).await;
    // Both jobs fall due `later` after their push, and every push had ended by `pushed`.
    let pushed = tokio::time::Instant::now();
    tokio::time::sleep_until(pushed + later + Duration::from_millis(200)).await;
    let due_stats = queue.stats().await.unwrap();
    let due = reserve(&queue, 10, LEASE).await;

    assert!(
        pushed.duration_since(pushing) < later,
        "the early look came after the jobs were due"
    );
    assert_eq!((early_stats.ready, early_stats.scheduled), (1, 2));
    assert_eq!(early.len(), 1, "only the job whose time has passed");
    assert_eq!(
        serde_json::from_str::<Count>(&early[0].payload).unwrap(),
        Count { n: 3 }
    );
    assert_eq!((due_stats.ready, due_stats.scheduled), (2, 0));
    assert_eq!(due.len(), 2);
}

// --- Failures, retries, dead letters ----------------------------------------------------------

async fn a_failing_job_is_retried_with_backoff_then_dead_lettered_with_its_payload_attempts_and_error(
    queue: Queue,
) {
    let runs: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut registry = Registry::new();
    let log = runs.clone();
    registry.register::<Flaky, _>(move |_job: Flaky, ctx: JobContext| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(Instant::now());
            Err(JobFailure::new(format!("boom on attempt {}", ctx.attempt)))
        }
    });
    let options = WorkerOptions {
        max_attempts: 3,
        backoff_base: Duration::from_millis(100),
        jitter: Jitter::None,
        ..fast()
    };
    let before = Utc::now();
    let enqueued = queue
        .push(&Flaky {
            note: "keep me".into(),
        })
        .await
        .unwrap();

    drain(&queue, registry, options).await;

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 3);
    // The store's wall clock and this process's monotonic one may drift apart by a hair.
    let slack = Duration::from_millis(2);
    assert!(
        runs[1] - runs[0] >= Duration::from_millis(100) - slack,
        "{runs:?}"
    );
    assert!(
        runs[2] - runs[1] >= Duration::from_millis(200) - slack,
        "{runs:?}"
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.dead, stats.failed, stats.processed), (1, 3, 0));
    let dead = queue.dead_list(10, 0).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, enqueued.id);
    assert_eq!(dead[0].kind, "flaky");
    assert_eq!(dead[0].payload, json!({"note": "keep me"}));
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("boom on attempt 3"));
    let tolerance = chrono::Duration::seconds(1);
    assert!(dead[0].enqueued_at >= before - tolerance);
    assert!(dead[0].failed_at >= dead[0].enqueued_at + chrono::Duration::milliseconds(250));
    assert!(dead[0].failed_at <= Utc::now() + tolerance);
}

async fn a_permanent_failure_skips_the_remaining_attempts(queue: Queue) {
    let mut registry = Registry::new();
    registry.register::<Flaky, _>(|job: Flaky, _ctx: JobContext| async move {
        Err(JobFailure::permanent(format!("{} is gone", job.note)))
    });
    queue
        .push(&Flaky {
            note: "booking".into(),
        })
        .await
        .unwrap();

    drain(&queue, registry, fast()).await;

    let dead = queue.dead_list(10, 0).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("booking is gone"));
}

async fn poison_jobs_end_in_the_dead_letter_queue_while_other_jobs_keep_flowing(queue: Queue) {
    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let mut registry = counting(&seen);
    registry.register::<Panicky, _>(|_job: Panicky, _ctx: JobContext| async move {
        panic!("the handler tripped over itself");
    });
    let poison = vec![
        JobSpec::new("count", json!({"n": "not a number"})),
        JobSpec::new("nobody-handles-this", json!({})),
        JobSpec::from_job(&Panicky).unwrap(),
    ];
    queue.push_specs(poison).await.unwrap();
    let good: Vec<Count> = (0..60).map(|n| Count { n }).collect();
    queue.push_many(&good).await.unwrap();
    let options = WorkerOptions {
        max_attempts: 2,
        ..fast()
    };

    let summary = drain(&queue, registry, options).await;

    assert_eq!(seen.lock().unwrap().len(), 60);
    assert!(seen.lock().unwrap().values().all(|&runs| runs == 1));
    assert_eq!((summary.succeeded, summary.failed), (60, 6));
    let mut errors: Vec<String> = queue
        .dead_list(10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|d| format!("{}: {}", d.kind, d.last_error.unwrap_or_default()))
        .collect();
    errors.sort();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("count: payload does not decode as a count job"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        r#"nobody-handles-this: no handler is registered for job kind "nobody-handles-this""#
    );
    assert_eq!(
        errors[2],
        "panicky: handler panicked: the handler tripped over itself"
    );
}

// --- Leases -----------------------------------------------------------------------------------

async fn a_job_of_a_dead_worker_is_reclaimed_after_the_visibility_timeout(queue: Queue) {
    let enqueued = queue.push(&Count { n: 1 }).await.unwrap();
    // A worker reserves the job and is killed: it never completes it nor extends the lease.
    // A lease long enough for the second look to come inside it on a busy machine; the third
    // waits from after the first reserve returned, so the lease has always run out by then.
    let visibility = Duration::from_secs(3);
    let first = reserve(&queue, 1, visibility).await;
    let reserved = tokio::time::Instant::now();

    let too_soon = reserve(&queue, 1, LEASE).await;
    assert!(
        reserved.elapsed() < visibility,
        "the second look came too late"
    );
    tokio::time::sleep_until(reserved + visibility + Duration::from_millis(200)).await;
    let reclaimed = reserve(&queue, 1, LEASE).await;
    let stats = queue.stats().await.unwrap();

    assert_eq!(first[0].id, enqueued.id);
    assert!(too_soon.is_empty());
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].id, enqueued.id);
    assert_eq!(reclaimed[0].attempt, 2);
    assert_eq!((stats.in_flight, stats.failed), (1, 1));
}

async fn a_stale_lease_can_neither_complete_nor_fail_nor_extend_the_job(queue: Queue) {
    queue.push(&Count { n: 1 }).await.unwrap();
    let stale = reserve(&queue, 1, Duration::from_millis(500)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let current = reserve(&queue, 1, LEASE).await;
    let backend = queue.backend();

    let completed = backend.complete(&[stale[0].lease()]).await.unwrap();
    let failed = backend.fail(&[failure(&stale[0], "late")]).await.unwrap();
    let released = backend.release(&[stale[0].lease()]).await.unwrap();
    let lost = backend.extend(&[stale[0].lease()], LEASE).await.unwrap();
    let kept = backend.extend(&[current[0].lease()], LEASE).await.unwrap();
    let stats = queue.stats().await.unwrap();

    assert_eq!((completed, failed, released), (0, 0, 0));
    assert_eq!(lost, vec![stale[0].id]);
    assert!(kept.is_empty());
    assert_eq!((stats.in_flight, stats.processed, stats.dead), (1, 0, 0));
    assert_eq!(backend.complete(&[current[0].lease()]).await.unwrap(), 1);
}

async fn a_lease_expiring_on_the_last_attempt_dead_letters_the_job(queue: Queue) {
    queue
        .push_spec(JobSpec {
            max_attempts: Some(1),
            ..JobSpec::new("count", json!({"n": 1}))
        })
        .await
        .unwrap();
    let reserved = reserve(&queue, 1, Duration::from_millis(500)).await;

    tokio::time::sleep(Duration::from_millis(700)).await;
    let again = reserve(&queue, 1, LEASE).await;
    let dead = queue.dead_list(10, 0).await.unwrap();

    assert_eq!(reserved[0].max_attempts, Some(1));
    assert!(again.is_empty());
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("lease expired")
    );
}

async fn a_slow_job_keeps_its_lease_while_its_worker_is_alive(queue: Queue) {
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = || {
        let mut registry = Registry::new();
        let runs = runs.clone();
        registry.register::<Slow, _>(move |job: Slow, _ctx: JobContext| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(job.millis)).await;
                Ok(())
            }
        });
        registry
    };
    let options = WorkerOptions {
        visibility_timeout: Duration::from_secs(1),
        ..fast()
    };
    queue.push(&Slow { millis: 2500 }).await.unwrap();

    // A second pool stands by to steal the job should its lease lapse.
    let thief = RunningPool::start(&queue, registry(), options.clone());
    let summary = drain(&queue, registry(), options).await;
    let thief = thief.stop().await;

    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(summary.succeeded + thief.succeeded, 1);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.processed, stats.failed), (1, 0));
}

// --- Unique jobs ------------------------------------------------------------------------------

async fn a_second_enqueue_of_a_live_unique_key_returns_the_live_job(queue: Queue) {
    let first = queue.push(&Once { key: "a".into() }).await.unwrap();
    let second = queue.push(&Once { key: "a".into() }).await.unwrap();
    let batch = queue
        .push_many(&[
            Once { key: "a".into() },
            Once { key: "b".into() },
            Once { key: "b".into() },
        ])
        .await
        .unwrap();
    let reserved = reserve(&queue, 10, LEASE).await;
    let while_running = queue.push(&Once { key: "a".into() }).await.unwrap();
    let stats = queue.stats().await.unwrap();

    assert!(!first.duplicate);
    assert_eq!((second.id, second.duplicate), (first.id, true));
    assert_eq!((batch[0].id, batch[0].duplicate), (first.id, true));
    assert!(!batch[1].duplicate);
    assert_eq!((batch[2].id, batch[2].duplicate), (batch[1].id, true));
    assert_eq!(reserved.len(), 2);
    assert_eq!(reserved[0].unique_key.as_deref(), Some("a"));
    assert_eq!(
        (while_running.id, while_running.duplicate),
        (first.id, true)
    );
    assert_eq!(stats.in_flight, 2);
}

async fn a_unique_key_is_released_when_its_job_completes_or_dies(queue: Queue) {
    let a = queue.push(&Once { key: "a".into() }).await.unwrap();
    let b = queue.push(&Once { key: "b".into() }).await.unwrap();
    let reserved = reserve(&queue, 10, LEASE).await;
    let (job_a, job_b) = if reserved[0].id == a.id {
        (&reserved[0], &reserved[1])
    } else {
        (&reserved[1], &reserved[0])
    };

    queue.backend().complete(&[job_a.lease()]).await.unwrap();
    queue
        .backend()
        .fail(&[failure(job_b, "dead")])
        .await
        .unwrap();
    let a_again = queue.push(&Once { key: "a".into() }).await.unwrap();
    let b_again = queue.push(&Once { key: "b".into() }).await.unwrap();

    assert!(!a_again.duplicate);
    assert_ne!(a_again.id, a.id);
    assert!(!b_again.duplicate);
    assert_ne!(b_again.id, b.id);
}

// --- Dead-letter operations -------------------------------------------------------------------

async fn dead_jobs_can_be_listed_retried_one_by_one_or_all_at_once_and_purged(queue: Queue) {
    let ids: Vec<_> = queue
        .push_many(&[Count { n: 0 }, Count { n: 1 }, Count { n: 2 }])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    for job in reserve(&queue, 10, LEASE).await {
        // One at a time, so that their death times are distinct and ordered.
        queue
            .backend()
            .fail(&[failure(&job, "nope")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let page_one = queue.dead_list(2, 0).await.unwrap();
    let page_two = queue.dead_list(2, 2).await.unwrap();
    let one = queue.dead_retry(DeadSelector::Id(ids[0])).await.unwrap();
    let one_again = queue.dead_retry(DeadSelector::Id(ids[0])).await.unwrap();
    let after_one = queue.stats().await.unwrap();
    let revived = reserve(&queue, 10, LEASE).await;
    let all = queue.dead_retry(DeadSelector::All).await.unwrap();
    let after_all = queue.stats().await.unwrap();
    for job in reserve(&queue, 10, LEASE).await {
        queue
            .backend()
            .fail(&[failure(&job, "nope")])
            .await
            .unwrap();
    }
    let purged = queue.dead_purge().await.unwrap();
    let after_purge = queue.stats().await.unwrap();

    let listed: Vec<_> = page_one.iter().chain(&page_two).map(|d| d.id).collect();
    assert_eq!(
        listed,
        vec![ids[2], ids[1], ids[0]],
        "most recently dead first"
    );
    assert_eq!((one, one_again), (1, 0));
    assert_eq!((after_one.dead, after_one.ready), (2, 1));
    assert_eq!(revived.len(), 1);
    assert_eq!((revived[0].id, revived[0].attempt), (ids[0], 1));
    assert_eq!(all, 2);
    assert_eq!((after_all.dead, after_all.ready), (0, 2));
    assert_eq!(purged, 2);
    assert_eq!(after_purge.dead, 0);
    assert!(queue.dead_list(10, 0).await.unwrap().is_empty());
}

async fn a_dead_job_whose_unique_key_was_taken_again_stays_dead_on_retry(queue: Queue) {
    queue.push(&Once { key: "k".into() }).await.unwrap();
    let job = reserve(&queue, 1, LEASE).await;
    queue
        .backend()
        .fail(&[failure(&job[0], "nope")])
        .await
        .unwrap();
    let live = queue.push(&Once { key: "k".into() }).await.unwrap();

    let retried = queue.dead_retry(DeadSelector::All).await.unwrap();
    let stats = queue.stats().await.unwrap();

    assert!(!live.duplicate);
    assert_eq!(retried, 0);
    assert_eq!((stats.dead, stats.ready), (1, 1));
}

// --- Operating --------------------------------------------------------------------------------

async fn stats_count_outcomes_and_list_live_workers_with_their_busy_handlers(queue: Queue) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut registry = Registry::new();
    let held = gate.clone();
    registry.register::<Slow, _>(move |_job: Slow, _ctx: JobContext| {
        let held = held.clone();
        async move {
            let _permit = held.acquire().await.map_err(JobFailure::from)?;
            Ok(())
        }
    });
    registry.register::<Flaky, _>(|_job: Flaky, _ctx: JobContext| async move {
        Err(JobFailure::permanent("no"))
    });
    let options = WorkerOptions {
        concurrency: 4,
        worker_id: Some("pool-a".into()),
        ..fast()
    };
    queue
        .push_many(&[Slow { millis: 0 }, Slow { millis: 0 }])
        .await
        .unwrap();
    let pool = RunningPool::start(&queue, registry, options);
    // A pool that reported once and then died.
    queue
        .backend()
        .heartbeat(&WorkerBeat {
            id: "ghost".into(),
            concurrency: 2,
            busy: 1,
            ttl: Duration::from_millis(1500),
        })
        .await
        .unwrap();

    let busy = wait_for(&queue, Duration::from_secs(5), "two busy handlers", |s| {
        s.busy == 3 && s.workers.len() == 2
    })
    .await;
    // Only the live pool left, reporting its two busy handlers (a pool whose beat came late under
    // load is a passing state, not the awaited one).
    let ghost_gone = wait_for(&queue, Duration::from_secs(5), "the ghost to expire", |s| {
        s.workers.len() == 1 && s.workers[0].id == "pool-a" && s.busy == 2
    })
    .await;
    gate.add_permits(2);
    queue.push(&Flaky { note: "x".into() }).await.unwrap();
    let done = wait_for(&queue, Duration::from_secs(5), "the jobs to finish", |s| {
        idle(s) && s.processed == 2
    })
    .await;
    pool.stop().await;
    let stopped = queue.stats().await.unwrap();

    let pool_a = busy.workers.iter().find(|w| w.id == "pool-a").unwrap();
    assert_eq!((pool_a.concurrency, pool_a.busy), (4, 2));
    assert!((Utc::now() - pool_a.seen_at).num_seconds().abs() < 5);
    assert_eq!(busy.in_flight, 2);
    assert_eq!(ghost_gone.workers[0].id, "pool-a");
    assert_eq!(ghost_gone.busy, 2);
    assert_eq!((done.processed, done.failed, done.dead), (2, 1, 1));
    assert!(
        stopped.workers.is_empty(),
        "a stopped pool retires its entry"
    );
}

async fn shutting_down_lets_in_flight_jobs_finish(queue: Queue) {
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    let (s, f) = (started.clone(), finished.clone());
    registry.register::<Slow, _>(move |job: Slow, _ctx: JobContext| {
        let (s, f) = (s.clone(), f.clone());
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(job.millis)).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    queue
        .push_many(&vec![Slow { millis: 600 }; 4])
        .await
        .unwrap();
    let pool = RunningPool::start(
        &queue,
        registry,
        WorkerOptions {
            concurrency: 4,
            ..fast()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while started.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline, "the jobs never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let summary = pool.stop().await;
    queue.push(&Slow { millis: 0 }).await.unwrap();
    let stats = queue.stats().await.unwrap();

    assert_eq!(finished.load(Ordering::SeqCst), 4);
    assert_eq!((summary.succeeded, summary.abandoned), (4, 0));
    assert_eq!((stats.processed, stats.in_flight, stats.ready), (4, 0, 1));
}

async fn jobs_still_running_at_the_drain_timeout_go_back_to_the_queue_without_losing_an_attempt(
    queue: Queue,
) {
    let started = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    let s = started.clone();
    registry.register::<Slow, _>(move |job: Slow, _ctx: JobContext| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(job.millis)).await;
            Ok(())
        }
    });
    let enqueued = queue.push(&Slow { millis: 60_000 }).await.unwrap();
    let pool = RunningPool::start(
        &queue,
        registry,
        WorkerOptions {
            drain_timeout: Duration::from_millis(300),
            ..fast()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while started.load(Ordering::SeqCst) < 1 {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let summary = pool.stop().await;
    let stats = queue.stats().await.unwrap();
    let again = reserve(&queue, 1, LEASE).await;

    assert_eq!((summary.succeeded, summary.abandoned), (0, 1));
    assert_eq!((stats.ready, stats.in_flight, stats.failed), (1, 0, 0));
    assert_eq!((again[0].id, again[0].attempt), (enqueued.id, 1));
}

async fn hundreds_of_jobs_across_several_pools_are_each_processed_exactly_once(queue: Queue) {
    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let jobs: Vec<Count> = (0..600).map(|n| Count { n }).collect();
    queue.push_many(&jobs).await.unwrap();
    let options = WorkerOptions {
        batch_size: 20,
        ..fast()
    };

    let pools: Vec<RunningPool> = (0..3)
        .map(|_| RunningPool::start(&queue, counting(&seen), options.clone()))
        .collect();
    wait_for(&queue, Duration::from_secs(30), "the queue to drain", idle).await;
    let mut succeeded = 0;
    for pool in pools {
        succeeded += pool.stop().await.succeeded;
    }

    let stats = queue.stats().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 600);
    assert!(seen.values().all(|&runs| runs == 1));
    assert_eq!(succeeded, 600);
    assert_eq!((stats.processed, stats.failed), (600, 0));
}

async fn a_periodic_job_is_enqueued_once_per_tick_however_many_schedulers_run(queue: Queue) {
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut registry = Registry::new();
    let log = keys.clone();
    registry.register::<Tick, _>(move |_job: Tick, ctx: JobContext| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(ctx.unique_key.unwrap_or_default());
            Ok(())
        }
    });
    let pool = RunningPool::start(&queue, registry, fast());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let schedulers: Vec<_> = (0..3)
        .map(|_| {
            let periodic = Periodic::new(queue.clone())
                .every(Duration::from_secs(1), &Tick)
                .unwrap();
            let mut stopped = stopped.clone();
            tokio::spawn(periodic.run(async move {
                let _ = stopped.changed().await;
            }))
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(2600)).await;
    stop.send(true).unwrap();
    for scheduler in schedulers {
        scheduler.await.unwrap();
    }
    wait_for(&queue, Duration::from_secs(5), "the ticks to run", idle).await;
    pool.stop().await;

    let keys = keys.lock().unwrap().clone();
    let mut ticks: Vec<u64> = keys
        .iter()
        .map(|k| k.strip_prefix("tick:").unwrap().parse().unwrap())
        .collect();
    ticks.sort_unstable();
    assert!((3..=4).contains(&ticks.len()), "{keys:?}");
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "one job per consecutive tick: {keys:?}"
    );
}
