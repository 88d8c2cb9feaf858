//! `TestApp`: one running server and typed helpers to talk to it.

use std::net::SocketAddr;

use clubpulse_config::{Config, Secret};
use clubpulse_domain::{DisplayName, Email, Role};
use clubpulse_http::App;
use clubpulse_passwords::Passwords;
use clubpulse_state::{RedisConn, RedisOptions, StateBackends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Which state backend a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    InProcess,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test, which starts PostgreSQL and Redis")
    })
}

/// A fresh, migrated database on the test server; returns its URL.
pub use clubpulse_storage::testing::fresh_database;

/// Everything a test may want to change before the server starts.
#[derive(Debug, Clone)]
pub struct Setup {
    pub backend: Backend,
    /// Reuse a database (two instances sharing one); a fresh one otherwise.
    pub database_url: Option<String>,
    /// Reuse a Redis key prefix (two instances sharing state); a fresh one otherwise.
    pub redis_prefix: Option<String>,
    /// Another Redis server than the suite's (one a test stops and starts).
    pub redis_url: Option<String>,
    /// How long a request waits for a database connection before giving up: the service's own
    /// 5 seconds where a test takes the database away, sqlx's default otherwise.
    pub acquire_timeout: Option<std::time::Duration>,
    pub config: Config,
}

/// A set-up with search on, loading the model `scripts/setup` installs (or `CLUBPULSE_MODEL_DIR`).
pub fn with_search() -> Setup {
    let mut setup = Setup::default();
    setup.config.search.enabled = true;
    setup.config.search.model_dir = std::env::var_os("CLUBPULSE_MODEL_DIR").map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../var/models/all-MiniLM-L6-v2")
        },
        std::path::PathBuf::from,
    );
    setup
}

impl Default for Setup {
    fn default() -> Self {
        let mut config = Config::default();
        config.server.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        // Every test client is 127.0.0.1, so the production limits would make unrelated tests
        // collide; the limits have tests of their own that turn them on.
        config.rate_limits.enabled = false;
        // Loading the model is for the tests that search; they turn it on.
        config.search.enabled = false;
        Self {
            backend: Backend::Redis,
            database_url: None,
            redis_prefix: None,
            redis_url: None,
            acquire_timeout: None,
            config,
        }
    }
}

/// A running server with a client, a direct database pool, and its state backends.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub database_url: String,
    pub redis_prefix: String,
    /// The server's booking-event bus, to watch what it publishes.
    pub events: clubpulse_booking::Events,
    /// What the server's handlers see (its job queue and audit log among them).
    pub state: clubpulse_http::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Setup::default()).await
    }

    pub async fn spawn_in_process() -> Self {
        Self::spawn_with(Setup {
            backend: Backend::InProcess,
            ..Setup::default()
        })
        .await
    }

    pub async fn spawn_with(setup: Setup) -> Self {
        let database_url = match setup.database_url {
            Some(url) => url,
            None => fresh_database().await,
        };
        let redis_prefix = setup
            .redis_prefix
            .unwrap_or_else(|| format!("test:{}:", Uuid::new_v4().simple()));
        let mut config = setup.config;
        config.database.url = Some(Secret::new(database_url.clone()));
        let state = match setup.backend {
            Backend::Redis => {
                let url = setup
                    .redis_url
                    .clone()
                    .unwrap_or_else(|| env("CLUBPULSE_TEST_REDIS_URL"));
                let options = RedisOptions::new(&url, false, redis_prefix.clone());
                StateBackends::redis(
                    RedisConn::connect(&options)
                        .await
                        .expect("connect to Redis"),
                )
            }
            Backend::InProcess => StateBackends::in_process(),
        };
        let mut pool = sqlx::postgres::PgPoolOptions::new();
        if let Some(timeout) = setup.acquire_timeout {
            pool = pool.acquire_timeout(timeout);
        }
        let db = pool
            .connect(&database_url)
            .await
            .expect("connect to the test database");
        let app = App::build(config, db.clone(), state, false)
            .await
            .expect("build the app");
        let addr = app.local_addr();
        let events = app.state().bookings.events().clone();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            db,
            database_url,
            redis_prefix,
            events,
            state,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// `base` as a second instance of this server: the same database and shared state.
    pub fn beside(&self, base: Setup) -> Setup {
        Setup {
            database_url: Some(self.database_url.clone()),
            redis_prefix: Some(self.redis_prefix.clone()),
            ..base
        }
    }

    /// A second instance of this server with the default set-up.
    pub async fn another_instance(&self) -> Self {
        Self::spawn_with(self.beside(Setup::default())).await
    }

    /// Retires `facility` as `admin` and returns the raw answer.
    pub async fn retire(&self, admin: &TestUser, facility: &Value) -> reqwest::Response {
        self.request(
            Method::DELETE,
            &format!("/api/v1/facilities/{}", facility["id"].as_str().unwrap()),
            None,
            Some(&admin.token),
        )
        .await
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// Waits until the outbox relay has delivered every event owed so far (audit events, e-mail
    /// jobs, invalidations); fails the test after ten seconds, naming how many are left.
    pub async fn drain_outbox(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = clubpulse_storage::outbox::pending(&self.db)
                .await
                .expect("count the outbox");
            if left == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{left} outbox events left undelivered"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Chains every audit event recorded so far, as the periodic flusher would, once the outbox
    /// has handed over the booking events.
    pub async fn flush_audit(&self) {
        self.drain_outbox().await;
        self.state
            .audit
            .flusher(self.db.clone())
            .flush()
            .await
            .expect("flush the audit log");
    }

    /// Waits until the job queue has nothing ready, scheduled or running; fails the test after
    /// `timeout`, naming what is left.
    pub async fn drain_jobs(&self, timeout: std::time::Duration) {
        self.drain_outbox().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.state.jobs.stats().await.expect("job stats");
            if stats.ready + stats.scheduled + stats.in_flight == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "jobs left unprocessed: {stats:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with an optional JSON body and Bearer token.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(Method::GET, path, None, token).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> reqwest::Response {
        self.request(Method::POST, path, Some(body), token).await
    }

    pub async fn register(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/v1/auth/register",
            json!({"email": email, "password": password, "name": "Test Member"}),
            None,
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// Creates an account with `role` directly in the database and logs it in.
    pub async fn user(&self, role: Role) -> TestUser {
        let email = format!("{}-{}@clubpulse.test", role, Uuid::new_v4().simple());
        let password = "a strong password".to_owned();
        let hash = Passwords::default()
            .hash(password.clone())
            .await
            .expect("hash");
        let user = clubpulse_storage::users::insert(
            &self.db,
            &Email::try_from(email.as_str()).expect("email"),
            &DisplayName::try_from("Test User").expect("name"),
            &hash,
            role,
        )
        .await
        .expect("insert user");
        let token = self.token(&email, &password).await;
        TestUser {
            id: user.id,
            email,
            password,
            token,
        }
    }

    /// Logs in and returns the session token.
    pub async fn token(&self, email: &str, password: &str) -> String {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        let body: Value = response.json().await.expect("login body");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// A club created through the API by a fresh admin.
    pub async fn club(&self, admin: &TestUser) -> Value {
        let response = self
            .post(
                "/api/v1/clubs",
                json!({"name": format!("Club {}", Uuid::new_v4().simple()), "timezone": "Europe/Madrid"}),
                Some(&admin.token),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("club body")
    }

    /// A raw connection to the test Redis server (no key prefix), to inspect what was stored.
    pub async fn state_redis(&self) -> RedisConn {
        let options = RedisOptions::new(&env("CLUBPULSE_TEST_REDIS_URL"), false, "");
        RedisConn::connect(&options)
            .await
            .expect("connect to Redis")
    }

    /// A facility in a fresh club (`timezone`), open 07:00–23:00 with 30-minute slots unless `extra`
    /// says otherwise; returns the facility as the API answered it.
    pub async fn facility(&self, admin: &TestUser, timezone: &str, extra: Value) -> Value {
        let club: Value = self
            .post(
                "/api/v1/clubs",
                json!({"name": format!("Club {}", Uuid::new_v4().simple()), "timezone": timezone}),
                Some(&admin.token),
            )
            .await
            .json()
            .await
            .expect("club body");
        let mut body = json!({"club_id": club["id"], "name": format!("Court {}", Uuid::new_v4().simple()), "sport": "padel", "price_cents": 2000});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let response = self
            .post("/api/v1/facilities", body, Some(&admin.token))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("facility body")
    }

    /// Asks for a hold and returns the raw response.
    pub async fn hold(
        &self,
        user: &TestUser,
        facility: &Value,
        start: &str,
        end: &str,
    ) -> reqwest::Response {
        self.post(
            "/api/v1/bookings",
            json!({"facility_id": facility["id"], "start": start, "end": end}),
            Some(&user.token),
        )
        .await
    }

    /// `POST /api/v1/bookings/{booking}/{action}` as `user`: `confirm`, `cancel`, `checkout` or
    /// `mark-paid`.
    pub async fn booking_action(
        &self,
        user: &TestUser,
        booking: impl std::fmt::Display,
        action: &str,
    ) -> reqwest::Response {
        self.post(
            &format!("/api/v1/bookings/{booking}/{action}"),
            json!({}),
            Some(&user.token),
        )
        .await
    }

    /// Requires 30 days' notice for a free cancellation at every club, so that any cancellation
    /// from now on is late and pays the policy's fee.
    pub async fn make_cancellations_late(&self) {
        sqlx::query("UPDATE clubs SET free_cancellation_minutes = 43200")
            .execute(&self.db)
            .await
            .expect("change the cancellation policy");
    }

    /// Active bookings of one facility that overlap another (should always be none).
    pub async fn overlapping_active_bookings(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM bookings a JOIN bookings b
               ON a.facility_id = b.facility_id AND a.id < b.id AND a.blocks && b.blocks
             WHERE a.status IN ('held', 'confirmed') AND b.status IN ('held', 'confirmed')",
        )
        .fetch_one(&self.db)
        .await
        .expect("overlap check")
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .expect("count rows")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An account logged in to a test server.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    pub token: String,
}

/// A response's status, content type and JSON body (null when it has none).
pub async fn read_response(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// Asserts a problem+json response with `status` and `code`, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    let (actual, content_type, body) = read_response(response).await;
    assert_eq!(actual, status, "status; body: {body}");
    assert_eq!(
        content_type, "application/problem+json",
        "content type; body: {body}"
    );
    assert_eq!(body["code"], code, "code; body: {body}");
    assert_eq!(body["status"], status, "status member; body: {body}");
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "{member} missing; body: {body}");
    }
    body
}

/// An RFC 3339 instant `days` days from today at `hour:minute` local time in `zone`.
pub fn local(zone: &str, days: i64, hour: u32, minute: u32) -> String {
    use chrono::{TimeZone as _, Utc};
    let tz: chrono_tz::Tz = zone.parse().expect("a time zone");
    let date = Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(days);
    let naive = date.and_hms_opt(hour, minute, 0).expect("a wall time");
    tz.from_local_datetime(&naive)
        .earliest()
        .expect("an existing local time")
        .to_rfc3339()
}

/// Subscribes a new listener of the server's real-time channels to `channels`; events published
/// from then on reach it.
pub async fn listen(app: &TestApp, channels: &[String]) -> clubpulse_state::Listener {
    let listener = app
        .state
        .bookings
        .state()
        .channels
        .listen()
        .await
        .expect("a channel listener");
    let handle = listener.handle();
    for channel in channels {
        handle.subscribe(channel).await.expect("subscribe");
    }
    listener
}

/// Receives events until one matches `want` (channel, payload), and returns its payload; fails the
/// test after `timeout`, naming what it saw on the way.
pub async fn receive_until(
    listener: &mut clubpulse_state::Listener,
    timeout: std::time::Duration,
    want: impl Fn(&str, &Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let event = match tokio::time::timeout_at(deadline, listener.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the listener stopped; saw {seen:?}"),
            Err(_) => panic!("no matching event in time; saw {seen:?}"),
        };
        let payload: Value = serde_json::from_str(&event.payload).expect("a JSON payload");
        for reserved in ["type", "channel", "offset"] {
            assert!(
                payload.get(reserved).is_none(),
                "a payload uses the reserved member {reserved}: {payload}"
            );
        }
        if want(&event.channel, &payload) {
            return payload;
        }
        seen.push((event.channel.to_string(), payload));
    }
}

/// A timestamp (or any value) made safe for a query string: `+` and `:` escaped.
pub fn urlencode(value: &str) -> String {
    value.replace('+', "%2B").replace(':', "%3A")
}

/// The string `field` of every element of the array `list`.
pub fn each<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap())
        .collect()
}

/// A counter or gauge of `/metrics` with exactly these labels, 0 when absent.
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Polls `probe` until it returns `Some`, failing the test after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A Redis server of the test's own, to stop and start.
pub struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    pub async fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (scripts/setup installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Self { port, child }
    }

    pub fn stop(mut self) -> u16 {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.port
    }
}
