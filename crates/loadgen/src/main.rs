//! `clubpulse-loadgen`: drives a running Club Pulse server with concurrent clients for a fixed time
//! and reports throughput and latency percentiles (HDR histogram, microsecond resolution).
//!
//! Each scenario prepares what it needs through the public API (accounts, sessions), warms up, then
//! measures. Results print as one JSON object per scenario, and as a Markdown table row with
//! `--markdown`, ready for `docs/benchmarks.md`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

mod jobs;
mod mixed;
mod payments;
mod search;
mod stats;
mod ws;

#[derive(Debug, Parser)]
#[command(about = "Load generator for Club Pulse")]
struct Args {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long, required_unless_present = "redis_url", default_value = "")]
    base_url: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// A label for the result (the configuration under test).
    #[arg(long, default_value = "")]
    label: String,
    /// Also print a Markdown table row.
    #[arg(long)]
    markdown: bool,
    /// An admin account, for scenarios that create clubs and facilities.
    #[arg(long, default_value = "")]
    admin_email: String,
    #[arg(long, default_value = "")]
    admin_password: String,
    #[command(flatten)]
    jobs: jobs::JobsArgs,
    #[command(flatten)]
    ws: ws::WsArgs,
    #[command(flatten)]
    payments: payments::PaymentsArgs,
    #[command(flatten)]
    stats: stats::StatsArgs,
    /// PostgreSQL, for the `recall` scenario (and for `payments`, to let the outbox drain between
    /// phases, and for `holds --history`).
    #[arg(long, default_value = "")]
    database_url: String,
    /// For `holds`: past confirmed bookings given to every member before the clock starts (written
    /// in SQL on `--database-url`), so a hold is measured for members with long histories.
    #[arg(long, default_value_t = 0)]
    history: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    /// `GET /health`: the HTTP stack alone.
    Health,
    /// `GET /api/v1/me` with a Bearer token: session lookup plus one database read.
    Me,
    /// `GET /api/v1/auth/sessions`: session lookup plus the user's session index, no database.
    Sessions,
    /// `POST /api/v1/auth/login`: argon2id verification plus session creation.
    Login,
    /// No server: argon2id verifications at the service's parameters on every core, the ceiling
    /// for logins on this machine.
    Argon2Limit,
    /// `POST /api/v1/bookings`: every client holds successive free 5-minute slots of its own facility.
    Holds,
    /// `GET /api/v1/facilities/{id}/availability` for one facility over a week (cached).
    Availability,
    /// Once: every client asks at the same moment for one of 20 slots of one facility.
    Contention,
    /// No server: enqueue no-op jobs in Redis, then drain them with one worker pool in this process.
    Jobs,
    /// `GET /api/v1/search/facilities` with queries members type (their embeddings cached after
    /// the first time).
    Search,
    /// The same with a number added to every query, so every query is embedded anew.
    SearchUncached,
    /// No server: recall@10 of the HNSW index against an exact scan, on `--database-url`.
    Recall,
    /// `--connections` WebSockets on one facility's channel: how long an event takes to reach the
    /// last of them, and the server's memory per idle connection.
    WsFanout,
    /// Checkout latency against the Stripe API emulator beside the emulator's own cost, then
    /// signed webhook events applied per second, repeats, and bad signatures.
    Payments,
    /// `GET /api/v1/admin/stats` one request at a time over a generated history: 28 and 365 days,
    /// one club and every club, beside `GET /health`.
    Stats,
    /// Members through the whole flow (list, week, hold, my bookings, confirm or cancel), each
    /// request to the next of the comma-separated `--base-url` instances.
    Mixed,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: Scenario,
    label: String,
    concurrency: usize,
    seconds: f64,
    requests: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// What one client sends, prepared before the clock starts.
#[derive(Clone)]
struct Request {
    method: reqwest::Method,
    path: String,
    token: Option<String>,
    body: Option<Value>,
    /// For holds: the next slot to ask for, shared by warm-up and measurement.
    sequence: Option<Arc<HoldSequence>>,
    /// For searches: the next query to send (the path changes with every request).
    queries: Option<Arc<search::QueryPaths>>,
}

/// Successive slots of one facility: the k-th request asks for `[base + k·step, base + (k+1)·step)`.
struct HoldSequence {
    facility_id: String,
    base: chrono::DateTime<chrono::Utc>,
    step_minutes: i64,
    next: AtomicU64,
}

impl HoldSequence {
    fn body(&self) -> Value {
        let k = i64::try_from(self.next.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
        let start = self.base + chrono::Duration::minutes(k * self.step_minutes);
        let end = start + chrono::Duration::minutes(self.step_minutes);
        json!({"facility_id": self.facility_id, "start": start.to_rfc3339(), "end": end.to_rfc3339()})
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Scenario::Jobs = args.scenario {
        return jobs::run(&args).await;
    }
    if let Scenario::Recall = args.scenario {
        let recall = search::recall(&args.database_url, 200).await?;
        println!(
            "{}",
            serde_json::json!({"scenario": "recall", "k": 10, "queries": 200, "recall": recall})
        );
        if args.markdown {
            println!("| recall@10, HNSW vs exact scan | 200 queries | {recall:.3} |");
        }
        return Ok(());
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let base = args.base_url.trim_end_matches('/').to_owned();
    if let Scenario::Contention = args.scenario {
        return contention(&client, &base, &args).await;
    }
    if let Scenario::WsFanout = args.scenario {
        return ws::run(&client, &base, &args).await;
    }
    if let Scenario::Payments = args.scenario {
        return payments::run(&client, &base, &args).await;
    }
    if let Scenario::Stats = args.scenario {
        return stats::run(&client, &base, &args).await;
    }
    if let Scenario::Mixed = args.scenario {
        return mixed::run(&client, &args).await;
    }
    let (elapsed, histogram, errors) = if let Scenario::Argon2Limit = args.scenario {
        argon2_limit(Duration::from_secs(args.seconds)).await?
    } else if let Scenario::Search | Scenario::SearchUncached = args.scenario {
        let unique = matches!(args.scenario, Scenario::SearchUncached);
        let requests = search::requests(args.concurrency, unique);
        run(&client, &base, &requests, Duration::from_secs(args.warmup)).await?;
        run(&client, &base, &requests, Duration::from_secs(args.seconds)).await?
    } else if let Scenario::Holds | Scenario::Availability = args.scenario {
        let requests = prepare_bookings(&client, &base, &args).await?;
        run(&client, &base, &requests, Duration::from_secs(args.warmup)).await?;
        run(&client, &base, &requests, Duration::from_secs(args.seconds)).await?
    } else {
        let requests = prepare(&client, &base, args.scenario, args.concurrency).await?;
        run(&client, &base, &requests, Duration::from_secs(args.warmup)).await?;
        run(&client, &base, &requests, Duration::from_secs(args.seconds)).await?
    };

    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let requests = histogram.len();
    let report = Report {
        scenario: args.scenario,
        label: args.label,
        concurrency: args.concurrency,
        seconds: elapsed.as_secs_f64(),
        requests,
        errors,
        rps: requests as f64 / elapsed.as_secs_f64(),
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: histogram.max() as f64 / 1000.0,
    };
    println!("{}", serde_json::to_string(&report)?);
    if args.markdown {
        println!(
            "| {:?} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            report.scenario,
            report.label,
            report.concurrency,
            report.rps,
            report.p50_ms,
            report.p90_ms,
            report.p99_ms,
            report.errors
        );
    }
    if report.errors > 0 {
        bail!("{} requests failed", report.errors);
    }
    Ok(())
}

/// One request per client: accounts and sessions are made through the API first.
async fn prepare(
    client: &reqwest::Client,
    base: &str,
    scenario: Scenario,
    clients: usize,
) -> anyhow::Result<Vec<Request>> {
    let get = |path: &str, token: Option<String>| Request {
        method: reqwest::Method::GET,
        path: path.to_owned(),
        token,
        body: None,
        sequence: None,
        queries: None,
    };
    if let Scenario::Health = scenario {
        return Ok(vec![get("/health", None); clients]);
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let password = "load-test-password";
    let mut requests = Vec::with_capacity(clients);
    for i in 0..clients {
        let email = format!("load-{run_id}-{i}@clubpulse.test");
        let registered = client
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": password, "name": format!("Load {i}")}))
            .send()
            .await?;
        if registered.status() != 201 {
            bail!("register answered {}", registered.status());
        }
        let login: Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["token"]
            .as_str()
            .context("login gave no token")?
            .to_owned();
        requests.push(match scenario {
            Scenario::Me => get("/api/v1/me", Some(token)),
            Scenario::Sessions => get("/api/v1/auth/sessions", Some(token)),
            Scenario::Login => Request {
                method: reqwest::Method::POST,
                path: "/api/v1/auth/login".to_owned(),
                token: None,
                body: Some(json!({"email": email, "password": password})),
                sequence: None,
                queries: None,
            },
            _ => get("/health", None),
        });
    }
    Ok(requests)
}

/// Every client sends its request in a loop until `duration` has passed.
async fn run(
    client: &reqwest::Client,
    base: &str,
    requests: &[Request],
    duration: Duration,
) -> anyhow::Result<(Duration, Histogram<u64>, u64)> {
    let started = Instant::now();
    let deadline = started + duration;
    let base: Arc<str> = Arc::from(base);
    let workers = requests.iter().cloned().map(|request| {
        let client = client.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let path = match &request.queries {
                    Some(queries) => queries.path(),
                    None => request.path.clone(),
                };
                let mut builder = client.request(request.method.clone(), format!("{base}{path}"));
                if let Some(token) = &request.token {
                    builder = builder.bearer_auth(token);
                }
                if let Some(sequence) = &request.sequence {
                    builder = builder.json(&sequence.body());
                } else if let Some(body) = &request.body {
                    builder = builder.json(body);
                }
                let sent = Instant::now();
                let ok = match builder.send().await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.saturating_record(micros.max(1));
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((histogram, errors))
        })
    });
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for result in futures::future::join_all(workers).await {
        let (histogram, failed) = result??;
        total.add(histogram)?;
        errors += failed;
    }
    Ok((started.elapsed(), total, errors))
}

/// Verifies one argon2id hash (19 MiB, t=2, p=1, as the service does) on every core until
/// `duration` has passed.
async fn argon2_limit(duration: Duration) -> anyhow::Result<(Duration, Histogram<u64>, u64)> {
    use argon2::{
        Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
        Version,
    };
    let argon = || {
        Params::new(19 * 1024, 2, 1, None)
            .map(|p| Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    };
    let salt =
        argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let hash = argon()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .hash_password(b"load-test-password", &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..cores).map(|_| {
        let hash = hash.clone();
        tokio::task::spawn_blocking(move || {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("{e}"))?;
            let argon = argon().map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                if argon
                    .verify_password(b"load-test-password", &parsed)
                    .is_err()
                {
                    errors += 1;
                }
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.saturating_record(micros.max(1));
            }
            anyhow::Ok((histogram, errors))
        })
    });
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for result in futures::future::join_all(workers).await {
        let (histogram, failed) = result??;
        total.add(histogram)?;
        errors += failed;
    }
    Ok((started.elapsed(), total, errors))
}

/// Registers a member and returns its session token.
async fn member(client: &reqwest::Client, base: &str, tag: &str) -> anyhow::Result<String> {
    let email = format!(
        "load-{tag}-{}@clubpulse.test",
        uuid::Uuid::new_v4().simple()
    );
    let password = "load-test-password";
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Load"}))
        .send()
        .await?;
    if registered.status() != 201 {
        bail!("register answered {}", registered.status());
    }
    login(client, base, &email, password).await
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    Ok(login["token"]
        .as_str()
        .context("login gave no token")?
        .to_owned())
}

/// POSTs `body` as `token` and returns the answer's JSON.
async fn post_json(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    Ok(client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?
        .json()
        .await?)
}

/// A fresh club in `timezone` with one facility made of `facility` (plus the club id).
async fn club_with_facility(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    timezone: &str,
    facility: Value,
) -> anyhow::Result<String> {
    let club = post_json(
        client,
        format!("{base}/api/v1/clubs"),
        admin,
        json!({"name": format!("Load club {}", uuid::Uuid::new_v4().simple()), "timezone": timezone}),
    )
    .await?;
    let mut body = facility;
    if let Some(fields) = body.as_object_mut() {
        fields.insert("club_id".to_owned(), club["id"].clone());
    }
    let created = post_json(client, format!("{base}/api/v1/facilities"), admin, body).await?;
    Ok(created["id"].as_str().context("no facility id")?.to_owned())
}

/// A club in UTC and `count` facilities open around the clock with 5-minute slots.
async fn facilities(
    client: &reqwest::Client,
    base: &str,
    args: &Args,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let admin = login(client, base, &args.admin_email, &args.admin_password).await?;
    all_day_facilities(client, base, &admin, count, json!({})).await
}

/// A club in UTC and `count` facilities open around the clock with 5-minute slots, with the fields
/// of `extra` (a price, say).
async fn all_day_facilities(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    count: usize,
    extra: Value,
) -> anyhow::Result<Vec<String>> {
    let club = post_json(
        client,
        format!("{base}/api/v1/clubs"),
        admin,
        json!({"name": format!("Load club {}", uuid::Uuid::new_v4().simple()), "timezone": "UTC"}),
    )
    .await?;
    let all_day = json!([["00:00", "24:00"]]);
    let hours = json!({"mon": all_day, "tue": all_day, "wed": all_day, "thu": all_day, "fri": all_day, "sat": all_day, "sun": all_day});
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let mut body = json!({"club_id": club["id"], "name": format!("Court {i}"), "sport": "padel", "slot_minutes": 5, "opening_hours": hours});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra.clone()) {
            body.extend(extra);
        }
        let facility = post_json(client, format!("{base}/api/v1/facilities"), admin, body).await?;
        ids.push(
            facility["id"]
                .as_str()
                .context("no facility id")?
                .to_owned(),
        );
    }
    Ok(ids)
}

/// Holds: a facility and a member per client, each walking its facility's slots from tomorrow.
/// Availability: one facility, read by every client over the coming week.
async fn prepare_bookings(
    client: &reqwest::Client,
    base: &str,
    args: &Args,
) -> anyhow::Result<Vec<Request>> {
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc();
    if let Scenario::Availability = args.scenario {
        // A typical facility: open 07:00–23:00, 30-minute slots, so a week is 224 slots.
        let admin = login(client, base, &args.admin_email, &args.admin_password).await?;
        let facility = json!({"name": "Pista 1", "sport": "padel"});
        let id = club_with_facility(client, base, &admin, "Europe/Madrid", facility).await?;
        let from = tomorrow.to_rfc3339().replace('+', "%2B");
        let to = (tomorrow + chrono::Duration::days(7))
            .to_rfc3339()
            .replace('+', "%2B");
        let path = format!("/api/v1/facilities/{id}/availability?from={from}&to={to}");
        return Ok((0..args.concurrency)
            .map(|_| Request {
                method: reqwest::Method::GET,
                path: path.clone(),
                token: None,
                body: None,
                sequence: None,
                queries: None,
            })
            .collect());
    }
    let ids = facilities(client, base, args, args.concurrency).await?;
    let mut requests = Vec::with_capacity(ids.len());
    for facility_id in ids {
        requests.push(Request {
            method: reqwest::Method::POST,
            path: "/api/v1/bookings".to_owned(),
            token: Some(member(client, base, "holds").await?),
            body: None,
            sequence: Some(Arc::new(HoldSequence {
                facility_id,
                base: tomorrow,
                step_minutes: 5,
                next: AtomicU64::new(0),
            })),
            queries: None,
        });
    }
    if args.history > 0 {
        give_history(client, base, &args.database_url, &requests, args.history).await?;
    }
    Ok(requests)
}

/// Gives every holds client's member `each` confirmed five-minute bookings of their facility in
/// 2020, written directly (triggers off, so no outbox events or rollups are owed for them), then
/// refreshes the planner's statistics.
async fn give_history(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
    requests: &[Request],
    each: u32,
) -> anyhow::Result<()> {
    let db = sqlx::PgPool::connect(database_url)
        .await
        .context("--history needs --database-url")?;
    for request in requests {
        let token = request.token.as_deref().context("a member's token")?;
        let me: Value = client
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let user: uuid::Uuid = me["id"].as_str().context("no user id")?.parse()?;
        let facility: uuid::Uuid = request
            .sequence
            .as_ref()
            .context("a facility")?
            .facility_id
            .parse()?;
        let mut tx = db.begin().await?;
        sqlx::query("SET LOCAL session_replication_role = replica")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO bookings (id, facility_id, user_id, status, during, blocks, price_cents,
                                   currency, created_at, confirmed_at)
             SELECT gen_random_uuid(), $1, $2, 'confirmed', tstzrange(t, t + interval '5 minutes', '[)'),
                    tstzrange(t, t + interval '5 minutes', '[)'), 0, 'EUR',
                    t - interval '3 days', t - interval '3 days'
             FROM (SELECT timestamptz '2020-01-01' + g * interval '5 minutes' AS t
                   FROM generate_series(1, $3) AS g) AS s",
        )
        .bind(facility)
        .bind(user)
        .bind(i64::from(each))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    sqlx::query("ANALYZE bookings").execute(&db).await?;
    db.close().await;
    Ok(())
}

#[derive(Debug, Serialize)]
struct ContentionReport {
    scenario: &'static str,
    clients: usize,
    slots: usize,
    won: u64,
    lost_with_alternatives: u64,
    lost_without_alternatives: u64,
    other: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Every answer of the burst over the time until the last one came.
    answers_per_s: f64,
}

/// Every client asks at the same moment for one of 20 half-hour slots of one facility.
async fn contention(client: &reqwest::Client, base: &str, args: &Args) -> anyhow::Result<()> {
    const SLOTS: usize = 20;
    let admin = login(client, base, &args.admin_email, &args.admin_password).await?;
    let facility = json!({"name": "Centre court", "sport": "tennis"});
    let facility_id = club_with_facility(client, base, &admin, "UTC", facility).await?;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .context("8:00")?
        .and_utc();
    let mut tokens = Vec::with_capacity(args.concurrency);
    let registrations = (0..args.concurrency).map(|_| member(client, base, "contention"));
    for token in futures::future::join_all(registrations).await {
        tokens.push(token?);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let tasks = tokens.into_iter().enumerate().map(|(i, token)| {
        let client = client.clone();
        let url = format!("{base}/api/v1/bookings");
        let barrier = barrier.clone();
        let start = tomorrow + chrono::Duration::minutes(30 * (i % SLOTS) as i64);
        let body = json!({"facility_id": facility_id, "start": start.to_rfc3339(), "end": (start + chrono::Duration::minutes(30)).to_rfc3339()});
        tokio::spawn(async move {
            barrier.wait().await;
            let sent = Instant::now();
            let response = client.post(url).bearer_auth(token).json(&body).send().await?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let alternatives = body["alternatives"].as_array().map_or(0, Vec::len);
            anyhow::Ok((sent.elapsed(), status, alternatives))
        })
    });
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut won, mut lost_with, mut lost_without, mut other) = (0, 0, 0, 0);
    for result in futures::future::join_all(tasks).await {
        let (elapsed, status, alternatives) = result??;
        histogram.saturating_record(
            u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        match (status, alternatives) {
            (201, _) => won += 1,
            (409, 0) => lost_without += 1,
            (409, _) => lost_with += 1,
            _ => other += 1,
        }
    }
    let report = ContentionReport {
        scenario: "contention",
        clients: args.concurrency,
        slots: SLOTS,
        won,
        lost_with_alternatives: lost_with,
        lost_without_alternatives: lost_without,
        other,
        p50_ms: histogram.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: histogram.max() as f64 / 1000.0,
        answers_per_s: args.concurrency as f64 / (histogram.max() as f64 / 1e6),
    };
    println!("{}", serde_json::to_string(&report)?);
    if args.markdown {
        println!(
            "| contention | {} clients, {} slots | won {} | lost with alternatives {} | lost without {} | other {} | p50 {:.2} ms | p99 {:.2} ms | {:.0} answers/s |",
            report.clients,
            report.slots,
            report.won,
            report.lost_with_alternatives,
            report.lost_without_alternatives,
            report.other,
            report.p50_ms,
            report.p99_ms,
            report.answers_per_s
        );
    }
    if won as usize > SLOTS || other > 0 {
        bail!(
            "contention broke an invariant: {won} winners for {SLOTS} slots, {other} unexpected answers"
        );
    }
    Ok(())
}
