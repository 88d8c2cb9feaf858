//! `mixed`: members going through the whole flow against one or several instances, each request
//! to the next instance in turn (`--base-url` takes a comma-separated list), as a load balancer
//! would send it.
//!
//! Every client is a member with a facility of their own and walks its slots: list the
//! facilities (anonymous), read the facility's week (anonymous), hold the next slot, list their own
//! bookings, then confirm it or, every third round, cancel it. Each step is timed on its own; a
//! step that does not answer 2xx is an error (nothing in the flow should conflict).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Args, all_day_facilities, login, member};

/// The steps of one round, in order.
const STEPS: [&str; 5] = ["list", "availability", "hold", "mine", "settle"];

#[derive(Debug, Serialize)]
struct StepReport {
    step: &'static str,
    requests: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Requests spread over the instances in turn.
struct Instances {
    bases: Vec<String>,
    next: AtomicUsize,
}

impl Instances {
    fn url(&self, path: &str) -> String {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len();
        format!("{}{path}", self.bases[i])
    }
}

struct Client {
    token: String,
    facility: String,
    /// The next of the facility's slots to hold, kept from the warm-up into the measurement.
    next_slot: std::sync::atomic::AtomicI64,
}

pub async fn run(client: &reqwest::Client, args: &Args) -> anyhow::Result<()> {
    let bases: Vec<String> = args
        .base_url
        .split(',')
        .map(|b| b.trim().trim_end_matches('/').to_owned())
        .filter(|b| !b.is_empty())
        .collect();
    let first = bases
        .first()
        .context("--base-url names no instance")?
        .clone();
    let admin = login(client, &first, &args.admin_email, &args.admin_password).await?;
    let ids = all_day_facilities(client, &first, &admin, args.concurrency, json!({})).await?;
    let mut clients = Vec::with_capacity(args.concurrency);
    for facility in ids {
        clients.push(Client {
            token: member(client, &first, "mixed").await?,
            facility,
            next_slot: std::sync::atomic::AtomicI64::new(0),
        });
    }
    let instances = Arc::new(Instances {
        bases,
        next: AtomicUsize::new(0),
    });
    // Each client's slots start tomorrow and never repeat, warm-up included.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc();
    let rounds = Arc::new(AtomicUsize::new(0));
    let clients: Vec<Arc<Client>> = clients.into_iter().map(Arc::new).collect();
    let go = |duration: Duration| {
        let workers: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(n, c)| {
                let (client, c, instances) = (client.clone(), c.clone(), instances.clone());
                let rounds = rounds.clone();
                tokio::spawn(async move {
                    member_rounds(&client, &instances, &c, n, tomorrow, duration, &rounds).await
                })
            })
            .collect();
        async move {
            let started = Instant::now();
            let mut totals: BTreeMap<&'static str, (Histogram<u64>, u64)> = BTreeMap::new();
            for result in futures::future::join_all(workers).await {
                for (step, (histogram, errors)) in result?? {
                    let entry = match totals.entry(step) {
                        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert((Histogram::new_with_bounds(1, 60_000_000, 3)?, 0))
                        }
                    };
                    entry.0.add(histogram)?;
                    entry.1 += errors;
                }
            }
            anyhow::Ok((started.elapsed(), totals))
        }
    };
    go(Duration::from_secs(args.warmup)).await?;
    rounds.store(0, Ordering::Relaxed);
    let (elapsed, totals) = go(Duration::from_secs(args.seconds)).await?;
    let seconds = elapsed.as_secs_f64();
    let mut reports = Vec::new();
    for step in STEPS {
        let Some((histogram, errors)) = totals.get(step) else {
            continue;
        };
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        reports.push(StepReport {
            step,
            requests: histogram.len(),
            errors: *errors,
            rps: histogram.len() as f64 / seconds,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        });
    }
    let done = rounds.load(Ordering::Relaxed);
    let requests: u64 = reports.iter().map(|r| r.requests).sum();
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    println!(
        "{}",
        json!({"scenario": "mixed", "label": args.label, "instances": instances.bases.len(),
               "concurrency": args.concurrency, "seconds": seconds, "rounds": done,
               "rounds_per_s": done as f64 / seconds, "requests": requests,
               "rps": requests as f64 / seconds, "errors": errors, "steps": reports})
    );
    if args.markdown {
        for r in &reports {
            println!(
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
                args.label, r.step, r.requests, r.rps, r.p50_ms, r.p99_ms, r.errors
            );
        }
        println!(
            "| {} | **whole rounds** | {done} | {:.1} rounds/s, {:.0} req/s | | | {errors} |",
            args.label,
            done as f64 / seconds,
            requests as f64 / seconds
        );
    }
    Ok(())
}

type StepTotals = BTreeMap<&'static str, (Histogram<u64>, u64)>;

/// One member's rounds until `duration` has passed.
async fn member_rounds(
    client: &reqwest::Client,
    instances: &Instances,
    me: &Client,
    n: usize,
    from: chrono::DateTime<chrono::Utc>,
    duration: Duration,
    rounds: &AtomicUsize,
) -> anyhow::Result<StepTotals> {
    let deadline = Instant::now() + duration;
    let mut totals: StepTotals = BTreeMap::new();
    for step in STEPS {
        totals.insert(step, (Histogram::new_with_bounds(1, 60_000_000, 3)?, 0));
    }
    let week_from = from.to_rfc3339().replace('+', "%2B");
    let week_to = (from + chrono::Duration::days(7))
        .to_rfc3339()
        .replace('+', "%2B");
    let availability = format!(
        "/api/v1/facilities/{}/availability?from={week_from}&to={week_to}",
        me.facility
    );
    while Instant::now() < deadline {
        let k = me.next_slot.fetch_add(1, Ordering::Relaxed);
        let start = from + chrono::Duration::minutes(5 * k);
        let end = start + chrono::Duration::minutes(5);
        let mut record = |step: &'static str, sent: Instant, ok: bool| {
            if let Some((histogram, errors)) = totals.get_mut(step) {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.saturating_record(micros.max(1));
                if !ok {
                    *errors += 1;
                }
            }
        };
        let sent = Instant::now();
        let ok = send(client.get(instances.url("/api/v1/facilities?limit=50"))).await;
        record("list", sent, ok.is_some());
        let sent = Instant::now();
        let ok = send(client.get(instances.url(&availability))).await;
        record("availability", sent, ok.is_some());
        let sent = Instant::now();
        let held = send(
            client
                .post(instances.url("/api/v1/bookings"))
                .bearer_auth(&me.token)
                .json(&json!({"facility_id": me.facility, "start": start.to_rfc3339(), "end": end.to_rfc3339()})),
        )
        .await;
        record("hold", sent, held.is_some());
        let sent = Instant::now();
        let mine = send(
            client
                .get(instances.url("/api/v1/bookings?limit=5"))
                .bearer_auth(&me.token),
        )
        .await;
        // Read-your-writes: the hold just made is the newest of the member's bookings.
        let sees_hold = match (&held, &mine) {
            (Some(h), Some(m)) => m.get(0).map(|b| &b["id"]) == Some(&h["id"]),
            _ => false,
        };
        record("mine", sent, sees_hold);
        if let Some(held) = held {
            let action = if (k + n as i64) % 3 == 0 {
                "cancel"
            } else {
                "confirm"
            };
            let id = held["id"].as_str().unwrap_or_default();
            let sent = Instant::now();
            let ok = send(
                client
                    .post(instances.url(&format!("/api/v1/bookings/{id}/{action}")))
                    .bearer_auth(&me.token)
                    .json(&json!({})),
            )
            .await;
            record("settle", sent, ok.is_some());
        }
        rounds.fetch_add(1, Ordering::Relaxed);
    }
    Ok(totals)
}

/// The answer's JSON when it is a 2xx.
async fn send(request: reqwest::RequestBuilder) -> Option<Value> {
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}
