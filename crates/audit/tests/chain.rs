//! The audit chain against real PostgreSQL and Redis: the hand-over lands every event exactly once,
//! the log refuses changes, and each kind of tampering is named at the right seq.
//!
//! `CLUBPULSE_TEST_DATABASE_URL` and `CLUBPULSE_TEST_REDIS_URL` come from `scripts/test`.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::sync::Arc;

use clubpulse_audit::{
    AuditBuffer, AuditEvent, AuditLog, Damage, ExpectedHead, Flusher, PgInbox, RedisBuffer,
    Verdict, flush, listing, verify,
};
use clubpulse_state::{RedisConn, RedisOptions};
use sqlx::PgPool;
use uuid::Uuid;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test"))
}

async fn fresh_pool() -> PgPool {
    PgPool::connect(&clubpulse_storage::testing::fresh_database().await)
        .await
        .unwrap()
}

async fn redis() -> RedisConn {
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let options = RedisOptions::new(&env("CLUBPULSE_TEST_REDIS_URL"), false, prefix);
    RedisConn::connect(&options).await.unwrap()
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("booking.held")
        .actor(Uuid::new_v4())
        .target("booking", Uuid::new_v4())
        .ip("192.0.2.1")
        .detail("n", i64::try_from(i).unwrap())
}

async fn chained_ids(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT event_id FROM audit_log ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn intact_rows(pool: &PgPool) -> u64 {
    match verify(pool, None).await.unwrap() {
        Verdict::Intact { rows, .. } => rows,
        Verdict::Broken(broken) => panic!("the chain is broken: {broken:?}"),
    }
}

/// A chain of `n` events, for the tampering tests.
async fn chain_of(n: usize) -> PgPool {
    let pool = fresh_pool().await;
    // Several flushes, so that there are several anchors.
    for chunk in (0..n).collect::<Vec<_>>().chunks(7) {
        flush::append(&pool, chunk.iter().map(|&i| event(i)).collect())
            .await
            .unwrap();
    }
    assert_eq!(intact_rows(&pool).await, n as u64);
    pool
}

/// Runs `sql` the way an attacker with the database's superuser would: triggers off.
async fn tamper(pool: &PgPool, statements: &[&str]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn broken(pool: &PgPool) -> (i64, Damage) {
    match verify(pool, None).await.unwrap() {
        Verdict::Broken(b) => (b.seq, b.damage),
        Verdict::Intact { .. } => panic!("tampering went unnoticed"),
    }
}

#[tokio::test]
async fn events_buffered_in_redis_are_chained_once_in_order_even_with_racing_flushers() {
    let pool = fresh_pool().await;
    let log = AuditLog::new(Some(redis().await), pool.clone(), true);
    let events: Vec<AuditEvent> = (0..1_234).map(event).collect();
    for e in &events {
        log.record(e.clone()).await;
    }

    // Four instances flushing at the same moment, with small batches.
    let flushers: Vec<Flusher> = (0..4)
        .map(|_| log.flusher(pool.clone()).with_batch(100))
        .collect();
    let chained: usize = futures_join(flushers.iter().map(Flusher::flush)).await;

    assert_eq!(
        chained,
        events.len(),
        "each event chained by exactly one flusher"
    );
    assert_eq!(
        chained_ids(&pool).await,
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        "in the order recorded, no duplicates"
    );
    assert_eq!(log.flusher(pool.clone()).backlog().await.unwrap(), 0);
    assert_eq!(intact_rows(&pool).await, 1_234);
}

async fn futures_join(
    flushes: impl Iterator<Item = impl Future<Output = Result<usize, clubpulse_audit::AuditError>>>,
) -> usize {
    let handles: Vec<_> = flushes.collect();
    let mut total = 0;
    for result in futures::future::join_all(handles).await {
        total += result.unwrap();
    }
    total
}

#[tokio::test]
async fn a_flusher_killed_between_commit_and_removal_duplicates_nothing() {
    let pool = fresh_pool().await;
    let buffer = RedisBuffer::new(redis().await);
    for i in 0..50 {
        buffer.append(&event(i)).await.unwrap();
    }
    // What a flusher does up to its commit, and then it dies: the batch stays in the buffer.
    let batch = buffer.read(30).await.unwrap();
    flush::append(&pool, batch.into_iter().map(|b| b.event).collect())
        .await
        .unwrap();
    assert_eq!(buffer.depth().await.unwrap(), 50);

    let buffers: Vec<Arc<dyn AuditBuffer>> = vec![Arc::new(buffer.clone())];
    let chained = Flusher::new(pool.clone(), buffers).flush().await.unwrap();

    assert_eq!(chained, 20, "only the events not chained before");
    assert_eq!(buffer.depth().await.unwrap(), 0);
    assert_eq!(intact_rows(&pool).await, 50);
}

#[tokio::test]
async fn without_redis_events_wait_in_the_database_inbox() {
    let pool = fresh_pool().await;
    let log = AuditLog::new(None, pool.clone(), true);
    for i in 0..10 {
        log.record(event(i)).await;
    }
    let inbox = PgInbox::new(pool.clone());
    assert_eq!(inbox.depth().await.unwrap(), 10);

    assert_eq!(log.flusher(pool.clone()).flush().await.unwrap(), 10);
    assert_eq!(inbox.depth().await.unwrap(), 0);
    assert_eq!(intact_rows(&pool).await, 10);
}

#[tokio::test]
async fn a_disabled_log_records_nothing() {
    let pool = fresh_pool().await;
    let log = AuditLog::new(None, pool.clone(), false);
    log.record(event(1)).await;
    assert_eq!(log.flusher(pool.clone()).backlog().await.unwrap(), 0);
}

#[tokio::test]
async fn an_undecodable_buffer_entry_is_chained_as_such_instead_of_blocking_the_rest() {
    let pool = fresh_pool().await;
    let conn = redis().await;
    let buffer = RedisBuffer::new(conn.clone());
    buffer.append(&event(1)).await.unwrap();
    let _: String = conn
        .query(
            redis::cmd("XADD")
                .arg(conn.key("audit:events"))
                .arg("*")
                .arg("e")
                .arg("{not json"),
        )
        .await
        .unwrap();
    buffer.append(&event(2)).await.unwrap();

    let buffers: Vec<Arc<dyn AuditBuffer>> = vec![Arc::new(buffer)];
    assert_eq!(
        Flusher::new(pool.clone(), buffers).flush().await.unwrap(),
        3
    );
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        actions,
        ["booking.held", "audit.undecodable", "booking.held"]
    );
}

#[tokio::test]
async fn the_log_refuses_update_delete_and_truncate() {
    let pool = chain_of(3).await;
    for sql in [
        "UPDATE audit_log SET action = 'auth.logout' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 3",
        "TRUNCATE audit_log",
        "DELETE FROM audit_anchor",
        "UPDATE audit_anchor SET seq = 1",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        let code = err.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}");
    }
    assert_eq!(intact_rows(&pool).await, 3);
}

#[tokio::test]
async fn an_edited_row_is_named() {
    let pool = chain_of(20).await;
    tamper(
        &pool,
        &["UPDATE audit_log SET details = '{\"n\": 999}' WHERE seq = 9"],
    )
    .await;
    assert_eq!(broken(&pool).await, (9, Damage::Edited));
}

#[tokio::test]
async fn an_edited_row_with_a_recomputed_hash_is_still_named() {
    let pool = chain_of(20).await;
    // Rewrite seq 9's actor and give it the hash its new contents deserve.
    let row = listing::list(
        &pool,
        &listing::Filter {
            before_seq: Some(10),
            ..Default::default()
        },
        1,
    )
    .await
    .unwrap()
    .remove(0);
    let mut forged = row.event.clone();
    forged.actor_id = Some(Uuid::new_v4());
    let hash = clubpulse_audit::chain::digest(9, &forged, &row.prev_hash);
    let sql = format!(
        "UPDATE audit_log SET actor_id = '{}', hash = '\\x{}' WHERE seq = 9",
        forged.actor_id.unwrap(),
        hex::encode(hash)
    );
    tamper(&pool, &[&sql]).await;
    assert_eq!(broken(&pool).await, (9, Damage::Edited));
}

#[tokio::test]
async fn a_deleted_row_is_named() {
    let pool = chain_of(20).await;
    tamper(&pool, &["DELETE FROM audit_log WHERE seq = 12"]).await;
    assert_eq!(broken(&pool).await, (12, Damage::Deleted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_verified_while_flushes_keep_landing_is_intact_every_time() {
    let pool = chain_of(20).await;
    let appending = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let appender = {
        let (pool, appending) = (pool.clone(), appending.clone());
        tokio::spawn(async move {
            let mut flushes = 0;
            while appending.load(std::sync::atomic::Ordering::Relaxed) {
                flush::append(&pool, (0..3).map(event).collect())
                    .await
                    .unwrap();
                flushes += 1;
            }
            flushes
        })
    };
    // Each walk ends at whatever head its snapshot saw, and the anchors agree with that head. At
    // least 40 walks, and until ten flushes have landed among them.
    let mut heads: Vec<i64> = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while heads.len() < 40 || heads.last().unwrap() - heads.first().unwrap() < 30 {
        assert!(tokio::time::Instant::now() < deadline, "{heads:?}");
        match verify(&pool, None).await.unwrap() {
            Verdict::Intact { head, .. } => heads.push(head.unwrap().0),
            Verdict::Broken(broken) => panic!("a live chain reported broken: {broken:?}"),
        }
    }
    appending.store(false, std::sync::atomic::Ordering::Relaxed);
    let flushes = appender.await.unwrap();
    assert!(flushes > 0);
    assert!(heads.windows(2).all(|w| w[0] <= w[1]), "{heads:?}");
    assert!(
        heads.last() > heads.first(),
        "flushes landed during the walks: {heads:?}"
    );
}

#[tokio::test]
async fn deleting_the_newest_rows_is_caught_by_the_anchor() {
    let pool = chain_of(20).await;
    tamper(&pool, &["DELETE FROM audit_log WHERE seq > 17"]).await;
    assert_eq!(broken(&pool).await, (18, Damage::Deleted));
}

#[tokio::test]
async fn reordered_rows_are_named() {
    let pool = chain_of(20).await;
    tamper(
        &pool,
        &[
            "UPDATE audit_log SET seq = 1000 WHERE seq = 5",
            "UPDATE audit_log SET seq = 5 WHERE seq = 6",
            "UPDATE audit_log SET seq = 6 WHERE seq = 1000",
        ],
    )
    .await;
    assert_eq!(broken(&pool).await, (5, Damage::Reordered));
}

#[tokio::test]
async fn an_inserted_row_is_named_even_when_its_own_hash_is_right() {
    let pool = chain_of(20).await;
    let before = listing::list(
        &pool,
        &listing::Filter {
            before_seq: Some(8),
            ..Default::default()
        },
        1,
    )
    .await
    .unwrap()
    .remove(0);
    assert_eq!(before.seq, 7);
    let forged = clubpulse_audit::chain::link(8, event(99), before.hash);
    let e = &forged.event;
    tamper(
        &pool,
        &[
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 8",
            "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000",
            &format!(
                "INSERT INTO audit_log (seq, event_id, occurred_at, actor_id, action, target, ip, details, prev_hash, hash)
                 VALUES (8, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '\\x{}', '\\x{}')",
                e.id,
                e.occurred_at.to_rfc3339(),
                e.actor_id.unwrap(),
                e.action,
                e.target.as_deref().unwrap(),
                e.ip.as_deref().unwrap(),
                serde_json::Value::Object(e.details.clone()),
                hex::encode(forged.prev_hash),
                hex::encode(forged.hash),
            ),
        ],
    )
    .await;
    assert_eq!(broken(&pool).await, (8, Damage::Inserted));
}

#[tokio::test]
async fn an_expected_head_from_elsewhere_catches_a_rewritten_chain() {
    let pool = chain_of(5).await;
    let Verdict::Intact {
        head: Some((seq, hash)),
        ..
    } = verify(&pool, None).await.unwrap()
    else {
        panic!("an intact chain with a head");
    };
    let printed = format!("{seq}:{}", hex::encode(hash));
    let expected: ExpectedHead = printed.parse().unwrap();
    assert!(matches!(
        verify(&pool, Some(expected)).await.unwrap(),
        Verdict::Intact { .. }
    ));

    let wrong: ExpectedHead = format!("{seq}:{}", hex::encode([7u8; 32])).parse().unwrap();
    let Verdict::Broken(b) = verify(&pool, Some(wrong)).await.unwrap() else {
        panic!("a different head must not verify");
    };
    assert_eq!((b.seq, b.damage), (5, Damage::Edited));
}

#[tokio::test]
async fn the_listing_filters_by_actor_action_and_time_and_pages_newest_first() {
    let pool = fresh_pool().await;
    let alice = Uuid::new_v4();
    let mut events = Vec::new();
    for i in 0..6 {
        events.push(
            AuditEvent::new(if i % 2 == 0 {
                "auth.login.succeeded"
            } else {
                "booking.held"
            })
            .actor(alice)
            .detail("i", i),
        );
    }
    events.push(AuditEvent::new("auth.login.failed").detail("reason", "unknown_account"));
    flush::append(&pool, events).await.unwrap();

    let by_alice = listing::list(
        &pool,
        &listing::Filter {
            actor_id: Some(alice),
            ..Default::default()
        },
        4,
    )
    .await
    .unwrap();
    assert_eq!(
        by_alice.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [6, 5, 4, 3]
    );
    let next = listing::list(
        &pool,
        &listing::Filter {
            actor_id: Some(alice),
            before_seq: Some(3),
            ..Default::default()
        },
        4,
    )
    .await
    .unwrap();
    assert_eq!(next.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 1]);

    let logins = listing::list(
        &pool,
        &listing::Filter {
            action: Some("auth.".into()),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap();
    assert_eq!(logins.len(), 4);
    let exact = listing::list(
        &pool,
        &listing::Filter {
            action: Some("auth.login.failed".into()),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap();
    assert_eq!(exact.len(), 1);
    assert_eq!(exact[0].event.actor_id, None);

    let future = listing::list(
        &pool,
        &listing::Filter {
            from: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap();
    assert!(future.is_empty());
}
