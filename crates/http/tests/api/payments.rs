//! Payments against a real Stripe API emulator: checkout, the card paid as Stripe.js would, the
//! emulator's signed webhook confirming the booking; late payments, refunds, forged and replayed
//! webhooks, secret rotation, on-site payment and reconciliation. Payment state is checked in the
//! database.

use std::time::Duration;

use clubpulse_config::{PaymentProviderKind, Secret};
use clubpulse_domain::Role;
use clubpulse_webhooks::signature;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Setup, TestApp, TestUser, assert_problem, eventually, local, read_response};

const MADRID: &str = "Europe/Madrid";
const WAIT: Duration = Duration::from_secs(20);
const KEY: &str = "sk_test_clubpulse";

/// A Stripe API emulator of the test's own (localstripe on a free loopback port, its store in
/// memory), so no other test's intents or webhook targets share it. Stopped when dropped.
struct Emulator {
    url: String,
    _process: tokio::process::Child,
}

impl Emulator {
    async fn start() -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("var/venv/bin/python3");
        let mut last = String::new();
        // A port picked free can be taken before the emulator binds it: try another.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut process = tokio::process::Command::new(&python)
                .arg(root.join("scripts/stripe_emulator.py"))
                .arg(port.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("start the Stripe emulator with {python:?} (run scripts/setup): {e}")
                });
            let url = format!("http://127.0.0.1:{port}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while tokio::time::Instant::now() < deadline {
                if let Ok(Some(status)) = process.try_wait() {
                    last = format!("the emulator exited with {status}");
                    break;
                }
                let ready = reqwest::get(format!("{url}/js.stripe.com/v3/")).await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    return Self {
                        url,
                        _process: process,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if last.is_empty() {
                last = "the emulator did not answer within 20 s".to_owned();
            }
        }
        panic!("the Stripe emulator did not start: {last}");
    }
}

/// A server taking payments through its own emulator, accepting webhooks signed with `secrets`.
async fn stripe_app(secrets: &[&str]) -> (TestApp, Emulator) {
    let stripe = Emulator::start().await;
    let mut setup = Setup::default();
    setup.config.payments.provider = PaymentProviderKind::Stripe;
    setup.config.payments.stripe_api_url = stripe.url.clone();
    setup.config.payments.stripe_secret_key = Secret::new(KEY);
    setup.config.payments.stripe_webhook_secrets =
        secrets.iter().map(|s| Secret::new(*s)).collect();
    (TestApp::spawn_with(setup).await, stripe)
}

/// Tells the emulator to post its events to `app`, signed with `secret`.
async fn subscribe_emulator(app: &TestApp, stripe: &Emulator, secret: &str) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/_config/webhooks/{}",
            stripe.url,
            Uuid::new_v4().simple()
        ))
        .form(&[
            ("url", app.url("/api/v1/payments/stripe/webhook")),
            ("secret", secret.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "register the webhook");
}

/// A call to the emulator's API with the secret key, as Stripe.js and the server would make.
async fn emulator(
    stripe: &Emulator,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", stripe.url))
        .bearer_auth(KEY)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Pays an intent with a card, as Stripe.js does: a payment method, attached, then confirmed.
async fn pay(stripe: &Emulator, intent: &str, card: &str) -> (u16, Value) {
    let (status, method) = emulator(
        stripe,
        reqwest::Method::POST,
        "/v1/payment_methods",
        &[
            ("type", "card"),
            ("card[number]", card),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2031"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    assert_eq!(status, 200, "payment method: {method}");
    let method = method["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/payment_intents/{intent}");
    let (status, body) = emulator(
        stripe,
        reqwest::Method::POST,
        &path,
        &[("payment_method", &method)],
    )
    .await;
    assert_eq!(status, 200, "attach: {body}");
    emulator(
        stripe,
        reqwest::Method::POST,
        &format!("{path}/confirm"),
        &[],
    )
    .await
}

const GOOD_CARD: &str = "4242424242424242";
// Attaches, then every charge is declined (Stripe's test card for exactly that).
const DECLINED_CARD: &str = "4000000000000341";

struct Scene {
    admin: TestUser,
    member: TestUser,
    facility: Value,
}

async fn scene(app: &TestApp) -> Scene {
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let facility = app.facility(&admin, MADRID, json!({})).await;
    Scene {
        admin,
        member,
        facility,
    }
}

/// A one-hour hold (two 30-minute slots at 20.00 each: 40.00) `days` from today at `hour`.
async fn held(app: &TestApp, user: &TestUser, facility: &Value, days: i64, hour: u32) -> Uuid {
    let response = app
        .hold(
            user,
            facility,
            &local(MADRID, days, hour, 0),
            &local(MADRID, days, hour + 1, 0),
        )
        .await;
    assert_eq!(response.status(), 201, "hold");
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

async fn checkout(app: &TestApp, user: &TestUser, booking: Uuid) -> reqwest::Response {
    app.booking_action(user, booking, "checkout").await
}

async fn checked_out(app: &TestApp, user: &TestUser, booking: Uuid) -> Value {
    let response = checkout(app, user, booking).await;
    let (status, _, body) = read_response(response).await;
    assert_eq!(status, 201, "checkout: {body}");
    body
}

async fn cancel(app: &TestApp, user: &TestUser, booking: Uuid) -> reqwest::Response {
    app.booking_action(user, booking, "cancel").await
}

async fn booking_status(app: &TestApp, booking: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
        .bind(booking)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The payment's status and refunded amount, from the database.
async fn payment_row(app: &TestApp, payment: &str) -> (String, i64) {
    sqlx::query_as("SELECT status, refunded_cents FROM payments WHERE id = $1::uuid")
        .bind(payment)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn until_payment(app: &TestApp, payment: &str, status: &str) -> (String, i64) {
    eventually(WAIT, &format!("payment {status}"), || async {
        let row = payment_row(app, payment).await;
        (row.0 == status).then_some(row)
    })
    .await
}

/// A Stripe event about `intent` as the emulator would post it.
fn event(id: &str, kind: &str, intent: &str, status: &str, amount: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": chrono::Utc::now().timestamp(),
        "data": {"object": {"id": intent, "object": "payment_intent", "status": status, "amount": amount,
            "last_payment_error": if kind == "payment_intent.payment_failed" { json!({"message": "Your card was declined."}) } else { Value::Null }}}
    }))
    .unwrap()
}

async fn post_webhook(app: &TestApp, body: &[u8], signature: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/payments/stripe/webhook"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    request.send().await.unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_member_pays_a_hold_by_card_and_the_signed_webhook_confirms_it() {
    let (app, stripe) = stripe_app(&["whsec_flow"]).await;
    subscribe_emulator(&app, &stripe, "whsec_flow").await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 10).await;

    // With a provider, a priced hold is confirmed by its payment, not by asking.
    let refused = app.booking_action(&s.member, booking, "confirm").await;
    assert_problem(refused, 409, "payment_required").await;

    let payment = checked_out(&app, &s.member, booking).await;
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["provider"], "stripe");
    assert_eq!(payment["amount_cents"], 4000);
    assert_eq!(payment["booking_id"], booking.to_string());
    let intent = payment["provider_ref"].as_str().unwrap().to_owned();
    assert!(intent.starts_with("pi_"), "{intent}");
    assert!(
        payment["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&intent)
    );
    // Asking again returns the same pending payment.
    let again = checked_out(&app, &s.member, booking).await;
    assert_eq!(again["id"], payment["id"]);
    let (_, at_stripe) = emulator(
        &stripe,
        reqwest::Method::GET,
        &format!("/v1/payment_intents/{intent}"),
        &[],
    )
    .await;
    assert_eq!(at_stripe["metadata"]["booking_id"], booking.to_string());
    assert_eq!(at_stripe["amount"], 4000);

    let (status, confirmed) = pay(&stripe, &intent, GOOD_CARD).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["status"], "succeeded");

    let id = payment["id"].as_str().unwrap();
    until_payment(&app, id, "succeeded").await;
    assert_eq!(booking_status(&app, booking).await, "confirmed");
    let listed = app
        .get(
            &format!("/api/v1/bookings/{booking}/payments"),
            Some(&s.member.token),
        )
        .await;
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "succeeded");
    assert!(listed[0]["client_secret"].is_null(), "{listed}");
    // Staff see it too; another member does not.
    let staff = app
        .get(
            &format!("/api/v1/bookings/{booking}/payments"),
            Some(&s.admin.token),
        )
        .await;
    assert_eq!(staff.status(), 200);
    let stranger = app.user(Role::Member).await;
    let hidden = app
        .get(
            &format!("/api/v1/bookings/{booking}/payments"),
            Some(&stranger.token),
        )
        .await;
    assert_problem(hidden, 404, "booking_not_found").await;
    app.drain_outbox().await;
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE topic LIKE 'payment.%'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(audited, 0, "payment events are delivered");
}

#[tokio::test]
async fn a_declined_card_fails_the_payment_and_the_hold_runs_its_course() {
    let (app, stripe) = stripe_app(&["whsec_declined"]).await;
    subscribe_emulator(&app, &stripe, "whsec_declined").await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 11).await;
    let payment = checked_out(&app, &s.member, booking).await;
    let intent = payment["provider_ref"].as_str().unwrap();

    let (status, body) = pay(&stripe, intent, DECLINED_CARD).await;
    assert_eq!(status, 402, "a declined card: {body}");

    let id = payment["id"].as_str().unwrap();
    until_payment(&app, id, "failed").await;
    assert_eq!(booking_status(&app, booking).await, "held");
    // A new checkout starts a new payment.
    let retry = checked_out(&app, &s.member, booking).await;
    assert_ne!(retry["id"], payment["id"]);
    assert_ne!(retry["provider_ref"], payment["provider_ref"]);
    assert_eq!(app.count("payments").await, 2);
}

#[tokio::test]
async fn a_payment_after_the_hold_expired_confirms_the_booking_when_the_slot_is_still_free() {
    let (app, stripe) = stripe_app(&["whsec_late_free"]).await;
    subscribe_emulator(&app, &stripe, "whsec_late_free").await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 12).await;
    let payment = checked_out(&app, &s.member, booking).await;
    expire(&app, booking).await;

    let (status, _) = pay(
        &stripe,
        payment["provider_ref"].as_str().unwrap(),
        GOOD_CARD,
    )
    .await;
    assert_eq!(status, 200);

    until_payment(&app, payment["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(booking_status(&app, booking).await, "confirmed");
    assert_eq!(app.overlapping_active_bookings().await, 0);
}

/// Runs a hold out: its expiry moved into the past, and the sweeper records it expired.
async fn expire(app: &TestApp, booking: Uuid) {
    sqlx::query("UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(booking)
        .execute(&app.db)
        .await
        .unwrap();
    eventually(WAIT, "the hold to expire", || async {
        (booking_status(app, booking).await == "expired").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_payment_after_the_hold_expired_and_the_slot_was_taken_is_refunded_and_the_member_told() {
    let (app, stripe) = stripe_app(&["whsec_late_taken"]).await;
    subscribe_emulator(&app, &stripe, "whsec_late_taken").await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 13).await;
    let payment = checked_out(&app, &s.member, booking).await;
    expire(&app, booking).await;
    let rival = app.user(Role::Member).await;
    let taken = held(&app, &rival, &s.facility, 3, 13).await;

    let intent = payment["provider_ref"].as_str().unwrap();
    let (status, _) = pay(&stripe, intent, GOOD_CARD).await;
    assert_eq!(status, 200);

    let (_, refunded) = until_payment(&app, payment["id"].as_str().unwrap(), "refunded").await;
    assert_eq!(refunded, 4000);
    assert_eq!(booking_status(&app, booking).await, "expired");
    assert_eq!(booking_status(&app, taken).await, "held");
    assert_eq!(app.overlapping_active_bookings().await, 0);
    // The refund is real at the provider, made once.
    let (status, refunds) = emulator(
        &stripe,
        reqwest::Method::GET,
        &format!("/v1/refunds?payment_intent={intent}"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{refunds}");
    let refunds = refunds["data"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], 4000);
    // And the member is told.
    app.drain_outbox().await;
    let told = app
        .get("/api/v1/me/notifications", Some(&s.member.token))
        .await;
    let told: Value = told.json().await.unwrap();
    let refund = told
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "payment.refunded")
        .unwrap_or_else(|| panic!("no refund notification in {told}"));
    assert_eq!(refund["data"]["reason"], "slot_taken");
    assert_eq!(refund["data"]["refunded_cents"], 4000);
}

#[tokio::test]
async fn forged_stale_unsigned_and_replayed_webhooks_change_nothing() {
    // The server creates its intents there.
    let (app, _stripe) = stripe_app(&["whsec_guard"]).await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 14).await;
    let payment = checked_out(&app, &s.member, booking).await;
    let intent = payment["provider_ref"].as_str().unwrap();
    let body = event(
        "evt_guard_1",
        "payment_intent.succeeded",
        intent,
        "succeeded",
        4000,
    );
    let secret = b"whsec_guard";

    let refusals = [
        None,
        Some(signature::header(b"whsec_forged", now(), &body)),
        Some(signature::header(secret, now() - 301, &body)),
        Some(signature::header(secret, now() + 301, &body)),
        Some(format!(
            "t={},v0={}",
            now(),
            signature::sign(secret, now(), &body)
        )),
        Some("t=abc,v1=zz".to_owned()),
    ];
    for header in &refusals {
        let response = post_webhook(&app, &body, header.as_deref()).await;
        assert_problem(response, 400, "invalid_signature").await;
    }
    // A body changed after signing.
    let signed = signature::header(secret, now(), &body);
    let mut tampered = body.clone();
    let at = tampered.len() - 3;
    tampered[at] = b' ';
    assert_problem(
        post_webhook(&app, &tampered, Some(&signed)).await,
        400,
        "invalid_signature",
    )
    .await;
    assert_eq!(
        payment_row(&app, payment["id"].as_str().unwrap()).await.0,
        "pending"
    );
    assert_eq!(app.count("payment_events").await, 0);
    assert_eq!(booking_status(&app, booking).await, "held");

    // The genuine event applies once; its replay changes nothing.
    let response = post_webhook(&app, &body, Some(&signed)).await;
    let (status, _, receipt) = read_response(response).await;
    assert_eq!((status, receipt["applied"].clone()), (200, json!(true)));
    let replay = post_webhook(&app, &body, Some(&signature::header(secret, now(), &body))).await;
    let (status, _, receipt) = read_response(replay).await;
    assert_eq!((status, receipt["applied"].clone()), (200, json!(false)));
    // An older failure delivered late cannot undo the success.
    let failed = event(
        "evt_guard_0",
        "payment_intent.payment_failed",
        intent,
        "requires_payment_method",
        4000,
    );
    let late = post_webhook(
        &app,
        &failed,
        Some(&signature::header(secret, now(), &failed)),
    )
    .await;
    let (status, _, receipt) = read_response(late).await;
    assert_eq!((status, receipt["applied"].clone()), (200, json!(false)));

    assert_eq!(
        payment_row(&app, payment["id"].as_str().unwrap()).await.0,
        "succeeded"
    );
    assert_eq!(app.count("payment_events").await, 2);
    assert_eq!(booking_status(&app, booking).await, "confirmed");
    // A signed body that is not an event is refused, and changes nothing.
    let junk = br#"{"hello":"world"}"#;
    let response = post_webhook(&app, junk, Some(&signature::header(secret, now(), junk))).await;
    assert_problem(response, 400, "invalid_event").await;
    assert_eq!(app.count("payment_events").await, 2);
}

#[tokio::test]
async fn a_signature_made_with_either_secret_of_a_rotation_is_accepted() {
    // The server creates its intents there.
    let (app, _stripe) = stripe_app(&["whsec_new", "whsec_old"]).await;
    let s = scene(&app).await;
    let first = held(&app, &s.member, &s.facility, 3, 15).await;
    let second = held(&app, &s.member, &s.facility, 3, 17).await;
    let paid_first = checked_out(&app, &s.member, first).await;
    let paid_second = checked_out(&app, &s.member, second).await;

    let by_old = event(
        "evt_rotation_old",
        "payment_intent.succeeded",
        paid_first["provider_ref"].as_str().unwrap(),
        "succeeded",
        4000,
    );
    let response = post_webhook(
        &app,
        &by_old,
        Some(&signature::header(b"whsec_old", now(), &by_old)),
    )
    .await;
    assert_eq!(response.status(), 200);
    // Stripe signs with every live secret during a rotation; one matching v1 is enough.
    let by_both = event(
        "evt_rotation_both",
        "payment_intent.succeeded",
        paid_second["provider_ref"].as_str().unwrap(),
        "succeeded",
        4000,
    );
    let t = now();
    let header = format!(
        "t={t},v1={},v1={}",
        signature::sign(b"whsec_retired", t, &by_both),
        signature::sign(b"whsec_new", t, &by_both)
    );
    assert_eq!(
        post_webhook(&app, &by_both, Some(&header)).await.status(),
        200
    );

    assert_eq!(booking_status(&app, first).await, "confirmed");
    assert_eq!(booking_status(&app, second).await, "confirmed");
}

#[tokio::test]
async fn concurrent_checkouts_of_one_hold_make_one_payment() {
    // The server creates its intents there.
    let (app, _stripe) = stripe_app(&["whsec_race"]).await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 16).await;

    let answers =
        futures::future::join_all((0..8).map(|_| checkout(&app, &s.member, booking))).await;
    let mut ids = std::collections::HashSet::new();
    for answer in answers {
        let (status, _, body) = read_response(answer).await;
        assert_eq!(status, 201, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every checkout answered the same payment");
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payments WHERE booking_id = $1 AND status = 'pending'",
    )
    .bind(booking)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(pending, 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    // The server creates its intents there.
    let (app, _stripe) = stripe_app(&["whsec_storm"]).await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 18).await;
    let payment = checked_out(&app, &s.member, booking).await;
    let body = event(
        "evt_storm",
        "payment_intent.succeeded",
        payment["provider_ref"].as_str().unwrap(),
        "succeeded",
        4000,
    );
    let header = signature::header(b"whsec_storm", now(), &body);

    let answers =
        futures::future::join_all((0..8).map(|_| post_webhook(&app, &body, Some(&header)))).await;
    let mut applied = 0;
    for answer in answers {
        let (status, _, receipt) = read_response(answer).await;
        assert_eq!(status, 200, "{receipt}");
        applied += usize::from(receipt["applied"] == json!(true));
    }
    assert_eq!(applied, 1);
    assert_eq!(app.count("payment_events").await, 1);
    app.drain_outbox().await;
    let confirmations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE kind = 'booking.confirmed' AND user_id = $1",
    )
    .bind(s.member.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(confirmations, 1);
}

#[tokio::test]
async fn cancelling_a_paid_booking_refunds_it_in_full_early_and_less_the_fee_late() {
    let (app, stripe) = stripe_app(&["whsec_cancel"]).await;
    subscribe_emulator(&app, &stripe, "whsec_cancel").await;
    let s = scene(&app).await;
    let early = held(&app, &s.member, &s.facility, 4, 10).await;
    let late = held(&app, &s.member, &s.facility, 4, 12).await;
    let mut payments = Vec::new();
    for booking in [early, late] {
        let payment = checked_out(&app, &s.member, booking).await;
        let (status, _) = pay(
            &stripe,
            payment["provider_ref"].as_str().unwrap(),
            GOOD_CARD,
        )
        .await;
        assert_eq!(status, 200);
        until_payment(&app, payment["id"].as_str().unwrap(), "succeeded").await;
        payments.push(payment);
    }

    // Inside the free window (the default 24 hours' notice): all of it back.
    assert_eq!(cancel(&app, &s.member, early).await.status(), 200);
    let (_, refunded) = until_payment(&app, payments[0]["id"].as_str().unwrap(), "refunded").await;
    assert_eq!(refunded, 4000);

    // With 30 days' notice required, the same cancellation is late: the 50% fee is kept.
    app.make_cancellations_late().await;
    let response = cancel(&app, &s.member, late).await;
    let (status, _, body) = read_response(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cancellation_fee_cents"], 2000);
    let (_, refunded) = until_payment(&app, payments[1]["id"].as_str().unwrap(), "refunded").await;
    assert_eq!(refunded, 2000);
    let intent = payments[1]["provider_ref"].as_str().unwrap();
    let (_, refunds) = emulator(
        &stripe,
        reqwest::Method::GET,
        &format!("/v1/refunds?payment_intent={intent}"),
        &[],
    )
    .await;
    assert_eq!(refunds["data"][0]["amount"], 2000);
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reconciliation_applies_a_payment_whose_webhook_was_lost() {
    // No webhook is registered: the emulator's event never arrives.
    let (app, stripe) = stripe_app(&["whsec_lost"]).await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 19).await;
    let payment = checked_out(&app, &s.member, booking).await;
    let (status, _) = pay(
        &stripe,
        payment["provider_ref"].as_str().unwrap(),
        GOOD_CARD,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        payment_row(&app, payment["id"].as_str().unwrap()).await.0,
        "pending"
    );

    let bookings = &app.state.bookings;
    let done = bookings.reconcile_payments(Duration::ZERO).await.unwrap();
    assert_eq!(done.payments, 1);
    assert_eq!(
        payment_row(&app, payment["id"].as_str().unwrap()).await.0,
        "succeeded"
    );
    assert_eq!(booking_status(&app, booking).await, "confirmed");
    // Once: a second pass finds nothing to do.
    let again = bookings.reconcile_payments(Duration::ZERO).await.unwrap();
    assert_eq!(again.payments, 0);
}

#[tokio::test]
async fn staff_take_payment_on_site_and_a_late_cancellation_keeps_the_fee() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 10).await;
    // On site, a checkout records that the member will pay at the club.
    let pending = checked_out(&app, &s.member, booking).await;
    assert_eq!(pending["provider"], "onsite");
    assert!(pending["client_secret"].is_null(), "{pending}");

    let path = format!("/api/v1/bookings/{booking}/mark-paid");
    assert_problem(
        app.post(&path, json!({}), Some(&s.member.token)).await,
        403,
        "forbidden",
    )
    .await;
    let response = app.post(&path, json!({}), Some(&s.admin.token)).await;
    let (status, _, body) = read_response(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "confirmed");
    // Again: nothing changes.
    assert_eq!(
        app.post(&path, json!({}), Some(&s.admin.token))
            .await
            .status(),
        200
    );
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT provider, status FROM payments WHERE booking_id = $1")
            .bind(booking)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(rows, vec![("onsite".to_owned(), "succeeded".to_owned())]);

    app.make_cancellations_late().await;
    let cancelled = app.booking_action(&s.member, booking, "cancel").await;
    assert_eq!(cancelled.status(), 200);
    let (status, refunded) = payment_row(&app, pending["id"].as_str().unwrap()).await;
    assert_eq!((status.as_str(), refunded), ("refunded", 2000));
}

#[tokio::test]
async fn bad_checkouts_and_payments_are_problems_that_change_nothing() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let booking = held(&app, &s.member, &s.facility, 3, 10).await;
    let stranger = app.user(Role::Member).await;

    assert_problem(
        checkout(&app, &stranger, booking).await,
        404,
        "booking_not_found",
    )
    .await;
    assert_problem(
        checkout(&app, &s.member, Uuid::now_v7()).await,
        404,
        "booking_not_found",
    )
    .await;
    let bad_id = app
        .post(
            "/api/v1/bookings/not-a-uuid/checkout",
            json!({}),
            Some(&s.member.token),
        )
        .await;
    assert_problem(bad_id, 400, "invalid_path").await;
    let anonymous = app
        .post(
            &format!("/api/v1/bookings/{booking}/checkout"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("payments").await, 0);

    // A confirmed booking has nothing left to check out; a cancelled one cannot be paid.
    let confirm = app.booking_action(&s.member, booking, "confirm").await;
    assert_eq!(confirm.status(), 200);
    assert_problem(
        checkout(&app, &s.member, booking).await,
        409,
        "already_confirmed",
    )
    .await;
    let other = held(&app, &s.member, &s.facility, 3, 12).await;
    app.booking_action(&s.member, other, "cancel").await;
    assert_problem(
        checkout(&app, &s.member, other).await,
        409,
        "booking_not_active",
    )
    .await;
    let paid = app.booking_action(&s.admin, other, "mark-paid").await;
    assert_problem(paid, 409, "booking_not_active").await;
    // A free facility has nothing to pay.
    let free = app
        .facility(&s.admin, MADRID, json!({"price_cents": 0}))
        .await;
    let gratis = held(&app, &s.member, &free, 3, 10).await;
    assert_problem(
        checkout(&app, &s.member, gratis).await,
        409,
        "nothing_to_pay",
    )
    .await;
    assert_eq!(app.count("payments").await, 0);
    // Without configured secrets, no webhook is ever valid.
    let body = event(
        "evt_none",
        "payment_intent.succeeded",
        "pi_x",
        "succeeded",
        1,
    );
    let response = post_webhook(&app, &body, Some(&signature::header(b"", now(), &body))).await;
    assert_problem(response, 400, "invalid_signature").await;
}
