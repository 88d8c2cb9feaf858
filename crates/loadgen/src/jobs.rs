//! The `jobs` scenario: the background-job queue on Redis, with no server involved.
//!
//! Enqueues `--jobs` no-op jobs with `push_many` in batches of `--job-batch` (four batches in
//! flight), then runs one worker pool in this process (`--concurrency` handlers, reserving up to
//! `--job-batch` jobs per call) until every job has been handled and acknowledged, and reports both
//! rates. Keys go under a fresh random prefix, so runs never see each other's jobs.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clubpulse_jobs::{Job, JobContext, Queue, Registry, WorkerOptions, WorkerPool};
use clubpulse_state::{RedisConn, RedisOptions};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};

/// Options of the `jobs` scenario.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// Redis for the `jobs` scenario, e.g. redis://127.0.0.1:6379 (several comma-separated nodes
    /// for a cluster).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Treat `--redis-url` as Redis Cluster seed nodes.
    #[arg(long)]
    pub redis_cluster: bool,
    /// Jobs to enqueue, then drain.
    #[arg(long, default_value_t = 100_000)]
    pub jobs: usize,
    /// Jobs per enqueue call, and most jobs per reserve.
    #[arg(long, default_value_t = 500)]
    pub job_batch: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Noop {
    n: usize,
}

impl Job for Noop {
    const KIND: &'static str = "loadgen_noop";
}

#[derive(Debug, Serialize)]
struct JobsReport {
    scenario: &'static str,
    label: String,
    jobs: usize,
    concurrency: usize,
    batch: usize,
    enqueue_seconds: f64,
    enqueue_per_s: f64,
    drain_seconds: f64,
    jobs_per_s: f64,
}

/// Enqueues, drains, reports.
pub async fn run(args: &crate::Args) -> anyhow::Result<()> {
    let options = &args.jobs;
    let url = options
        .redis_url
        .as_deref()
        .context("the jobs scenario needs --redis-url")?;
    let batch = options.job_batch.clamp(1, 1000);
    let prefix = format!("loadgen:{}:", uuid::Uuid::new_v4().simple());
    let redis = RedisConn::connect(&RedisOptions::new(url, options.redis_cluster, prefix))
        .await
        .context("connecting to Redis")?;
    let queue = Queue::redis(redis);

    let enqueue_started = Instant::now();
    let batches: Vec<Vec<Noop>> = (0..options.jobs)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|chunk| chunk.iter().map(|&n| Noop { n }).collect())
        .collect();
    futures::stream::iter(batches.iter())
        .map(|jobs| queue.push_many(jobs))
        .buffer_unordered(4)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("enqueueing")?;
    let enqueue_elapsed = enqueue_started.elapsed();

    let handled = Arc::new(AtomicUsize::new(0));
    let all_handled = Arc::new(tokio::sync::Notify::new());
    let mut registry = Registry::new();
    let (count, done, total) = (handled.clone(), all_handled.clone(), options.jobs);
    registry.register::<Noop, _>(move |_job: Noop, _ctx: JobContext| {
        if count.fetch_add(1, Ordering::Relaxed) + 1 == total {
            done.notify_one();
        }
        async { Ok(()) }
    });
    let pool_options = WorkerOptions {
        concurrency: args.concurrency,
        batch_size: batch,
        poll_interval: Duration::from_millis(10),
        ..WorkerOptions::default()
    };
    let drain_started = Instant::now();
    let summary = if options.jobs == 0 {
        None
    } else {
        Some(
            WorkerPool::run(queue.clone(), registry, pool_options, async move {
                all_handled.notified().await;
            })
            .await,
        )
    };
    let drain_elapsed = drain_started.elapsed();

    let stats = queue.stats().await.context("reading queue stats")?;
    let processed = usize::try_from(stats.processed).unwrap_or(usize::MAX);
    if processed != options.jobs || stats.ready + stats.in_flight + stats.dead > 0 {
        bail!(
            "{} jobs enqueued but {processed} processed (pool: {summary:?}, queue: {stats:?})",
            options.jobs
        );
    }
    let report = JobsReport {
        scenario: "jobs",
        label: args.label.clone(),
        jobs: options.jobs,
        concurrency: args.concurrency,
        batch,
        enqueue_seconds: enqueue_elapsed.as_secs_f64(),
        enqueue_per_s: options.jobs as f64 / enqueue_elapsed.as_secs_f64(),
        drain_seconds: drain_elapsed.as_secs_f64(),
        jobs_per_s: options.jobs as f64 / drain_elapsed.as_secs_f64(),
    };
    println!("{}", serde_json::to_string(&report)?);
    if args.markdown {
        println!(
            "| jobs | {} | {} jobs, {} handlers, batch {} | enqueue {:.0}/s | drain {:.0} jobs/s |",
            report.label,
            report.jobs,
            report.concurrency,
            report.batch,
            report.enqueue_per_s,
            report.jobs_per_s
        );
    }
    Ok(())
}
