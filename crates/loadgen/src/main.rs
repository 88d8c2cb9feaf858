//! `clubpulse-loadgen`: drives a running Club Pulse server with concurrent clients for a fixed time
//! and reports throughput and latency percentiles (HDR histogram, microsecond resolution).
//!
//! Each scenario prepares what it needs through the public API (accounts, sessions), warms up, then
//! measures. Results print as one JSON object per scenario, and as a Markdown table row with
//! `--markdown`, ready for `docs/benchmarks.md`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "Load generator for Club Pulse")]
struct Args {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let base = args.base_url.trim_end_matches('/').to_owned();
    let (elapsed, histogram, errors) = if let Scenario::Argon2Limit = args.scenario {
        argon2_limit(Duration::from_secs(args.seconds)).await?
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
            },
            Scenario::Health | Scenario::Argon2Limit => get("/health", None),
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
                let mut builder =
                    client.request(request.method.clone(), format!("{base}{}", request.path));
                if let Some(token) = &request.token {
                    builder = builder.bearer_auth(token);
                }
                if let Some(body) = &request.body {
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
