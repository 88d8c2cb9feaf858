//! The read replica: a real streaming standby of the test server (`scripts/test` starts it with
//! `pg_basebackup -R`). Pausing its replay makes it lag on purpose, so these tests take turns
//! (`.config/nextest.toml`) and each resumes it first.

use std::time::Duration;

use clubpulse_domain::Role;
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection, PgPool};

use crate::helpers::{Setup, TestApp, TestUser, each, eventually, local, metric, urlencode};

/// The standby the test command runs, through its `postgres` database.
struct Standby {
    url: String,
}

impl Standby {
    fn new() -> Self {
        let url = std::env::var("CLUBPULSE_TEST_REPLICA_URL")
            .expect("CLUBPULSE_TEST_REPLICA_URL is not set: run the tests through scripts/test");
        Self { url }
    }

    /// The same database as `primary_url` names, on the standby.
    fn url_of(&self, primary_url: &str) -> String {
        let (_, name) = primary_url.rsplit_once('/').unwrap();
        let (base, _) = self.url.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }

    async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }

    async fn pause(&self) {
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut self.admin().await)
            .await
            .unwrap();
    }

    async fn resume(&self) {
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut self.admin().await)
            .await
            .unwrap();
    }

    /// Waits until the standby has replayed everything the primary has written so far.
    async fn catch_up(&self, primary: &PgPool) {
        let position: i64 =
            sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")
                .fetch_one(primary)
                .await
                .unwrap();
        let standby = PgPool::connect(&self.url).await.unwrap();
        eventually(
            Duration::from_secs(30),
            "the standby to catch up",
            || async {
                let replayed: Option<i64> =
                    sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint")
                        .fetch_one(&standby)
                        .await
                        .unwrap();
                // NULL for a moment after the standby starts.
                (replayed >= Some(position)).then_some(())
            },
        )
        .await;
        standby.close().await;
    }
}

/// A server set up as `base` whose reads may go to `replica_url` while it lags by at most
/// `max_lag_seconds`.
async fn spawn(replica_url: String, max_lag_seconds: u64, base: Setup) -> TestApp {
    let mut setup = base;
    setup.config.database.replica_url = Some(clubpulse_config::Secret::new(replica_url));
    setup.config.database.replica_max_lag_seconds = max_lag_seconds;
    TestApp::spawn_with(setup).await
}

/// A server set up as `base` on a fresh database with the standby as its replica, once the
/// standby has the database and reports healthy.
async fn spawn_on_standby(standby: &Standby, max_lag_seconds: u64, base: Setup) -> TestApp {
    let database_url = crate::helpers::fresh_database().await;
    // The standby must have the migrated database before anything reads it.
    let primary = PgPool::connect(&database_url).await.unwrap();
    standby.catch_up(&primary).await;
    primary.close().await;
    let setup = Setup {
        database_url: Some(database_url.clone()),
        ..base
    };
    let app = spawn(standby.url_of(&database_url), max_lag_seconds, setup).await;
    replica_state(&app, "healthy").await;
    app
}

/// Waits until `/ready` reports the replica in `state`; returns the whole report.
async fn replica_state(app: &TestApp, state: &str) -> Value {
    eventually(
        Duration::from_secs(20),
        &format!("the replica to be {state}"),
        || async {
            let ready: Value = app.get("/ready", None).await.json().await.ok()?;
            (ready["replica"]["status"] == state).then_some(ready)
        },
    )
    .await
}

/// The names of the live facilities, as `user` (or anyone) lists them.
async fn names(app: &TestApp, user: Option<&TestUser>) -> Vec<String> {
    let response = app
        .get(
            "/api/v1/facilities?limit=200",
            user.map(|u| u.token.as_str()),
        )
        .await;
    assert_eq!(response.status(), 200);
    let listed: Vec<Value> = response.json().await.unwrap();
    listed
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

fn name(facility: &Value) -> String {
    facility["name"].as_str().unwrap().to_owned()
}

const ROUTED_TO_REPLICA: &str = r#"clubpulse_db_replica_routed_reads_total{target="replica"}"#;
const ROUTED_TO_PRIMARY: &str = r#"clubpulse_db_replica_routed_reads_total{target="primary"}"#;

#[tokio::test]
async fn reads_come_from_the_replica_but_a_writer_reads_their_own_writes_on_any_instance() {
    let standby = Standby::new();
    standby.resume().await;
    let a = spawn_on_standby(&standby, 60, Setup::default()).await;
    let b = spawn(
        standby.url_of(&a.database_url),
        60,
        a.beside(Setup::default()),
    )
    .await;
    replica_state(&b, "healthy").await;
    let admin = a.user(Role::Admin).await;
    let member = a.user(Role::Member).await;
    let old = a.facility(&admin, "Europe/Madrid", json!({})).await;
    standby.catch_up(&a.db).await;

    // The standby stops replaying: from now on it misses every write.
    standby.pause().await;
    let new = a.facility(&admin, "Europe/Madrid", json!({})).await;
    let (start, end) = (
        local("Europe/Madrid", 2, 10, 0),
        local("Europe/Madrid", 2, 11, 0),
    );
    let held = a.hold(&member, &old, &start, &end).await;
    assert_eq!(held.status(), 201);
    let hold: Value = held.json().await.unwrap();

    // Anyone else reads the replica, on either instance: the new facility is not there yet.
    for app in [&a, &b] {
        let seen = names(app, None).await;
        assert!(seen.contains(&name(&old)), "{seen:?}");
        assert!(!seen.contains(&name(&new)), "{seen:?}");
    }
    // The admin who made it, and the member who held, read the primary on either instance.
    for app in [&a, &b] {
        assert!(names(app, Some(&admin)).await.contains(&name(&new)));
        let mine: Vec<Value> = app
            .get("/api/v1/bookings", Some(&member.token))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["id"], hold["id"]);
    }
    // An availability rebuild refuses the standby that has not replayed the hold: with its days
    // dropped from the cache, the held slot is still held for everyone.
    a.state.bookings.state().availability.clear().await.unwrap();
    let week: Value = a
        .get(
            &format!(
                "/api/v1/facilities/{}/availability?from={}&to={}",
                old["id"].as_str().unwrap(),
                urlencode(&start),
                urlencode(&end)
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(each(&week["slots"], "state"), ["held", "held"], "{week}");

    // Replaying again, the replica has it all, and anonymous reads still come from it.
    standby.resume().await;
    standby.catch_up(&a.db).await;
    let before = metric(&a, ROUTED_TO_REPLICA).await;
    assert!(names(&a, None).await.contains(&name(&new)));
    assert!(metric(&a, ROUTED_TO_REPLICA).await > before);
    assert!(metric(&a, ROUTED_TO_PRIMARY).await >= 1.0);
}

#[tokio::test]
async fn a_replica_further_behind_than_the_limit_is_skipped_until_it_catches_up() {
    let standby = Standby::new();
    standby.resume().await;
    let app = spawn_on_standby(&standby, 1, Setup::default()).await;
    let admin = app.user(Role::Admin).await;
    assert_eq!(
        metric(&app, "clubpulse_db_replica_healthy").await,
        1.0,
        "healthy while it keeps up"
    );

    standby.pause().await;
    let new = app.facility(&admin, "Europe/Madrid", json!({})).await;
    // More than a second behind the facility's write: the replica is skipped, so even a reader
    // who wrote nothing sees the facility.
    let ready = replica_state(&app, "lagging").await;
    assert!(
        ready["replica"]["lag_seconds"].as_f64().unwrap() > 1.0,
        "{ready}"
    );
    assert_eq!(
        ready["status"], "ready",
        "a lagging replica leaves the instance ready"
    );
    assert!(names(&app, None).await.contains(&name(&new)));
    assert_eq!(metric(&app, "clubpulse_db_replica_healthy").await, 0.0);

    standby.resume().await;
    let ready = replica_state(&app, "healthy").await;
    assert!(
        ready["replica"]["lag_seconds"].as_f64().unwrap() <= 1.0,
        "{ready}"
    );
    let before = metric(&app, ROUTED_TO_REPLICA).await;
    assert!(names(&app, None).await.contains(&name(&new)));
    assert!(
        metric(&app, ROUTED_TO_REPLICA).await > before,
        "back on the replica"
    );
}

#[tokio::test]
async fn search_reads_the_replica_so_a_facility_indexed_while_it_is_paused_is_found_once_it_replays()
 {
    let standby = Standby::new();
    standby.resume().await;
    let app = spawn_on_standby(&standby, 60, crate::helpers::with_search()).await;
    let admin = app.user(Role::Admin).await;
    standby.pause().await;
    let court = app
        .facility(
            &admin,
            "Europe/Madrid",
            json!({"name": "Pista Azul", "description": "Pista de pádel con cristal panorámico."}),
        )
        .await;
    // Indexed on the primary by the job its creation queued.
    app.drain_jobs(Duration::from_secs(30)).await;
    let indexed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM facilities WHERE search_indexed_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(indexed, 1);

    let found = crate::search::search(&app, "pádel cristal").await;
    assert!(
        found.iter().all(|r| r["facility"]["id"] != court["id"]),
        "the paused replica has no index entry yet: {found:?}"
    );
    standby.resume().await;
    standby.catch_up(&app.db).await;
    let found = crate::search::search(&app, "pádel cristal").await;
    assert_eq!(found[0]["facility"]["id"], court["id"], "{found:?}");
}

#[tokio::test]
async fn a_replica_that_is_unreachable_or_not_a_standby_is_reported_down_and_reads_use_the_primary()
{
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = spawn(
        format!("postgres://postgres@127.0.0.1:{closed}/clubpulse"),
        5,
        Setup::default(),
    )
    .await;
    // The primary itself is no standby: its history could diverge from the primary's (a promoted
    // old replica's would), so it is never read as one.
    let primary = TestApp::spawn().await;
    let not_a_standby = spawn(
        primary.database_url.clone(),
        5,
        primary.beside(Setup::default()),
    )
    .await;

    for app in [&unreachable, &not_a_standby] {
        let ready = replica_state(app, "down").await;
        assert_eq!(ready["status"], "ready", "{ready}");
        assert!(ready["replica"]["lag_seconds"].is_null(), "{ready}");
        let admin = app.user(Role::Admin).await;
        let facility = app.facility(&admin, "Europe/Madrid", json!({})).await;
        assert!(names(app, None).await.contains(&name(&facility)));
        assert!(
            app.get(
                &format!(
                    "/api/v1/facilities/{}/availability",
                    facility["id"].as_str().unwrap()
                ),
                None
            )
            .await
            .status()
                == 200
        );
    }
}

#[tokio::test]
async fn without_a_replica_readiness_says_nothing_about_one() {
    let app = TestApp::spawn().await;
    let ready: Value = app.get("/ready", None).await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready.get("replica").is_none(), "{ready}");
    assert_eq!(metric(&app, ROUTED_TO_REPLICA).await, 0.0);
}
