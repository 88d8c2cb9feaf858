//! The outbox through the real binary: `clubpulse serve` SIGKILLed while confirmations are in
//! flight loses no booking's side effects, and applies none twice, once `clubpulse worker` (the
//! web instance's background work, run apart) has delivered what was owed. Real PostgreSQL and
//! Redis; `scripts/test` provides both. Slot events leave through the outbox too: watchers of an
//! instance SIGKILLed with their sockets open reconnect to another with `since` and miss nothing.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

mod support;
#[path = "../../http/tests/api/ws_client.rs"]
#[allow(dead_code)] // The API tests use all of it; this one part of it.
mod ws_client;

use support::{madrid, signal};
use ws_client::WsClient;

const BIN: &str = env!("CARGO_BIN_EXE_clubpulse");
const WAIT: Duration = Duration::from_secs(60);
/// Holds made before the kill, and so confirmations sent at once.
const BOOKINGS: usize = 60;

struct World {
    database_url: String,
    prefix: String,
    pool: PgPool,
}

impl World {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("CLUBPULSE_CONFIG")
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", support::env("CLUBPULSE_TEST_REDIS_URL"))
            .env("CLUBPULSE_REDIS_PREFIX", &self.prefix)
            .env("CLUBPULSE_LOG", "warn")
            .env("CLUBPULSE_SEARCH", "off")
            .env("CLUBPULSE_RATE_LIMITS", "off")
            .env("CLUBPULSE_MAX_ACTIVE_HOLDS", "100")
            .env("CLUBPULSE_AUDIT_FLUSH_SECONDS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

/// A running `clubpulse serve` (with `env` on top of the world's) on a fresh database, with an
/// admin and one court of a Madrid club created through its API.
struct Deployment {
    world: World,
    server: Child,
    client: reqwest::Client,
    base: String,
    admin: String,
    court: Value,
}

impl Deployment {
    async fn start(env: &[(&str, &str)]) -> Self {
        let database_url = clubpulse_storage::testing::fresh_database().await;
        let world = World {
            pool: PgPool::connect(&database_url).await.unwrap(),
            database_url,
            prefix: format!("test:{}:", Uuid::new_v4().simple()),
        };
        let port = support::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut serve = world.command(&["serve"]);
        serve.env("CLUBPULSE_ADDR", format!("127.0.0.1:{port}"));
        for (name, value) in env {
            serve.env(name, value);
        }
        let server = serve.spawn().unwrap();
        support::wait_healthy(&base, WAIT).await;
        let status = world
            .command(&[
                "user",
                "create",
                "--email",
                "admin@outbox.test",
                "--password",
                "a strong password",
                "--role",
                "admin",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let client = reqwest::Client::new();
        let admin = support::token(&client, &base, "admin@outbox.test", "a strong password").await;
        let club: Value = client
            .post(format!("{base}/api/v1/clubs"))
            .bearer_auth(&admin)
            .json(&json!({"name": "Outbox Club", "timezone": "Europe/Madrid"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let court: Value = client
            .post(format!("{base}/api/v1/facilities"))
            .bearer_auth(&admin)
            .json(&json!({"club_id": club["id"], "name": "Court 1", "sport": "padel", "price_cents": 2000}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            world,
            server,
            client,
            base,
            admin,
            court,
        }
    }
}

/// Holds `[start, end)` at `court` as `token`; the new booking's id.
async fn hold(
    client: &reqwest::Client,
    base: &str,
    court: &Value,
    token: &str,
    start: String,
    end: String,
) -> Uuid {
    let held = client
        .post(format!("{base}/api/v1/bookings"))
        .bearer_auth(token)
        .json(&json!({"facility_id": court["id"], "start": start, "end": end}))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 201);
    let held: Value = held.json().await.unwrap();
    held["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_server_killed_mid_confirmations_loses_no_side_effect_and_repeats_none() {
    let Deployment {
        world,
        mut server,
        client,
        base,
        court,
        ..
    } = Deployment::start(&[]).await;
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "ana@outbox.test", "password": "a strong password", "name": "Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let member = support::token(&client, &base, "ana@outbox.test", "a strong password").await;
    let mut holds = Vec::new();
    for i in 0..BOOKINGS {
        let day = i64::try_from(i / 3).unwrap() + 1;
        let hour = 9 + 2 * u32::try_from(i % 3).unwrap();
        let (start, end) = (madrid(day, hour), madrid(day, hour + 1));
        holds.push(hold(&client, &base, &court, &member, start, end).await);
    }

    // Every confirmation at once; the server dies when a third of them have been answered.
    let answered = Arc::new(AtomicUsize::new(0));
    let confirmations: Vec<_> = holds
        .iter()
        .map(|id| {
            let (client, base, member, answered) = (
                client.clone(),
                base.clone(),
                member.clone(),
                answered.clone(),
            );
            let id = *id;
            tokio::spawn(async move {
                let response = client
                    .post(format!("{base}/api/v1/bookings/{id}/confirm"))
                    .bearer_auth(&member)
                    .json(&json!({}))
                    .send()
                    .await;
                answered.fetch_add(1, Ordering::SeqCst);
                (id, response.map(|r| r.status().as_u16()).ok())
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while answered.load(Ordering::SeqCst) < BOOKINGS / 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no confirmation answered"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    signal(&server, Signal::SIGKILL);
    server.wait().unwrap();
    let mut accepted = Vec::new();
    for confirmation in confirmations {
        if let (id, Some(200)) = confirmation.await.unwrap() {
            accepted.push(id);
        }
    }

    let owed = world.count("SELECT count(*) FROM outbox").await;
    eprintln!(
        "{} of {BOOKINGS} confirmations accepted before the kill; {owed} outbox events owed",
        accepted.len()
    );

    // The background work of the deployment, run on its own.
    let mut worker = world.command(&["worker"]).spawn().unwrap();
    let confirmed = "SELECT count(*) FROM bookings WHERE status = 'confirmed'";
    let chained = "SELECT count(*) FROM audit_log WHERE action = 'booking.confirmed'";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = world.count("SELECT count(*) FROM outbox").await;
        if left == 0 && world.count(chained).await == world.count(confirmed).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} outbox events left, or confirmations not chained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&worker, Signal::SIGTERM);
    assert!(worker.wait().unwrap().success());

    let status: HashMap<Uuid, String> =
        sqlx::query_as::<_, (Uuid, String)>("SELECT id, status FROM bookings")
            .fetch_all(&world.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for id in &accepted {
        assert_eq!(status[id], "confirmed", "an accepted confirmation was lost");
    }
    let audited: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT target, action, count(*) FROM audit_log WHERE target LIKE 'booking:%'
         GROUP BY target, action",
    )
    .fetch_all(&world.pool)
    .await
    .unwrap();
    let times = |id: &Uuid, action: &str| {
        audited
            .iter()
            .find(|(t, a, _)| *t == format!("booking:{id}") && a == action)
            .map_or(0, |(_, _, n)| *n)
    };
    for id in &holds {
        assert_eq!(times(id, "booking.held"), 1, "booking {id} held");
        let want = i64::from(status[id] == "confirmed");
        assert_eq!(
            times(id, "booking.confirmed"),
            want,
            "booking {id} confirmed"
        );
    }
    assert!(
        audited.iter().all(|(_, _, n)| *n == 1),
        "no event recorded twice: {audited:?}"
    );
    let verified = world.command(&["audit", "verify"]).status().unwrap();
    assert!(verified.success(), "the chain is intact");
}

#[tokio::test]
async fn holds_expire_with_web_instances_doing_no_background_work_and_a_worker_beside_them() {
    let Deployment {
        world,
        mut server,
        client,
        base,
        admin,
        court,
    } = Deployment::start(&[("CLUBPULSE_WORKER", "off"), ("CLUBPULSE_HOLD_SECONDS", "2")]).await;
    let mut worker = world
        .command(&["worker"])
        .env("CLUBPULSE_SWEEP_INTERVAL_MS", "200")
        .spawn()
        .unwrap();
    let id = hold(&client, &base, &court, &admin, madrid(1, 10), madrid(1, 11)).await;

    // Nobody asks about the hold again: the worker's sweeper expires it, and its relay records it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status,): (String,) = sqlx::query_as("SELECT status FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&world.pool)
            .await
            .unwrap();
        let expired_events = world
            .count(&format!(
                "SELECT count(*) FROM audit_log WHERE action = 'booking.expired' AND target = 'booking:{id}'"
            ))
            .await;
        if status == "expired" && expired_events == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hold is still {status}, its expiry chained {expired_events} times"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for child in [&mut server, &mut worker] {
        signal(child, Signal::SIGTERM);
        assert!(child.wait().unwrap().success());
    }
}

/// Starts one more `clubpulse serve` of the same deployment; its base URL.
async fn another_instance(world: &World) -> (Child, String) {
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = world
        .command(&["serve"])
        .env("CLUBPULSE_ADDR", format!("127.0.0.1:{port}"))
        .spawn()
        .unwrap();
    support::wait_healthy(&base, WAIT).await;
    (server, base)
}

fn addr(base: &str) -> std::net::SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test]
async fn watchers_of_an_instance_killed_with_sockets_open_reconnect_elsewhere_and_miss_nothing() {
    let Deployment {
        world,
        mut server,
        client,
        base,
        admin,
        court,
    } = Deployment::start(&[]).await;
    let (mut other, other_base) = another_instance(&world).await;
    let channel = format!("facility:{}", court["id"].as_str().unwrap());

    // Three watchers on the first instance; the bookings are made on the second.
    let mut watchers = Vec::new();
    for _ in 0..3 {
        let mut socket = WsClient::connect(addr(&base), &admin).await;
        socket.subscribe(&channel, None).await;
        watchers.push(socket);
    }
    let first = hold(
        &client,
        &other_base,
        &court,
        &admin,
        madrid(1, 10),
        madrid(1, 11),
    )
    .await;
    let mut seen = 0;
    for socket in &mut watchers {
        let event = socket.next_event(&channel).await;
        assert_eq!(event["event"], "slot.held");
        seen = event["offset"].as_u64().unwrap();
    }

    signal(&server, Signal::SIGKILL);
    server.wait().unwrap();
    drop(watchers);

    // While nobody watches: a cancellation and a new hold.
    let cancelled = client
        .post(format!("{other_base}/api/v1/bookings/{first}/cancel"))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    hold(
        &client,
        &other_base,
        &court,
        &admin,
        madrid(1, 12),
        madrid(1, 13),
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while world.count("SELECT count(*) FROM outbox").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events left in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for _ in 0..3 {
        let mut socket = WsClient::connect(addr(&other_base), &admin).await;
        let subscribed = socket.subscribe(&channel, Some(seen)).await;
        assert_eq!(subscribed["recovered"], true);
        let released = socket.next_event(&channel).await;
        assert_eq!(released["event"], "slot.released");
        assert_eq!(released["reason"], "cancelled");
        assert_eq!(released["offset"], seen + 1);
        let held = socket.next_event(&channel).await;
        assert_eq!(held["event"], "slot.held");
        assert_eq!(held["offset"], seen + 2);
        assert_eq!(subscribed["offset"], seen + 2);
        socket.send(json!({"type": "ping"})).await;
        assert_eq!(
            socket.next_message().await,
            json!({"type": "pong"}),
            "nothing more"
        );
    }
    signal(&other, Signal::SIGTERM);
    assert!(other.wait().unwrap().success());
}
