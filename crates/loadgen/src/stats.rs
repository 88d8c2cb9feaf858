//! The `stats` scenario: latency of the manager's dashboard data (`GET /api/v1/admin/stats`) over
//! a generated history, one request at a time (the dashboard is read by a person, not a crowd),
//! for a 28-day and a 365-day range, one club and every club, beside `GET /health` on the same
//! server in the same run.

use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::{Duration, Utc};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{Args, login};

/// The limit the dashboard's queries are held to.
const LIMIT_MS: f64 = 100.0;

/// The stats scenario's settings.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Measured requests per case (after 10 unmeasured ones).
    #[arg(long, default_value_t = 300)]
    pub stats_requests: usize,
    /// The club of the per-club cases.
    #[arg(long, default_value = "")]
    pub stats_club_id: String,
}

#[derive(Debug, Serialize)]
struct Case {
    scenario: &'static str,
    case: String,
    requests: usize,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// p99 over the 100 ms limit.
    p99_of_limit: f64,
    /// p99 over `/health`'s p99 in the same run.
    p99_of_health: f64,
}

/// Sends `path` `n` times in a row and records each answer's latency; anything but 200 fails.
async fn measure(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    n: usize,
) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for i in 0..n + 10 {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let sent = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let _ = response.bytes().await?;
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        if status != 200 {
            bail!("{url} answered {status}");
        }
        if i >= 10 {
            histogram.saturating_record(micros.max(1));
        }
    }
    Ok(histogram)
}

pub async fn run(client: &reqwest::Client, base: &str, args: &Args) -> anyhow::Result<()> {
    let token = login(client, base, &args.admin_email, &args.admin_password)
        .await
        .context("log in as the admin")?;
    let n = args.stats.stats_requests;
    let health = measure(client, &format!("{base}/health"), None, n).await?;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let health_p99 = ms(&health, 0.99);
    let today = Utc::now().date_naive();
    let to = today + Duration::days(1);
    let mut cases = vec![("/health".to_owned(), health)];
    for days in [28, 365] {
        let from = to - Duration::days(days);
        let range = format!("from={from}&to={to}");
        for (scope, query) in [
            (
                "one club",
                format!("{range}&club_id={}", args.stats.stats_club_id),
            ),
            ("every club", range.clone()),
        ] {
            let url = format!("{base}/api/v1/admin/stats?{query}");
            let histogram = measure(client, &url, Some(&token), n).await?;
            cases.push((format!("stats, {days} days, {scope}"), histogram));
        }
    }
    if args.markdown {
        println!(
            "| case | requests | p50 ms | p95 ms | p99 ms | max ms | p99 / 100 ms limit | p99 / health p99 |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    }
    for (case, histogram) in cases {
        let report = Case {
            scenario: "stats",
            case,
            requests: usize::try_from(histogram.len()).unwrap_or(usize::MAX),
            p50_ms: ms(&histogram, 0.50),
            p95_ms: ms(&histogram, 0.95),
            p99_ms: ms(&histogram, 0.99),
            max_ms: histogram.max() as f64 / 1000.0,
            p99_of_limit: ms(&histogram, 0.99) / LIMIT_MS,
            p99_of_health: ms(&histogram, 0.99) / health_p99.max(0.001),
        };
        if args.markdown {
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
                report.case,
                report.requests,
                report.p50_ms,
                report.p95_ms,
                report.p99_ms,
                report.max_ms,
                report.p99_of_limit,
                report.p99_of_health
            );
        } else {
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    if !args.database_url.is_empty() {
        explain(&args.database_url, to - Duration::days(365), to).await?;
    }
    Ok(())
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the dashboard's heaviest statement (the occupancy pass, as the
/// server runs it) over every club and the 365-day range.
async fn explain(
    database_url: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> anyhow::Result<()> {
    let db = sqlx::PgPool::connect(database_url).await?;
    let sql = format!(
        "EXPLAIN (ANALYZE, BUFFERS) {}",
        clubpulse_storage::stats::booked_minutes_sql()
    );
    let plan: Vec<String> = sqlx::query_scalar(&sql)
        .bind(from)
        .bind(to)
        .bind(None::<uuid::Uuid>)
        .fetch_all(&db)
        .await?;
    println!();
    println!("EXPLAIN (ANALYZE, BUFFERS) of the occupancy pass, every club, {from} to {to}:");
    println!();
    println!("```");
    for line in plan {
        println!("{line}");
    }
    println!("```");
    Ok(())
}
