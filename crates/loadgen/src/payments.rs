//! The `payments` scenario: checkout latency against the Stripe API emulator, beside the emulator's
//! own cost for the same call; then how many signed webhook events the server applies per second
//! (signature check, the event recorded once, the payment and its booking changed), how fast it
//! answers repeats of them, and the floor: the same requests with a bad signature, refused before
//! anything is read.

use std::{sync::Arc, time::Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Args, login};

/// The payments scenario's settings.
#[derive(Debug, clap::Args)]
pub struct PaymentsArgs {
    /// The Stripe API emulator the server was started against.
    #[arg(long, default_value = "")]
    pub stripe_url: String,
    /// The emulator's secret key (the server's `CLUBPULSE_STRIPE_SECRET_KEY`).
    #[arg(long, default_value = "sk_test_bench")]
    pub stripe_key: String,
    /// The server's webhook secret (`CLUBPULSE_STRIPE_WEBHOOK_SECRETS`).
    #[arg(long, default_value = "whsec_bench")]
    pub webhook_secret: String,
    /// Bookings to check out and pay.
    #[arg(long, default_value_t = 2000)]
    pub payments: usize,
}

#[derive(Debug, Serialize)]
struct Phase {
    requests: usize,
    errors: usize,
    seconds: f64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct PaymentsReport {
    scenario: &'static str,
    clients: usize,
    emulator_create_intent: Phase,
    checkout: Phase,
    webhook_applied: Phase,
    webhook_repeat: Phase,
    webhook_bad_signature: Phase,
}

/// Sends every request of `work` with `clients` at a time, recording each one's latency; a request
/// whose status is not `expect` counts as an error.
async fn phase<F, Fut>(
    clients: usize,
    work: Vec<F>,
    expect: u16,
) -> anyhow::Result<(Phase, Vec<Value>)>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<(u16, Value)>> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Semaphore::new(clients));
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|job| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                let sent = Instant::now();
                let (status, body) = job().await?;
                anyhow::Ok((sent.elapsed(), status, body))
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut errors, mut bodies) = (0, Vec::with_capacity(tasks.len()));
    for task in futures::future::join_all(tasks).await {
        let (elapsed, status, body) = task??;
        histogram.saturating_record(
            u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        if status != expect {
            errors += 1;
        }
        bodies.push(body);
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = bodies.len();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Ok((
        Phase {
            requests,
            errors,
            seconds,
            per_second: requests as f64 / seconds,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        },
        bodies,
    ))
}

async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Waits until the server's outbox relay has delivered everything, so one phase's background
/// work (audit, notifications, mail jobs) does not run in the next one's measurement.
async fn settle(database_url: &str) -> anyhow::Result<()> {
    if database_url.is_empty() {
        return Ok(());
    }
    let db = sqlx::PgPool::connect(database_url).await?;
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&db)
            .await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} outbox events still undelivered after two minutes");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub async fn run(client: &reqwest::Client, base: &str, args: &Args) -> anyhow::Result<()> {
    let p = &args.payments;
    if p.stripe_url.is_empty() {
        bail!("--stripe-url is required");
    }
    let clients = args.concurrency;
    let admin = login(client, base, &args.admin_email, &args.admin_password).await?;
    let facility = crate::all_day_facilities(client, base, &admin, 1, json!({"price_cents": 1500}))
        .await?
        .pop()
        .context("no facility")?;
    let member = crate::member(client, base, "payments").await?;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc();

    // The holds to pay for (not measured).
    let holds: Vec<_> = (0..p.payments)
        .map(|k| {
            let start = tomorrow + chrono::Duration::minutes(5 * k as i64);
            let request = client
                .post(format!("{base}/api/v1/bookings"))
                .bearer_auth(&member)
                .json(&json!({"facility_id": facility, "start": start.to_rfc3339(), "end": (start + chrono::Duration::minutes(5)).to_rfc3339()}));
            move || send(request)
        })
        .collect();
    let (held, bookings) = phase(clients, holds, 201).await?;
    if held.errors > 0 {
        bail!("{} of the holds failed", held.errors);
    }
    settle(&args.database_url).await?;

    // The emulator's own cost of creating an intent, the way the server calls it.
    let direct: Vec<_> = (0..p.payments)
        .map(|k| {
            let request = client
                .post(format!("{}/v1/payment_intents", p.stripe_url))
                .bearer_auth(&p.stripe_key)
                .header("Idempotency-Key", format!("bench-direct-{k}"))
                .form(&[
                    ("amount", "1500"),
                    ("currency", "eur"),
                    ("metadata[booking_id]", "bench"),
                ]);
            move || send(request)
        })
        .collect();
    let (emulator, _) = phase(clients, direct, 200).await?;

    let checkouts: Vec<_> = bookings
        .iter()
        .map(|b| {
            let request = client
                .post(format!(
                    "{base}/api/v1/bookings/{}/checkout",
                    b["id"].as_str().unwrap_or_default()
                ))
                .bearer_auth(&member);
            move || send(request)
        })
        .collect();
    let (checkout, payments) = phase(clients, checkouts, 201).await?;
    settle(&args.database_url).await?;

    let intents: Vec<String> = payments
        .iter()
        .filter_map(|p| p["provider_ref"].as_str().map(str::to_owned))
        .collect();
    let events: Vec<Vec<u8>> = intents
        .iter()
        .enumerate()
        .map(|(k, intent)| {
            serde_json::to_vec(&json!({
                "id": format!("evt_bench_{k}_{}", uuid::Uuid::new_v4().simple()),
                "object": "event",
                "type": "payment_intent.succeeded",
                "created": chrono::Utc::now().timestamp(),
                "data": {"object": {"id": intent, "object": "payment_intent", "status": "succeeded", "amount": 1500}}
            }))
            .unwrap_or_default()
        })
        .collect();
    let webhooks = |signed: bool| -> Vec<_> {
        events
            .iter()
            .map(|body| {
                let t = chrono::Utc::now().timestamp();
                let secret: &[u8] = if signed {
                    p.webhook_secret.as_bytes()
                } else {
                    b"whsec_wrong"
                };
                let request = client
                    .post(format!("{base}/api/v1/payments/stripe/webhook"))
                    .header("content-type", "application/json")
                    .header(
                        "Stripe-Signature",
                        clubpulse_webhooks::signature::header(secret, t, body),
                    )
                    .body(body.clone());
                move || send(request)
            })
            .collect()
    };
    let (floor, _) = phase(clients, webhooks(false), 400).await?;
    let (applied, receipts) = phase(clients, webhooks(true), 200).await?;
    let changed = receipts
        .iter()
        .filter(|r| r["applied"] == json!(true))
        .count();
    if changed != events.len() {
        bail!(
            "{changed} of {} webhook events changed a payment",
            events.len()
        );
    }
    settle(&args.database_url).await?;
    let (repeat, receipts) = phase(clients, webhooks(true), 200).await?;
    if receipts.iter().any(|r| r["applied"] == json!(true)) {
        bail!("a repeated webhook event changed a payment");
    }

    let report = PaymentsReport {
        scenario: "payments",
        clients,
        emulator_create_intent: emulator,
        checkout,
        webhook_applied: applied,
        webhook_repeat: repeat,
        webhook_bad_signature: floor,
    };
    println!("{}", serde_json::to_string(&report)?);
    if args.markdown {
        let r = &report;
        for (name, phase) in [
            (
                "emulator: create a PaymentIntent (direct)",
                &r.emulator_create_intent,
            ),
            ("checkout (creates the PaymentIntent)", &r.checkout),
            (
                "webhook: event applied (booking confirmed)",
                &r.webhook_applied,
            ),
            (
                "webhook: repeated event (changes nothing)",
                &r.webhook_repeat,
            ),
            ("webhook: bad signature (refused)", &r.webhook_bad_signature),
        ] {
            println!(
                "| {name} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
                r.clients,
                phase.requests,
                phase.per_second,
                phase.p50_ms,
                phase.p99_ms,
                phase.errors
            );
        }
    }
    let failed: usize = [
        &report.emulator_create_intent,
        &report.checkout,
        &report.webhook_applied,
        &report.webhook_repeat,
        &report.webhook_bad_signature,
    ]
    .iter()
    .map(|p| p.errors)
    .sum();
    if failed > 0 {
        bail!("{failed} requests had an unexpected answer");
    }
    Ok(())
}
