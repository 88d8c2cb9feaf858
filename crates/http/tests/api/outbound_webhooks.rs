//! Outbound webhooks against a real receiver on loopback: signed deliveries, retries under the same
//! event id, dead letters, the address policy at registration and at delivery, endpoints disabled
//! for failing too long, deleted endpoints, and redelivered outbox events.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use clubpulse_domain::Role;
use clubpulse_webhooks::signature;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, Setup, TestApp, TestUser, assert_problem, eventually, local};

const MADRID: &str = "Europe/Madrid";
const WAIT: Duration = Duration::from_secs(15);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first `fail_first` requests and 200
/// after.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .fallback(
                |State((got, fail_first)): State<(Arc<Mutex<Vec<Received>>>, usize)>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let mut got = got.lock().unwrap();
                    got.push(Received { headers, body });
                    if got.len() <= fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            )
            .with_state((got.clone(), fail_first));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/clubpulse", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        eventually(WAIT, &format!("{count} deliveries"), || async {
            let got = self.received();
            (got.len() >= count).then_some(got)
        })
        .await
    }
}

/// A server whose delivery jobs retry quickly, up to three attempts.
fn setup(allow_private: bool) -> Setup {
    let mut setup = Setup::default();
    setup.config.jobs.max_attempts = 3;
    setup.config.jobs.backoff_base_ms = 20;
    setup.config.webhooks.allow_private_targets = allow_private;
    setup
}

async fn register(app: &TestApp, admin: &TestUser, url: &str, events: &[&str]) -> Value {
    let response = app
        .post(
            "/api/v1/admin/webhooks",
            json!({"url": url, "events": events}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), 201, "registration");
    response.json().await.unwrap()
}

/// A member's hold of tomorrow-but-one 10:00–11:00 at a fresh facility; returns the booking.
async fn hold(app: &TestApp, admin: &TestUser) -> (TestUser, Value) {
    let member = app.user(Role::Member).await;
    let facility = app.facility(admin, MADRID, json!({})).await;
    let response = app
        .hold(
            &member,
            &facility,
            &local(MADRID, 2, 10, 0),
            &local(MADRID, 2, 11, 0),
        )
        .await;
    assert_eq!(response.status(), 201, "hold");
    (member, response.json().await.unwrap())
}

async fn deliveries(app: &TestApp, admin: &TestUser, endpoint: &Value) -> Vec<Value> {
    let response = app
        .get(
            &format!(
                "/api/v1/admin/webhooks/{}/deliveries",
                endpoint["id"].as_str().unwrap()
            ),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits until the endpoint's only delivery has `status`, and returns it.
async fn settled(app: &TestApp, admin: &TestUser, endpoint: &Value, status: &str) -> Value {
    eventually(WAIT, &format!("a {status} delivery"), || async {
        let list = deliveries(app, admin, endpoint).await;
        list.first()
            .filter(|d| d["status"] == status && list.len() == 1)
            .cloned()
    })
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_of_the_same_signed_event_until_it_accepts() {
    let receiver = Receiver::start(2).await;
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let endpoint = register(&app, &admin, &receiver.url(), &["booking.held"]).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 64,
        "{secret}"
    );

    let (member, booking) = hold(&app, &admin).await;

    let got = receiver.wait_for(3).await;
    let delivery = settled(&app, &admin, &endpoint, "succeeded").await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    assert_eq!(delivery["last_response_status"], 200);
    assert_eq!(delivery["type"], "booking.held");
    assert!(delivery["completed_at"].is_string());
    let first = got[0].json();
    assert_eq!(first["type"], "booking.held");
    assert_eq!(first["data"]["booking_id"], booking["id"]);
    assert_eq!(first["data"]["user_id"], member.id.to_string());
    assert_eq!(first["id"], delivery["event_id"]);
    assert!(
        chrono::DateTime::parse_from_rfc3339(first["created"].as_str().unwrap()).is_ok(),
        "{first}"
    );
    for request in &got {
        assert_eq!(
            request.json()["id"],
            first["id"],
            "every retry carries the same id"
        );
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("user-agent"), "ClubPulse-Webhooks/1");
        let signed = signature::verify(
            Some(request.header("clubpulse-signature")),
            &request.body,
            &[secret.as_str()],
            now(),
            signature::TOLERANCE_SECONDS,
        );
        assert!(
            signed.is_ok(),
            "{signed:?}: {}",
            request.header("clubpulse-signature")
        );
        let wrong = signature::verify(
            Some(request.header("clubpulse-signature")),
            &request.body,
            &["whsec_another"],
            now(),
            signature::TOLERANCE_SECONDS,
        );
        assert!(wrong.is_err());
    }
    app.drain_jobs(WAIT).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "nothing more after the success"
    );
    let listed: Value = app
        .get("/api/v1/admin/webhooks", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], endpoint["id"]);
    assert!(listed[0]["failing_since"].is_null(), "{listed}");
    assert!(
        listed[0].get("secret").is_none(),
        "the list never shows a secret"
    );
}

#[tokio::test]
async fn a_delivery_that_fails_every_attempt_ends_dead_and_in_the_dead_letter_queue() {
    // Fails the three attempts the job has, then accepts.
    let receiver = Receiver::start(3).await;
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let endpoint = register(&app, &admin, &receiver.url(), &["booking.held"]).await;

    hold(&app, &admin).await;

    let delivery = settled(&app, &admin, &endpoint, "dead").await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    assert_eq!(delivery["last_response_status"], 500);
    assert!(
        delivery["last_error"].as_str().unwrap().contains("500"),
        "{delivery}"
    );
    app.drain_jobs(WAIT).await;
    assert_eq!(receiver.received().len(), 3);
    let dead = app.state.jobs.dead_list(10, 0).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].kind, "webhook.deliver");
    assert_eq!(dead[0].payload["delivery_id"], delivery["id"]);
    assert_eq!(dead[0].attempts, 3);
    let endpoints: Value = app
        .get("/api/v1/admin/webhooks", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert!(endpoints[0]["failing_since"].is_string(), "{endpoints}");
    assert_eq!(
        endpoints[0]["enabled"], true,
        "a fresh failure disables nothing"
    );

    // An admin's retry from the dead-letter queue sends the same event again.
    let retried = app
        .post(
            "/api/v1/admin/jobs/dead/retry",
            json!({}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(retried.status(), 200);
    let delivery = settled(&app, &admin, &endpoint, "succeeded").await;
    assert_eq!(delivery["attempts"], 4, "{delivery}");
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].json()["id"], got[0].json()["id"]);
}

#[tokio::test]
async fn a_loopback_or_private_target_is_refused_at_registration() {
    let receiver = Receiver::start(0).await;
    let app = TestApp::spawn_with(setup(false)).await;
    let admin = app.user(Role::Admin).await;

    for url in [
        receiver.url(),
        format!("http://localhost:{}/", receiver.addr.port()),
        "http://[::1]/hook".to_owned(),
        "http://[::ffff:127.0.0.1]/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "https://10.0.0.8/".to_owned(),
        "https://100.64.1.1/".to_owned(),
        "http://2130706433/".to_owned(),
        "http://[fd00::1]/".to_owned(),
    ] {
        let response = app
            .post(
                "/api/v1/admin/webhooks",
                json!({"url": url, "events": ["booking.held"]}),
                Some(&admin.token),
            )
            .await;
        assert_problem(response, 422, "webhook_target_forbidden").await;
    }
    assert_eq!(app.count("webhook_endpoints").await, 0);
}

#[tokio::test]
async fn an_endpoint_stored_with_a_loopback_url_is_refused_at_delivery() {
    let receiver = Receiver::start(0).await;
    let app = TestApp::spawn_with(setup(false)).await;
    let admin = app.user(Role::Admin).await;
    // Stored as if registered while private targets were allowed (or before its name moved to a
    // private address): the literal is checked before sending, the name by the resolver.
    let mut endpoints = Vec::new();
    for url in [
        receiver.url(),
        format!("http://localhost:{}/hooks", receiver.addr.port()),
    ] {
        let stored = clubpulse_storage::webhooks::insert_endpoint(
            &app.db,
            &url,
            &["booking.held".to_owned()],
            "whsec_0123456789abcdef",
            admin.id,
        )
        .await
        .unwrap();
        endpoints.push(json!({"id": stored.id}));
    }

    hold(&app, &admin).await;

    for endpoint in &endpoints {
        let delivery = settled(&app, &admin, endpoint, "dead").await;
        assert_eq!(delivery["attempts"], 1, "refused at once: {delivery}");
        assert!(delivery["last_response_status"].is_null());
        assert!(
            delivery["last_error"]
                .as_str()
                .unwrap()
                .contains("not public"),
            "{delivery}"
        );
    }
    app.drain_jobs(WAIT).await;
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    let dead = app.state.jobs.dead_list(10, 0).await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().all(|d| d.attempts == 1), "{dead:?}");
}

#[tokio::test]
async fn an_endpoint_failing_for_over_a_day_is_disabled_and_its_admin_notified() {
    let receiver = Receiver::start(usize::MAX).await;
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let endpoint = register(
        &app,
        &admin,
        &receiver.url(),
        &["booking.held", "booking.cancelled"],
    )
    .await;
    let id: Uuid = endpoint["id"].as_str().unwrap().parse().unwrap();
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours' WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    // The admin's open page hears of it live, on their own channel.
    let mut dashboard = crate::ws_client::WsClient::connect(app.addr, &admin.token).await;

    let (member, booking) = hold(&app, &admin).await;

    let delivery = settled(&app, &admin, &endpoint, "dead").await;
    assert_eq!(
        delivery["attempts"], 1,
        "disabled at the first failure: {delivery}"
    );
    app.drain_jobs(WAIT).await;
    let listed: Value = app
        .get("/api/v1/admin/webhooks", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["enabled"], false, "{listed}");
    assert!(listed[0]["disabled_at"].is_string());
    let notes: Value = app
        .get("/api/v1/me/notifications", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    let note = notes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "webhook.disabled")
        .unwrap_or_else(|| panic!("no webhook.disabled notification: {notes}"));
    assert_eq!(note["data"]["endpoint_id"], endpoint["id"]);
    let live = dashboard.next_event("user").await;
    assert_eq!(live["notification"]["id"], note["id"], "{live}");
    assert_eq!(live["notification"]["kind"], "webhook.disabled");

    // A disabled endpoint is sent nothing more.
    let cancelled = app
        .booking_action(&member, booking["id"].as_str().unwrap(), "cancel")
        .await;
    assert_eq!(cancelled.status(), 200);
    app.drain_jobs(WAIT).await;
    assert_eq!(deliveries(&app, &admin, &endpoint).await.len(), 1);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_deleted_endpoint_receives_nothing() {
    let kept_receiver = Receiver::start(0).await;
    let deleted_receiver = Receiver::start(0).await;
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let kept = register(&app, &admin, &kept_receiver.url(), &["booking.held"]).await;
    let deleted = register(&app, &admin, &deleted_receiver.url(), &["booking.held"]).await;
    let path = format!("/api/v1/admin/webhooks/{}", deleted["id"].as_str().unwrap());
    let response = app
        .request(Method::DELETE, &path, None, Some(&admin.token))
        .await;
    assert_eq!(response.status(), 204);

    hold(&app, &admin).await;

    settled(&app, &admin, &kept, "succeeded").await;
    app.drain_jobs(WAIT).await;
    assert_eq!(kept_receiver.received().len(), 1);
    assert!(deleted_receiver.received().is_empty());
    let again = app
        .request(Method::DELETE, &path, None, Some(&admin.token))
        .await;
    assert_problem(again, 404, "webhook_not_found").await;
    let listed: Value = app
        .get("/api/v1/admin/webhooks", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    app.flush_audit().await;
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY seq",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        actions,
        ["webhook.created", "webhook.created", "webhook.deleted"]
    );
}

#[tokio::test]
async fn a_redelivered_outbox_event_records_and_queues_no_new_delivery() {
    let receiver = Receiver::start(0).await;
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let endpoint = register(&app, &admin, &receiver.url(), &["booking.held"]).await;
    hold(&app, &admin).await;
    settled(&app, &admin, &endpoint, "succeeded").await;
    app.drain_jobs(WAIT).await;

    // The same event owed again, as after a relay that died between its effects and its commit.
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, aggregate_id, payload, created_at)
         SELECT event_id, event_type, (payload->>'booking_id')::uuid, payload, event_created_at
         FROM webhook_deliveries",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.drain_outbox().await;
    app.drain_jobs(WAIT).await;

    assert_eq!(app.count("webhook_deliveries").await, 1);
    assert_eq!(receiver.received().len(), 1);
    let stats = app.state.jobs.stats().await.unwrap();
    assert_eq!(stats.dead, 0, "{stats:?}");
}

#[tokio::test]
async fn a_waitlist_offer_is_delivered_as_waitlist_offered_with_an_id_of_its_own() {
    let receiver = Receiver::start(0).await;
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let endpoint = register(
        &app,
        &admin,
        &receiver.url(),
        &["waitlist.offered", "booking.cancelled"],
    )
    .await;
    let (first, booking) = hold(&app, &admin).await;
    let waiter = app.user(Role::Member).await;
    let joined = app
        .post(
            "/api/v1/waitlist",
            json!({"facility_id": booking["facility_id"], "start": booking["start"], "end": booking["end"]}),
            Some(&waiter.token),
        )
        .await;
    assert_eq!(joined.status(), 201);

    let cancelled = app
        .booking_action(&first, booking["id"].as_str().unwrap(), "cancel")
        .await;
    assert_eq!(cancelled.status(), 200);

    receiver.wait_for(2).await;
    app.drain_jobs(WAIT).await;
    let got: Vec<Value> = receiver.received().iter().map(Received::json).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    let offer = got
        .iter()
        .find(|e| e["type"] == "waitlist.offered")
        .unwrap();
    assert_eq!(offer["data"]["user_id"], waiter.id.to_string());
    assert_eq!(offer["data"]["waitlist_offer"], true);
    assert!(got.iter().any(|e| e["type"] == "booking.cancelled"));
    assert_eq!(deliveries(&app, &admin, &endpoint).await.len(), 2);
    let held_event: Option<Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM webhook_deliveries WHERE event_type = 'booking.held'",
    )
    .fetch_optional(&app.db)
    .await
    .unwrap();
    assert!(held_event.is_none(), "booking.held was not subscribed to");
}

#[tokio::test]
async fn bad_webhook_requests_are_problems_and_change_nothing() {
    let app = TestApp::spawn_with(setup(false)).await;
    let admin = app.user(Role::Admin).await;
    let staff = app.user(Role::Staff).await;
    let ok = "https://8.8.8.8/hook";
    let invalid = [
        (
            json!({"url": "ftp://8.8.8.8/", "events": ["booking.held"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["booking.held"]}),
            "url",
        ),
        (
            json!({"url": "https://user:pw@8.8.8.8/", "events": ["booking.held"]}),
            "url",
        ),
        (
            json!({"url": "https://user@8.8.8.8/", "events": ["booking.held"]}),
            "url",
        ),
        (
            json!({"url": "https://", "events": ["booking.held"]}),
            "url",
        ),
        (
            json!({"url": format!("https://8.8.8.8/{}", "a".repeat(2100)), "events": ["booking.held"]}),
            "url",
        ),
        (json!({"url": ok, "events": []}), "events"),
        (
            json!({"url": ok, "events": ["booking.created"]}),
            "events[0]",
        ),
        (
            json!({"url": ok, "events": ["booking.held", "BOOKING.HELD"]}),
            "events[1]",
        ),
        (json!({"url": ok, "events": "booking.held"}), ""),
        (json!({"url": ok}), ""),
        (json!({"events": ["booking.held"]}), ""),
        (
            json!({"url": ok, "events": ["booking.held"], "secret": "mine"}),
            "",
        ),
    ];
    for (body, field) in invalid {
        let response = app
            .post("/api/v1/admin/webhooks", body.clone(), Some(&admin.token))
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        if !field.is_empty() {
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        }
    }
    let body = json!({"url": ok, "events": ["booking.held"]});
    assert_problem(
        app.post("/api/v1/admin/webhooks", body.clone(), Some(&staff.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post("/api/v1/admin/webhooks", body, None).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.get("/api/v1/admin/webhooks", Some(&staff.token)).await,
        403,
        "forbidden",
    )
    .await;
    let nobody = Uuid::new_v4();
    for (method, path, status, code) in [
        (
            Method::DELETE,
            "/api/v1/admin/webhooks/xyz".to_owned(),
            400,
            "invalid_path",
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/webhooks/{nobody}"),
            404,
            "webhook_not_found",
        ),
        (
            Method::GET,
            "/api/v1/admin/webhooks/xyz/deliveries".to_owned(),
            400,
            "invalid_path",
        ),
        (
            Method::GET,
            format!("/api/v1/admin/webhooks/{nobody}/deliveries"),
            404,
            "webhook_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/admin/webhooks/{nobody}/deliveries?limit=0"),
            422,
            "validation_failed",
        ),
        (
            Method::GET,
            format!("/api/v1/admin/webhooks/{nobody}/deliveries?limit=x"),
            400,
            "invalid_query",
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/webhooks/{nobody}"),
            403,
            "forbidden",
        ),
    ] {
        let token = if status == 403 {
            &staff.token
        } else {
            &admin.token
        };
        let response = app.request(method.clone(), &path, None, Some(token)).await;
        assert_problem(response, status, code).await;
    }
    assert_eq!(app.count("webhook_endpoints").await, 0);
}

#[tokio::test]
async fn a_delivery_job_that_runs_before_the_relay_commits_waits_for_it_and_delivers_once() {
    let receiver = Receiver::start(0).await;
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let endpoint = register(&app, &admin, &receiver.url(), &["payment.succeeded"]).await;

    // A relay's transaction, as it stands between recording a delivery and committing.
    let mut relay = app.db.begin().await.unwrap();
    let claimed = clubpulse_storage::outbox::claim(&mut relay, 1)
        .await
        .unwrap();
    assert!(claimed.is_some(), "the relay lock was free");
    let recorded = clubpulse_storage::webhooks::record_deliveries(
        &mut relay,
        &[clubpulse_storage::webhooks::NewEvent {
            id: Uuid::new_v4(),
            event_type: "payment.succeeded",
            created_at: chrono::Utc::now(),
            data: json!({"payment_id": Uuid::new_v4(), "amount_cents": 2000}),
        }],
    )
    .await
    .unwrap();
    assert_eq!(recorded.len(), 1);
    app.state
        .jobs
        .push(&clubpulse_webhooks::delivery::DeliverWebhook {
            delivery_id: recorded[0],
        })
        .await
        .unwrap();
    eventually(WAIT, "the job to wait for the relay", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        (waiting > 0).then_some(())
    })
    .await;
    assert!(receiver.received().is_empty());

    relay.commit().await.unwrap();

    let delivery = settled(&app, &admin, &endpoint, "succeeded").await;
    assert_eq!(
        delivery["attempts"], 1,
        "no attempt was spent waiting: {delivery}"
    );
    app.drain_jobs(WAIT).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "payment.succeeded");
    assert_eq!(got[0].json()["data"]["amount_cents"], 2000);
}

#[tokio::test]
async fn without_redis_deliveries_are_queued_in_postgresql_and_retried_the_same_way() {
    let receiver = Receiver::start(1).await;
    let app = TestApp::spawn_with(Setup {
        backend: Backend::InProcess,
        ..setup(true)
    })
    .await;
    let admin = app.user(Role::Admin).await;
    let endpoint = register(&app, &admin, &receiver.url(), &["booking.held"]).await;

    hold(&app, &admin).await;

    let delivery = settled(&app, &admin, &endpoint, "succeeded").await;
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    app.drain_jobs(WAIT).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body, "a retry sends the very same body");
}

#[tokio::test]
async fn a_payment_taken_and_refunded_is_delivered_as_payment_succeeded_then_refunded() {
    let app = TestApp::spawn_with(setup(true)).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::start(0).await;
    let endpoint = register(
        &app,
        &admin,
        &receiver.url(),
        &["payment.succeeded", "payment.refunded"],
    )
    .await;
    let (member, booking) = hold(&app, &admin).await;
    let id = booking["id"].as_str().unwrap();
    let paid = app.booking_action(&admin, id, "mark-paid").await;
    assert_eq!(paid.status(), 200);
    // Deliveries are independent jobs: the first one arrives before the refund is made, so the
    // order below is the order of the events.
    receiver.wait_for(1).await;
    // Cancelled with 30 days' notice required: late, so half the price comes back.
    app.make_cancellations_late().await;
    let cancelled = app.booking_action(&member, id, "cancel").await;
    assert_eq!(cancelled.status(), 200);

    let got = receiver.wait_for(2).await;
    let events: Vec<Value> = got.iter().map(Received::json).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["payment.succeeded", "payment.refunded"],
        "{events:?}"
    );
    for (received, event) in got.iter().zip(&events) {
        assert_eq!(event["data"]["booking_id"], id);
        let verified = signature::verify(
            Some(received.header("clubpulse-signature")),
            &received.body,
            &[endpoint["secret"].as_str().unwrap()],
            now(),
            signature::TOLERANCE_SECONDS,
        );
        assert!(verified.is_ok(), "{verified:?}");
    }
    assert_eq!(events[0]["data"]["amount_cents"], 4000);
    assert_eq!(events[1]["data"]["refunded_cents"], 2000);
    assert_eq!(events[1]["data"]["refund_reason"], "cancelled");
    // Booking events were not asked for, and none came.
    app.drain_outbox().await;
    app.drain_jobs(WAIT).await;
    assert_eq!(receiver.received().len(), 2);
}
