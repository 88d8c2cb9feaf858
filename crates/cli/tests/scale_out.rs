//! Scale-out, as a whole: three `clubpulse serve` instances doing no background work and two
//! `clubpulse worker` processes, on the Redis Cluster, with a primary and its streaming standby
//! as read replica (`scripts/test` starts all of them). The member flow runs across the
//! instances round-robin, as a load balancer would send it; one instance and one worker are
//! SIGKILLed while reads are in flight; then the flow goes on on the survivors, and the
//! invariants are checked in the database.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    collections::{HashMap, HashSet},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
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

use support::signal;
use ws_client::WsClient;

const BIN: &str = env!("CARGO_BIN_EXE_clubpulse");
const WAIT: Duration = Duration::from_secs(60);
const INSTANCES: usize = 3;
const MEMBERS: usize = 12;
const COURTS: usize = 3;
const PASSWORD: &str = "a strong password";

/// One deployment's settings, shared by every process of it.
struct Deployment {
    database_url: String,
    replica_url: String,
    prefix: String,
    pool: PgPool,
}

impl Deployment {
    async fn new() -> Self {
        let database_url = clubpulse_storage::testing::fresh_database().await;
        let pool = PgPool::connect(&database_url).await.unwrap();
        let (_, name) = database_url.rsplit_once('/').unwrap();
        let standby = support::env("CLUBPULSE_TEST_REPLICA_URL");
        let (standby_base, _) = standby.rsplit_once('/').unwrap();
        let deployment = Self {
            replica_url: format!("{standby_base}/{name}"),
            database_url,
            prefix: format!("test:{}:", Uuid::new_v4().simple()),
            pool,
        };
        deployment.standby_caught_up(&standby).await;
        deployment
    }

    /// Waits until the standby has replayed the migrated database.
    async fn standby_caught_up(&self, standby_url: &str) {
        let position: i64 =
            sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")
                .fetch_one(&self.pool)
                .await
                .unwrap();
        let standby = PgPool::connect(standby_url).await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let replayed: Option<i64> =
                sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint")
                    .fetch_one(&standby)
                    .await
                    .unwrap();
            // NULL for a moment after the standby starts.
            if replayed >= Some(position) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the standby lags");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        standby.close().await;
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("CLUBPULSE_CONFIG")
            .env("DATABASE_URL", &self.database_url)
            .env("DATABASE_REPLICA_URL", &self.replica_url)
            // Several seed nodes: Redis Cluster.
            .env(
                "REDIS_URL",
                support::env("CLUBPULSE_TEST_REDIS_CLUSTER_URL"),
            )
            .env("CLUBPULSE_REDIS_PREFIX", &self.prefix)
            .env("CLUBPULSE_WORKER", "off")
            .env("CLUBPULSE_LOG", "warn")
            .env("CLUBPULSE_SEARCH", "off")
            .env("CLUBPULSE_RATE_LIMITS", "off")
            .env("CLUBPULSE_AUDIT_FLUSH_SECONDS", "1")
            // A job the killed worker was running is taken again by the other within seconds.
            .env("CLUBPULSE_JOB_VISIBILITY_SECONDS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

/// Processes of the test, killed when it ends however it ends, so a failing run leaves none behind.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A load balancer in front of the instances: each request goes to the next live instance in
/// turn; an instance that refuses the connection is taken out and the request goes to the next
/// (a write only when it never reached the instance).
#[derive(Clone)]
struct Balancer {
    client: reqwest::Client,
    bases: Arc<Vec<String>>,
    alive: Arc<Vec<AtomicBool>>,
    next: Arc<AtomicUsize>,
    /// Requests sent again to another instance after a refused connection.
    retried: Arc<AtomicUsize>,
}

impl Balancer {
    fn new(bases: Vec<String>) -> Self {
        Self {
            client: reqwest::Client::new(),
            alive: Arc::new(bases.iter().map(|_| AtomicBool::new(true)).collect()),
            bases: Arc::new(bases),
            next: Arc::new(AtomicUsize::new(0)),
            retried: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The next live instance, in turn.
    fn pick(&self) -> usize {
        for _ in 0..self.bases.len() * 2 {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len();
            if self.alive[i].load(Ordering::Relaxed) {
                return i;
            }
        }
        panic!("no instance left");
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        loop {
            let i = self.pick();
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.bases[i]));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.json().await.unwrap_or(Value::Null);
                    return (status, body);
                }
                // Only a killed instance fails to answer here. A read is sent again whatever
                // happened to it; a write only if it never reached the instance.
                Err(err) if err.is_connect() || method == reqwest::Method::GET => {
                    self.alive[i].store(false, Ordering::Relaxed);
                    self.retried.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) => panic!("{method} {path} on instance {i}: {err}"),
            }
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(token), Some(&body))
            .await
    }
}

/// Waits until `/ready` of `base` reports the replica healthy.
async fn wait_replica_healthy(base: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ready: Value = reqwest::get(format!("{base}/ready"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["replica"]["status"] == "healthy" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `[start, end)` as RFC 3339: `days` from now at `hour`:00 in Madrid, one hour long.
fn madrid(days: i64, hour: u32) -> (String, String) {
    (support::madrid(days, hour), support::madrid(days, hour + 1))
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

struct Member {
    token: String,
}

#[tokio::test]
async fn three_instances_and_two_workers_on_the_cluster_serve_the_member_flow_through_a_kill() {
    let deployment = Deployment::new().await;
    let ports: Vec<u16> = (0..INSTANCES).map(|_| support::free_port()).collect();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut servers = Children(
        ports
            .iter()
            .map(|port| {
                let mut serve = deployment.command(&["serve"]);
                serve.env("CLUBPULSE_ADDR", format!("127.0.0.1:{port}"));
                serve.spawn().unwrap()
            })
            .collect(),
    );
    let mut workers = Children(
        (0..2)
            .map(|_| deployment.command(&["worker"]).spawn().unwrap())
            .collect(),
    );
    for base in &bases {
        support::wait_healthy(base, WAIT).await;
        wait_replica_healthy(base).await;
    }
    let status = deployment
        .command(&[
            "user",
            "create",
            "--email",
            "admin@scale.test",
            "--password",
            PASSWORD,
            "--role",
            "admin",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let lb = Balancer::new(bases.clone());

    // The club and its courts, and the members, each request on the next instance.
    let (status, login) = lb
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "admin@scale.test", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let admin = login["token"].as_str().unwrap().to_owned();
    let (status, club) = lb
        .post(
            "/api/v1/clubs",
            &admin,
            json!({"name": "Scale Club", "timezone": "Europe/Madrid"}),
        )
        .await;
    assert_eq!(status, 201, "{club}");
    let mut courts = Vec::new();
    for n in 0..COURTS {
        let (status, court) = lb
            .post(
                "/api/v1/facilities",
                &admin,
                json!({"club_id": club["id"], "name": format!("Court {n}"), "sport": "padel", "price_cents": 2000}),
            )
            .await;
        assert_eq!(status, 201, "{court}");
        courts.push(court);
    }
    let mut members = Vec::new();
    for n in 0..MEMBERS {
        let email = format!("member{n}@scale.test");
        let body = json!({"email": email, "password": PASSWORD, "name": format!("Member {n}")});
        let (status, user) = lb
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/register",
                None,
                Some(&body),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        let (status, login) = lb
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        members.push(Member {
            token: login["token"].as_str().unwrap().to_owned(),
        });
    }

    // A watcher of the first court on the first instance, which survives.
    let court0_channel = format!("facility:{}", id(&courts[0]));
    let mut watcher = WsClient::connect(
        bases[0].trim_start_matches("http://").parse().unwrap(),
        &admin,
    )
    .await;
    let first_offset = watcher.subscribe(&court0_channel, None).await["offset"]
        .as_u64()
        .unwrap();

    // Every member holds a slot of their own, and reads it straight back on the next instance,
    // which reads the replica for everyone who has not just written.
    let mut expected: HashMap<String, &str> = HashMap::new();
    let mut holds = Vec::new();
    for (n, member) in members.iter().enumerate() {
        let court = &courts[n % COURTS];
        let (start, end) = madrid(2, 8 + u32::try_from(n / COURTS).unwrap());
        let (status, hold) = lb
            .post(
                "/api/v1/bookings",
                &member.token,
                json!({"facility_id": court["id"], "start": start, "end": end}),
            )
            .await;
        assert_eq!(status, 201, "{hold}");
        let (status, mine) = lb.get("/api/v1/bookings", Some(&member.token)).await;
        assert_eq!(status, 200);
        assert_eq!(
            mine[0]["id"], hold["id"],
            "a member reads their own hold back"
        );
        expected.insert(id(&hold), "held");
        holds.push((hold, start, end));
    }

    // Six members race for one slot, through every instance at once: one wins.
    let (start, end) = madrid(3, 10);
    let race = members[..6].iter().map(|member| {
        let (lb, token) = (lb.clone(), member.token.clone());
        let body = json!({"facility_id": courts[1]["id"], "start": start, "end": end});
        tokio::spawn(async move { lb.post("/api/v1/bookings", &token, body).await })
    });
    let outcomes: Vec<(u16, Value)> = futures::future::join_all(race)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<&Value> = outcomes
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for (status, body) in &outcomes {
        if *status != 201 {
            assert_eq!(
                (*status, body["code"].as_str()),
                (409, Some("slot_unavailable"))
            );
        }
    }
    expected.insert(id(winners[0]), "held");

    // Even members confirm (paying at the club).
    for (n, member) in members.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
        let booking = id(&holds[n].0);
        let (status, confirmed) = lb
            .post(
                &format!("/api/v1/bookings/{booking}/confirm"),
                &member.token,
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{confirmed}");
        expected.insert(booking, "confirmed");
    }

    // Reads in flight from every side while one instance and one worker are killed.
    let baseline = lb.next.load(Ordering::Relaxed);
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (lb, courts, token) = (lb.clone(), courts.clone(), members[r].token.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                for k in 0..40 {
                    let court = &courts[k % COURTS];
                    // Anonymous reads may come from the replica; a member's own, just after
                    // their writes, from the primary.
                    let (path, token) = match k % 3 {
                        0 => (
                            format!("/api/v1/facilities/{}/availability", id(court)),
                            None,
                        ),
                        1 => ("/api/v1/facilities".to_owned(), None),
                        _ => ("/api/v1/bookings".to_owned(), Some(token.as_str())),
                    };
                    let (status, body) = lb.get(&path, token).await;
                    assert_eq!(status, 200, "{path}: {body}");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    // Once the balancer has sent some of the reads, the second instance and the first worker die.
    while lb.next.load(Ordering::Relaxed) < baseline + 20 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    signal(&servers.0[1], Signal::SIGKILL);
    servers.0[1].wait().unwrap();
    signal(&workers.0[0], Signal::SIGKILL);
    workers.0[0].wait().unwrap();
    let answered: usize = futures::future::join_all(readers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(answered, 4 * 40, "every read answered despite the kill");

    // On the survivors: member 7 waits for member 1's slot; member 1 cancels, so member 7 is
    // offered it by the surviving worker.
    let (hold1, start1, end1) = &holds[1];
    let (status, entry) = lb
        .post(
            "/api/v1/waitlist",
            &members[7].token,
            json!({"facility_id": hold1["facility_id"], "start": start1, "end": end1}),
        )
        .await;
    assert_eq!(status, 201, "{entry}");
    for n in (1..MEMBERS).step_by(2) {
        let booking = id(&holds[n].0);
        let (status, cancelled) = lb
            .post(
                &format!("/api/v1/bookings/{booking}/cancel"),
                &members[n].token,
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{cancelled}");
        expected.insert(booking, "cancelled");
    }
    let offer = {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, entries) = lb.get("/api/v1/waitlist", Some(&members[7].token)).await;
            if entries[0]["status"] == "offered" {
                break entries[0]["booking_id"].as_str().unwrap().to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no offer: {entries}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    expected.insert(offer.clone(), "held");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, notes) = lb
            .get("/api/v1/me/notifications", Some(&members[7].token))
            .await;
        if notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "waitlist.offer")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification: {notes}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // New holds after the kill land as before.
    for (n, member) in members.iter().enumerate().take(COURTS) {
        let (start, end) = madrid(4, 9 + u32::try_from(n).unwrap());
        let (status, hold) = lb
            .post(
                "/api/v1/bookings",
                &member.token,
                json!({"facility_id": courts[0]["id"], "start": start, "end": end}),
            )
            .await;
        assert_eq!(status, 201, "{hold}");
        expected.insert(id(&hold), "held");
    }

    // Everything owed is delivered by the surviving worker.
    let deadline = tokio::time::Instant::now() + WAIT;
    while deployment.count("SELECT count(*) FROM outbox").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events left in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The invariants, in the database.
    let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status::text FROM bookings")
        .fetch_all(&deployment.pool)
        .await
        .unwrap();
    let found: HashMap<String, String> = rows
        .into_iter()
        .map(|(id, status)| (id.to_string(), status))
        .collect();
    let wanted: HashMap<String, String> = expected
        .iter()
        .map(|(id, status)| (id.clone(), (*status).to_owned()))
        .collect();
    assert_eq!(
        found, wanted,
        "every booking answered, in the state it was left in, and no other"
    );
    let overlaps = deployment
        .count(
            "SELECT count(*) FROM bookings a JOIN bookings b
               ON a.facility_id = b.facility_id AND a.id < b.id AND a.blocks && b.blocks
             WHERE a.status IN ('held', 'confirmed') AND b.status IN ('held', 'confirmed')",
        )
        .await;
    assert_eq!(overlaps, 0);
    assert_eq!(
        deployment
            .count("SELECT count(*) FROM waitlist_entries WHERE status = 'offered'")
            .await,
        1
    );
    assert!(lb.retried.load(Ordering::Relaxed) >= 1, "the kill was felt");
    let mut from_replica = 0.0;
    for base in [&bases[0], &bases[2]] {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        from_replica += text
            .lines()
            .find_map(|l| {
                l.strip_prefix(r#"clubpulse_db_replica_routed_reads_total{target="replica"} "#)
            })
            .map_or(0.0, |v| v.parse::<f64>().unwrap());
    }
    assert!(from_replica > 0.0, "anonymous reads came from the replica");

    // The surviving instance's watcher saw every event of its court, in order, none missed.
    let latest = {
        let mut fresh = WsClient::connect(
            bases[2].trim_start_matches("http://").parse().unwrap(),
            &admin,
        )
        .await;
        let subscribed = fresh.subscribe(&court0_channel, None).await;
        subscribed["offset"].as_u64().unwrap()
    };
    // Its members' holds from before the kill, and the holds made on it after.
    let court0_holds = holds
        .iter()
        .filter(|(h, _, _)| h["facility_id"] == courts[0]["id"])
        .count()
        + COURTS;
    let mut offsets = Vec::new();
    let mut held = HashSet::new();
    let mut events = Vec::new();
    while offsets.last().copied().unwrap_or(0) < latest {
        let event = watcher.next_event(&court0_channel).await;
        offsets.push(event["offset"].as_u64().unwrap());
        if event["event"] == "slot.held" {
            held.insert(event["start"].as_str().unwrap().to_owned());
        }
        events.push(event);
    }
    // A channel's first offset is seeded from the clock; from there each event is the next one.
    assert_eq!(
        first_offset, 0,
        "nothing happened on the court before the watcher came"
    );
    let first = offsets[0];
    assert_eq!(
        offsets,
        (first..=latest).collect::<Vec<_>>(),
        "contiguous offsets up to {latest}: {events:#?}"
    );
    assert_eq!(
        held.len(),
        court0_holds,
        "one slot.held per hold of the court: {events:#?}"
    );

    // The audit chain holds together, and the survivors stop cleanly.
    let verified = deployment
        .command(&["audit", "verify"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let [first, _, third] = &mut servers.0[..] else {
        unreachable!("three instances")
    };
    for child in [first, third, &mut workers.0[1]] {
        signal(child, Signal::SIGTERM);
        assert!(child.wait().unwrap().success());
    }
}
