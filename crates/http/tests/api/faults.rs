//! Faults under load: the database restarted, its connections killed, Redis killed and restarted,
//! while members hold slots and read availability. During an outage the answer is a 503 with
//! `Retry-After` naming what is down, never a 500; the service recovers without a restart; and a
//! hold that was answered 201 is in the database afterwards.
//!
//! Each test starts the server it breaks (a throw-away PostgreSQL cluster, a Redis server) on a free
//! loopback port, so nothing else in the suite notices. Every load loop is bounded in requests and
//! in time.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use clubpulse_domain::Role;
use serde_json::{Value, json};
use tokio::{process::Command, time::Instant};
use uuid::Uuid;

use crate::helpers::{Setup, TestApp, TestUser, local, urlencode};

/// The longest any phase of a test may take before it fails.
const PHASE: Duration = Duration::from_secs(60);
/// Requests one load loop sends at most.
const MAX_REQUESTS: usize = 2_000;
/// How long a single request may take (a request must never hang).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    // `id -u` without a libc binding: the owner of our own /proc entry.
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(|uid| uid == "0"))
        .unwrap_or(false)
}

/// A command run as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_postgres(program: &str) -> Command {
    let bin = std::env::var("CLUBPULSE_PG_BIN_DIR")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    let program = format!("{bin}/{program}");
    let mut cmd = if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", &program]);
        cmd
    } else {
        Command::new(program)
    };
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

async fn run(mut cmd: Command, what: &str) {
    let out = tokio::time::timeout(PHASE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PHASE:?}"))
        .unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory removed when dropped, readable by the `postgres` user.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let dir =
            std::env::temp_dir().join(format!("clubpulse-faults-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PostgreSQL cluster of the test's own, on a free loopback port, stopped when dropped.
struct Postgres {
    dir: TempDir,
    port: u16,
}

impl Postgres {
    async fn start() -> Self {
        let dir = TempDir::new();
        let pg = Self {
            port: free_port(),
            dir,
        };
        let mut initdb = as_postgres("initdb");
        initdb.arg("-D").arg(pg.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
        ]);
        run(initdb, "initdb").await;
        pg.ctl(&["start"]).await;
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("pg")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl ACTION` (start, restart, stop), waiting for it to finish.
    async fn ctl(&self, action: &[&str]) {
        let mut cmd = as_postgres("pg_ctl");
        cmd.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.0.join("postgres.log"))
            .args(["-w", "-t", "60", "-m", "fast"])
            .args(action)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
                self.port,
                self.dir.0.display()
            ));
        run(cmd, &format!("pg_ctl {action:?}")).await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new("runuser");
        let pg_ctl = format!(
            "{}/pg_ctl",
            std::env::var("CLUBPULSE_PG_BIN_DIR")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned())
        );
        let data = self.data();
        if is_root() {
            cmd.args(["-u", "postgres", "--", &pg_ctl]);
        } else {
            cmd = std::process::Command::new(&pg_ctl);
        }
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A Redis server of the test's own, on a free loopback port.
struct Redis {
    port: u16,
    dir: TempDir,
    child: Option<tokio::process::Child>,
}

impl Redis {
    async fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            dir: TempDir::new(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port) and waits until it answers.
    async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + PHASE;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits until it is gone.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// What the load saw: answers by status, and the bookings answered 201.
#[derive(Debug, Default)]
struct Seen {
    statuses: BTreeMap<u16, usize>,
    /// 503s by problem code.
    unavailable: BTreeMap<String, usize>,
    accepted: Vec<Uuid>,
    /// Availability reads answered anything but 200.
    reads_failed: usize,
    /// Answers that broke the contract (a 500, a 503 without `Retry-After`, a hang).
    broken: Vec<String>,
}

impl Seen {
    /// Records one answer; `also_fine` are statuses this phase may legitimately see besides 200,
    /// 201, 409 and a 503 with `Retry-After`.
    async fn record(
        &mut self,
        what: &str,
        response: Result<reqwest::Response, reqwest::Error>,
        also_fine: &[u16],
    ) {
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                self.broken.push(format!("{what}: no answer: {err}"));
                return;
            }
        };
        let status = response.status().as_u16();
        *self.statuses.entry(status).or_default() += 1;
        if what == "availability" && status != 200 {
            self.reads_failed += 1;
        }
        let retry_after = response.headers().contains_key("retry-after");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            201 => {
                if let Some(id) = body["id"].as_str().and_then(|id| id.parse().ok()) {
                    self.accepted.push(id);
                }
            }
            503 => {
                let code = body["code"].as_str().unwrap_or("").to_owned();
                if !retry_after {
                    self.broken
                        .push(format!("{what}: 503 {code} without Retry-After"));
                }
                *self.unavailable.entry(code).or_default() += 1;
            }
            200 | 409 => {}
            _ if also_fine.contains(&status) => {}
            _ => self.broken.push(format!("{what}: {status} {body}")),
        }
    }
}

/// Members holding slots and anyone reading availability, until `stop` (or the request bound).
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `also_fine`: statuses the holds may see besides the usual (a 401 once sessions are lost).
    fn start(app: &TestApp, members: &[TestUser], court: &Value, also_fine: &[u16]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        let facility_id = court["id"].as_str().unwrap().to_owned();
        for (n, member) in members.iter().enumerate() {
            let (client, stop, seen) = (client.clone(), stop.clone(), seen.clone());
            let url = app.url("/api/v1/bookings");
            let token = member.token.clone();
            let facility_id = facility_id.clone();
            let also_fine = also_fine.to_vec();
            // Each member takes its own hour of the day, a fresh slot each time, so the load's holds
            // never compete with each other.
            let hour = 8 + u32::try_from(n).unwrap();
            tasks.push(tokio::spawn(async move {
                // Every slot of this member's hour on 28 days: 56 holds at most.
                for i in 0..MAX_REQUESTS.min(56) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let day = 1 + i64::try_from(i % 28).unwrap();
                    let minute = u32::try_from((i / 28) % 2).unwrap() * 30;
                    let start = local("Europe/Madrid", day, hour, minute);
                    let end = if minute == 0 {
                        local("Europe/Madrid", day, hour, 30)
                    } else {
                        local("Europe/Madrid", day, hour + 1, 0)
                    };
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"facility_id": facility_id, "start": start, "end": end}))
                        .send()
                        .await;
                    let mut record = Seen::default();
                    record.record("hold", response, &also_fine).await;
                    merge(&seen, record);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        for _ in 0..2 {
            let (client, stop, seen) = (client.clone(), stop.clone(), seen.clone());
            let url = app.url(&format!(
                "/api/v1/facilities/{facility_id}/availability?from={}&to={}",
                urlencode(&local("Europe/Madrid", 1, 0, 0)),
                urlencode(&local("Europe/Madrid", 3, 0, 0)),
            ));
            tasks.push(tokio::spawn(async move {
                for _ in 0..MAX_REQUESTS {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let response = client.get(&url).send().await;
                    let mut record = Seen::default();
                    record.record("availability", response, &[]).await;
                    merge(&seen, record);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }));
        }
        Self { stop, seen, tasks }
    }

    fn snapshot(&self) -> (usize, BTreeMap<String, usize>) {
        let seen = self.seen.lock().unwrap();
        (seen.statuses.values().sum(), seen.unavailable.clone())
    }

    /// Waits (bounded) until the load has sent `more` further requests.
    async fn advance(&self, more: usize) {
        let target = self.snapshot().0 + more;
        let deadline = Instant::now() + PHASE;
        while self.snapshot().0 < target {
            assert!(
                Instant::now() < deadline,
                "the load stalled: {:?}",
                self.seen
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            tokio::time::timeout(PHASE, task)
                .await
                .expect("the load stops")
                .unwrap();
        }
        let seen = Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap();
        eprintln!(
            "load answers by status {:?}, 503s by code {:?}, {} holds accepted",
            seen.statuses,
            seen.unavailable,
            seen.accepted.len()
        );
        seen
    }
}

fn merge(into: &Mutex<Seen>, from: Seen) {
    let mut seen = into.lock().unwrap();
    for (status, n) in from.statuses {
        *seen.statuses.entry(status).or_default() += n;
    }
    for (code, n) in from.unavailable {
        *seen.unavailable.entry(code).or_default() += n;
    }
    seen.accepted.extend(from.accepted);
    seen.reads_failed += from.reads_failed;
    seen.broken.extend(from.broken);
}

/// Polls `path` until it answers `status`, within [`PHASE`]; returns the last answer's body.
async fn until_status(app: &TestApp, path: &str, token: Option<&str>, status: u16) -> Value {
    let deadline = Instant::now() + PHASE;
    loop {
        let response = app.get(path, token).await;
        if response.status().as_u16() == status {
            return response.json().await.unwrap_or(Value::Null);
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {} after {PHASE:?}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The test app on a database of its own, with the service's own connection wait.
async fn app_on(database_url: String, redis_url: Option<String>) -> TestApp {
    let mut setup = Setup {
        database_url: Some(database_url),
        redis_url,
        acquire_timeout: Some(Duration::from_secs(2)),
        ..Setup::default()
    };
    setup.config.booking.max_active_holds = 10_000;
    TestApp::spawn_with(setup).await
}

async fn migrated(url: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    clubpulse_storage::database::MIGRATOR
        .run(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// Every hold answered 201 is in the database.
async fn assert_none_lost(app: &TestApp, accepted: &[Uuid]) {
    assert!(!accepted.is_empty(), "the load booked nothing");
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE id = ANY($1)")
        .bind(accepted)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        usize::try_from(found).unwrap(),
        accepted.len(),
        "an accepted booking was lost"
    );
    assert_eq!(app.overlapping_active_bookings().await, 0);
}

async fn setup_load(app: &TestApp, members: usize) -> (Vec<TestUser>, Value) {
    let admin = app.user(Role::Admin).await;
    let court = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let mut users = Vec::new();
    for _ in 0..members {
        users.push(app.user(Role::Member).await);
    }
    (users, court)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_answers_503_then_recovers_without_losing_a_booking() {
    let pg = Postgres::start().await;
    migrated(&pg.url()).await;
    let app = app_on(pg.url(), None).await;
    let (members, court) = setup_load(&app, 3).await;
    let load = Load::start(&app, &members, &court, &[]);
    load.advance(20).await;

    // A real restart: every connection the service holds is cut.
    pg.ctl(&["restart"]).await;
    load.advance(20).await;

    // Then an outage longer than a request waits for a connection: the answers must be 503s.
    pg.ctl(&["stop"]).await;
    let member = &members[0].token;
    let body = until_status(&app, "/api/v1/bookings", Some(member), 503).await;
    assert_eq!(body["code"], "database_unavailable", "{body}");
    let outage = app.get("/api/v1/bookings", Some(member)).await;
    assert_eq!(outage.status(), 503);
    assert!(outage.headers().contains_key("retry-after"));
    load.advance(10).await;
    pg.ctl(&["start"]).await;

    // The same process serves again, without a restart.
    until_status(&app, "/api/v1/bookings", Some(member), 200).await;
    load.advance(20).await;
    let seen = load.finish().await;

    assert!(seen.broken.is_empty(), "{:#?}", seen);
    assert!(
        seen.unavailable
            .keys()
            .all(|code| code == "database_unavailable"),
        "{seen:#?}"
    );
    assert!(
        seen.unavailable.contains_key("database_unavailable"),
        "the load never saw the outage: {seen:#?}"
    );
    assert_none_lost(&app, &seen.accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_are_replaced_and_no_accepted_booking_is_lost() {
    let pg = Postgres::start().await;
    migrated(&pg.url()).await;
    let app = app_on(pg.url(), None).await;
    let (members, court) = setup_load(&app, 3).await;
    let load = Load::start(&app, &members, &court, &[]);
    load.advance(20).await;

    let admin = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    for _ in 0..5 {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = 'postgres' AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        )
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(!killed.is_empty(), "there were connections to kill");
        load.advance(10).await;
    }
    admin.close().await;
    let seen = load.finish().await;

    assert!(seen.broken.is_empty(), "{seen:#?}");
    assert!(
        seen.unavailable
            .keys()
            .all(|code| code == "database_unavailable"),
        "{seen:#?}"
    );
    assert_none_lost(&app, &seen.accepted).await;
    let token = &members[0].token;
    until_status(&app, "/api/v1/bookings", Some(token), 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_load_keeps_reads_up_refuses_writes_with_503_and_recovers() {
    let mut redis = Redis::start().await;
    let database_url = crate::helpers::fresh_database().await;
    // Rate limits on, as in production (they count in Redis too), high enough not to refuse the
    // load itself.
    let mut setup = Setup {
        database_url: Some(database_url),
        redis_url: Some(redis.url()),
        acquire_timeout: Some(Duration::from_secs(2)),
        ..Setup::default()
    };
    setup.config.booking.max_active_holds = 10_000;
    let limits = &mut setup.config.rate_limits;
    limits.enabled = true;
    (
        limits.global_per_ip,
        limits.login,
        limits.booking,
        limits.checkout,
    ) = (100_000, 100_000, 100_000, 100_000);
    let app = TestApp::spawn_with(setup).await;
    let (members, court) = setup_load(&app, 2).await;
    let load = Load::start(&app, &members, &court, &[401]);
    load.advance(20).await;

    redis.kill().await;
    let token = members[0].token.clone();
    let hold = |day| {
        let app = &app;
        let court = &court;
        let token = token.clone();
        async move {
            app.post(
                "/api/v1/bookings",
                json!({"facility_id": court["id"], "start": local("Europe/Madrid", day, 20, 0), "end": local("Europe/Madrid", day, 21, 0)}),
                Some(&token),
            )
            .await
        }
    };
    let refused = hold(2).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let availability = format!(
        "/api/v1/facilities/{}/availability?from={}&to={}",
        court["id"].as_str().unwrap(),
        urlencode(&local("Europe/Madrid", 1, 0, 0)),
        urlencode(&local("Europe/Madrid", 2, 0, 0)),
    );
    assert_eq!(app.get(&availability, None).await.status(), 200);
    assert_eq!(app.get("/api/v1/facilities", None).await.status(), 200);
    load.advance(20).await;

    redis.restart().await;
    // Sessions lived in the Redis that died: the member logs in again, with no service restart.
    let deadline = Instant::now() + PHASE;
    let token = loop {
        let response = app.login(&members[0].email, &members[0].password).await;
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            break body["token"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "login still fails: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let held = app
        .post(
            "/api/v1/bookings",
            json!({"facility_id": court["id"], "start": local("Europe/Madrid", 3, 21, 0), "end": local("Europe/Madrid", 3, 22, 0)}),
            Some(&token),
        )
        .await;
    assert_eq!(held.status(), 201);
    let seen = load.finish().await;

    assert!(seen.broken.is_empty(), "{seen:#?}");
    // Writes meet Redis' absence first at the rate limiter, or at the session lookup when Redis
    // dies between the two.
    assert!(!seen.unavailable.is_empty(), "{seen:#?}");
    assert!(
        seen.unavailable
            .keys()
            .all(|code| code == "rate_limiter_unavailable" || code == "sessions_unavailable"),
        "{seen:#?}"
    );
    assert_none_lost(&app, &seen.accepted).await;
}
