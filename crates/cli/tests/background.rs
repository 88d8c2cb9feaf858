//! Background work through the real binary, killed the hard way: `clubpulse worker` SIGKILLed
//! mid-job and mid-audit-flush, poison jobs, the dead-letter commands and `clubpulse audit verify`.
//! Real PostgreSQL, Redis and SMTP sink; `scripts/test` provides the first two.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    collections::HashSet,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use clubpulse_audit::{AuditBuffer, AuditEvent, AuditLog, RedisBuffer};
use clubpulse_jobs::{JobSpec, Queue, QueueStats};
use clubpulse_mail::{PasswordReset, Template, sink::SmtpSink};
use clubpulse_state::{RedisConn, RedisOptions};
use clubpulse_workers::SendMail;
use futures::StreamExt as _;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use sqlx::PgPool;
use uuid::Uuid;

mod support;

use support::env;

const BIN: &str = env!("CARGO_BIN_EXE_clubpulse");

/// One test's world: a fresh database, a Redis key prefix, and the environment for the binary.
struct World {
    database_url: String,
    prefix: String,
    pool: PgPool,
    redis: RedisConn,
    smtp_url: Option<String>,
}

impl World {
    async fn new() -> Self {
        let database_url = clubpulse_storage::testing::fresh_database().await;
        let pool = PgPool::connect(&database_url).await.unwrap();
        let prefix = format!("test:{}:", Uuid::new_v4().simple());
        let options = RedisOptions::new(&env("CLUBPULSE_TEST_REDIS_URL"), false, prefix.clone());
        let redis = RedisConn::connect(&options).await.unwrap();
        Self {
            database_url,
            prefix,
            pool,
            redis,
            smtp_url: None,
        }
    }

    fn queue(&self) -> Queue {
        Queue::redis(self.redis.clone())
    }

    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("CLUBPULSE_CONFIG")
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", env("CLUBPULSE_TEST_REDIS_URL"))
            .env("CLUBPULSE_REDIS_PREFIX", &self.prefix)
            .env("CLUBPULSE_LOG", "warn")
            .env("CLUBPULSE_SEARCH", "off")
            .env("CLUBPULSE_AUDIT_FLUSH_SECONDS", "1")
            .env("CLUBPULSE_JOB_VISIBILITY_SECONDS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = &self.smtp_url {
            cmd.env("CLUBPULSE_SMTP_URL", url).env(
                "CLUBPULSE_MAIL_FROM",
                "Club Pulse <no-reply@clubpulse.test>",
            );
        }
        for (name, value) in extra {
            cmd.env(name, value);
        }
        cmd
    }

    fn worker(&self, extra: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(&["worker"], extra);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args, &[]).output().unwrap()
    }

    async fn stats(&self) -> QueueStats {
        self.queue().stats().await.unwrap()
    }

    /// Waits until `done` holds for the queue's stats, for at most `timeout`.
    async fn wait_for_queue(&self, timeout: Duration, done: impl Fn(&QueueStats) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.stats().await;
            if done(&stats) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the queue never got there: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn sigkill(child: &mut Child) {
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

/// SIGTERM, then the exit status of a clean drain.
fn sigterm(mut child: Child) {
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the worker stops cleanly on SIGTERM: {status}"
    );
}

fn reset_mail(to: &str, key: &str) -> SendMail {
    SendMail {
        to: to.to_owned(),
        message_key: key.to_owned(),
        template: Template::PasswordReset(PasswordReset {
            display_name: "Ana".to_owned(),
            token: "tok".to_owned(),
            expires_in_minutes: 30,
        }),
    }
}

fn idle(stats: &QueueStats) -> bool {
    stats.ready + stats.scheduled + stats.in_flight == 0
}

#[tokio::test]
async fn a_worker_killed_mid_job_has_the_job_run_again_by_another_with_the_same_message_id() {
    let sink = SmtpSink::start().await;
    let mut world = World::new().await;
    world.smtp_url = Some(sink.url());
    // The sink stores mail to slow.test at once but answers seconds later: the worker is killed
    // while it waits for that answer, after the side effect, before it could acknowledge the job.
    let key = format!("kill-{}", Uuid::new_v4().simple());
    world
        .queue()
        .push(&reset_mail("ana@slow.test", &key))
        .await
        .unwrap();

    let mut first = world.worker(&[]);
    let delivered = sink
        .wait_for(
            |m| m.to.iter().any(|t| t == "ana@slow.test"),
            Duration::from_secs(20),
        )
        .await
        .expect("the first worker delivers");
    sigkill(&mut first);
    assert_eq!(world.stats().await.in_flight, 1, "the job is still leased");

    let second = world.worker(&[]);
    world
        .wait_for_queue(Duration::from_secs(30), |s| idle(s) && s.processed >= 1)
        .await;
    sigterm(second);

    let messages = sink.messages();
    assert_eq!(messages.len(), 2, "run again after the kill");
    assert_eq!(
        messages[1].message_id, delivered.message_id,
        "the same message, recognisable as a duplicate"
    );
    let stats = world.stats().await;
    // The workers also run the periodic jobs, so `processed` counts those too.
    assert_eq!(stats.dead, 0, "{stats:?}");
}

#[tokio::test]
async fn a_poison_job_is_dead_lettered_while_the_queue_keeps_flowing_and_the_dead_commands_work() {
    let sink = SmtpSink::start().await;
    let mut world = World::new().await;
    world.smtp_url = Some(sink.url());
    let queue = world.queue();
    queue
        .push_spec(JobSpec::new(
            "mail.send",
            serde_json::json!({"not": "a mail"}),
        ))
        .await
        .unwrap();
    let mails: Vec<SendMail> = (0..20)
        .map(|i| reset_mail(&format!("member{i}@clubpulse.test"), &format!("flow-{i}")))
        .collect();
    queue.push_many(&mails).await.unwrap();

    let worker = world.worker(&[
        ("CLUBPULSE_JOB_MAX_ATTEMPTS", "2"),
        ("CLUBPULSE_JOB_BACKOFF_BASE_MS", "10"),
    ]);
    world
        .wait_for_queue(Duration::from_secs(30), |s| idle(s) && s.dead == 1)
        .await;
    sigterm(worker);
    assert_eq!(sink.messages().len(), 20, "every good job ran");

    let listed = world.run(&["jobs", "dead", "list"]);
    assert!(listed.status.success());
    let line = String::from_utf8(listed.stdout).unwrap();
    let dead: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(dead["kind"], "mail.send");
    assert_eq!(dead["attempts"], 2);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("does not decode"),
        "{dead}"
    );

    let id = dead["id"].as_str().unwrap();
    let retried = world.run(&["jobs", "dead", "retry", id]);
    assert!(retried.status.success());
    assert!(String::from_utf8_lossy(&retried.stdout).contains("1 job(s)"));
    let stats = world.stats().await;
    assert_eq!((stats.dead, stats.ready), (0, 1), "back in the queue");
    let unknown = world.run(&["jobs", "dead", "retry", &Uuid::new_v4().to_string()]);
    assert!(!unknown.status.success(), "an unknown id is an error");
    let neither = world.run(&["jobs", "dead", "retry"]);
    assert!(!neither.status.success(), "an id or --all is required");

    let worker = world.worker(&[
        ("CLUBPULSE_JOB_MAX_ATTEMPTS", "1"),
        ("CLUBPULSE_JOB_BACKOFF_BASE_MS", "10"),
    ]);
    world
        .wait_for_queue(Duration::from_secs(30), |s| idle(s) && s.dead == 1)
        .await;
    sigterm(worker);
    let purged = world.run(&["jobs", "dead", "purge"]);
    assert!(String::from_utf8_lossy(&purged.stdout).contains("1 dead job(s) purged"));
    assert_eq!(world.stats().await.dead, 0);
    let all = world.run(&["jobs", "dead", "retry", "--all"]);
    assert!(String::from_utf8_lossy(&all.stdout).contains("0 job(s)"));
}

#[tokio::test]
async fn a_flusher_killed_mid_batch_again_and_again_chains_every_event_exactly_once() {
    let world = World::new().await;
    let log = AuditLog::new(Some(world.redis.clone()), world.pool.clone(), true);
    const EVENTS: usize = 20_000;
    let events: Vec<AuditEvent> = (0..EVENTS)
        .map(|i| AuditEvent::new("booking.held").detail("n", i64::try_from(i).unwrap()))
        .collect();
    let ids: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
    futures::stream::iter(events)
        .for_each_concurrent(64, |e| {
            let log = log.clone();
            async move { log.record(e).await }
        })
        .await;
    let buffer = RedisBuffer::new(world.redis.clone());
    assert_eq!(buffer.depth().await.unwrap(), EVENTS as u64);

    let chained = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&world.pool)
            .await
            .unwrap()
    };
    let mut partial_seen = false;
    for round in 0..6u64 {
        let mut worker = world.worker(&[]);
        tokio::time::sleep(Duration::from_millis(150 + 70 * round)).await;
        sigkill(&mut worker);
        let count = chained().await;
        partial_seen |= count > 0 && count < EVENTS as i64;
    }
    assert!(partial_seen, "at least one kill landed mid-way");

    let worker = world.worker(&[]);
    // Time to install its signal handlers, should the earlier ones have chained everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while buffer.depth().await.unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the buffer drains");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(worker);

    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM audit_log ORDER BY seq")
        .fetch_all(&world.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), EVENTS, "no event duplicated");
    assert_eq!(
        stored.into_iter().collect::<HashSet<_>>(),
        ids,
        "no event lost"
    );
    let verified = world.run(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[tokio::test]
async fn audit_verify_exits_non_zero_naming_the_first_broken_seq() {
    let world = World::new().await;
    let empty = world.run(&["audit", "verify"]);
    assert!(empty.status.success());
    for chunk in 0..3 {
        let events = (0..4)
            .map(|i| AuditEvent::new("auth.logout").detail("n", chunk * 4 + i))
            .collect();
        clubpulse_audit::flush::append(&world.pool, events)
            .await
            .unwrap();
    }

    let intact = world.run(&["audit", "verify"]);
    assert!(intact.status.success());
    let printed = String::from_utf8(intact.stdout).unwrap();
    assert!(printed.contains("12 events"), "{printed}");
    let head = printed.trim().rsplit(' ').next().unwrap().to_owned();
    let with_head = world.run(&["audit", "verify", "--expect-head", &head]);
    assert!(with_head.status.success());
    let bad_head = world.run(&["audit", "verify", "--expect-head", "12:zz"]);
    assert!(!bad_head.status.success(), "a malformed head is refused");

    let mut tx = world.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET action = 'auth.login.succeeded' WHERE seq = 7")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let broken = world.run(&["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        stderr.contains("audit chain broken at seq 7: edited"),
        "{stderr}"
    );
}
