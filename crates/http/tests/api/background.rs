//! Work done off the request: e-mail through a real SMTP sink, the password-reset flow, the
//! dead-letter queue as operators see it, and the audit log.

use std::time::Duration;

use clubpulse_config::Secret;
use clubpulse_domain::Role;
use clubpulse_mail::sink::{ReceivedMessage, SmtpSink};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Setup, TestApp, assert_problem, local};

const MAIL_WAIT: Duration = Duration::from_secs(15);

fn with_smtp(sink: &SmtpSink, backend: Backend) -> Setup {
    let mut setup = Setup {
        backend,
        ..Setup::default()
    };
    setup.config.mail.smtp_url = Some(Secret::new(sink.url()));
    setup.config.mail.from = "Club Pulse <no-reply@clubpulse.test>".to_owned();
    setup
}

/// The token in a reset message's link.
fn reset_token(message: &ReceivedMessage) -> String {
    let at = message
        .text
        .find("token=")
        .expect("a token= link in the text");
    message.text[at + "token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.~%".contains(*c))
        .collect()
}

async fn reset_flow(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(with_smtp(&sink, backend)).await;
    let member = app.user(Role::Member).await;
    let admin = app.user(Role::Admin).await;

    // The same answer for an account and for nobody.
    for email in [member.email.as_str(), "nobody@clubpulse.test"] {
        let response = app
            .post(
                "/api/v1/auth/password-reset",
                json!({ "email": email }),
                None,
            )
            .await;
        assert_eq!(response.status(), 202, "{email}");
    }
    let message = sink
        .wait_for(|m| m.to.contains(&member.email), MAIL_WAIT)
        .await
        .expect("the reset message arrives");
    app.drain_jobs(MAIL_WAIT).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "nothing is mailed to an unknown address"
    );
    let token = reset_token(&message);
    assert!(token.len() >= 32, "{token}");

    // A password too short is refused without spending the token.
    let short = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "password": "short"}),
            None,
        )
        .await;
    assert_problem(short, 422, "validation_failed").await;

    let confirmed = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "password": "a brand new password"}),
            None,
        )
        .await;
    assert_eq!(confirmed.status(), 204);

    assert_eq!(
        app.get("/api/v1/me", Some(&member.token)).await.status(),
        401,
        "every session ended"
    );
    assert_eq!(
        app.login(&member.email, &member.password).await.status(),
        401
    );
    assert_eq!(
        app.login(&member.email, "a brand new password")
            .await
            .status(),
        200
    );
    let again = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "password": "yet another password"}),
            None,
        )
        .await;
    assert_problem(again, 400, "reset_token_invalid").await;

    app.flush_audit().await;
    let page: Value = app
        .get(
            "/api/v1/admin/audit?action=auth.password_reset.",
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, Value)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["details"]["sent"].clone()))
        .collect();
    assert_eq!(
        actions,
        [
            ("auth.password_reset.completed", Value::Null),
            ("auth.password_reset.requested", json!(false)),
            ("auth.password_reset.requested", json!(true)),
        ]
    );
}

#[tokio::test]
async fn a_mailed_reset_link_sets_a_new_password_once_and_ends_every_session() {
    reset_flow(Backend::Redis).await;
}

#[tokio::test]
async fn the_reset_flow_works_without_redis_on_the_database_queue() {
    reset_flow(Backend::InProcess).await;
}

#[tokio::test]
async fn a_reset_token_that_was_never_issued_is_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": "not-a-token", "password": "a brand new password"}),
            None,
        )
        .await;
    assert_problem(response, 400, "reset_token_invalid").await;
    let malformed = app
        .post(
            "/api/v1/auth/password-reset",
            json!({"email": "not an address"}),
            None,
        )
        .await;
    assert_problem(malformed, 422, "validation_failed").await;
}

#[tokio::test]
async fn mail_to_an_unreachable_server_is_dead_lettered_and_a_retry_delivers_it() {
    let mut sink = SmtpSink::start().await;
    let mut setup = with_smtp(&sink, Backend::Redis);
    setup.config.jobs.max_attempts = 2;
    setup.config.jobs.backoff_base_ms = 20;
    sink.stop().await;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;

    let response = app
        .post(
            "/api/v1/auth/password-reset",
            json!({ "email": member.email }),
            None,
        )
        .await;
    assert_eq!(response.status(), 202);

    let dead = wait_for_dead(&app, &admin.token).await;
    assert_eq!(dead["kind"], "mail.send");
    assert_eq!(dead["attempts"], 2);
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("transient")),
        "{dead}"
    );
    let stats: Value = app
        .get("/api/v1/admin/jobs", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["dead"], 1, "{stats}");
    assert!(stats["failed"].as_u64().unwrap() >= 2, "{stats}");
    assert!(
        !stats["workers"].as_array().unwrap().is_empty(),
        "the server's pool reports: {stats}"
    );

    sink.restart().await;
    let id = dead["id"].as_str().unwrap();
    let retried: Value = app
        .post(
            &format!("/api/v1/admin/jobs/dead/{id}/retry"),
            json!({}),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(retried["count"], 1);
    let message = sink
        .wait_for(|m| m.to.contains(&member.email), MAIL_WAIT)
        .await
        .expect("delivered after the retry");
    assert!(!reset_token(&message).is_empty());
    app.drain_jobs(MAIL_WAIT).await;
    let stats: Value = app
        .get("/api/v1/admin/jobs", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["dead"], 0, "{stats}");

    let missing = app
        .post(
            &format!("/api/v1/admin/jobs/dead/{id}/retry"),
            json!({}),
            Some(&admin.token),
        )
        .await;
    assert_problem(missing, 404, "dead_job_not_found").await;
    let member_view = app.get("/api/v1/admin/jobs", Some(&member.token)).await;
    assert_problem(member_view, 403, "forbidden").await;
}

async fn wait_for_dead(app: &TestApp, admin: &str) -> Value {
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        let dead: Value = app
            .get("/api/v1/admin/jobs/dead", Some(admin))
            .await
            .json()
            .await
            .unwrap();
        if let Some(first) = dead.as_array().and_then(|d| d.first()) {
            return first.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never reached the dead-letter queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn dead_jobs_can_be_purged_and_retried_all_at_once() {
    let mut sink = SmtpSink::start().await;
    let mut setup = with_smtp(&sink, Backend::Redis);
    setup.config.jobs.max_attempts = 1;
    sink.stop().await;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    for _ in 0..3 {
        app.post(
            "/api/v1/auth/password-reset",
            json!({ "email": admin.email }),
            None,
        )
        .await;
    }
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    while app.state.jobs.stats().await.unwrap().dead < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three dead jobs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let purged: Value = app
        .request(
            Method::DELETE,
            "/api/v1/admin/jobs/dead",
            None,
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(purged["count"], 3);
    let retried: Value = app
        .post(
            "/api/v1/admin/jobs/dead/retry",
            json!({}),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(retried["count"], 0);
    let bad = app
        .get("/api/v1/admin/jobs/dead?limit=0", Some(&admin.token))
        .await;
    assert_problem(bad, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_confirmed_booking_is_mailed_with_a_calendar_file_and_its_cancellation_too() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(with_smtp(&sink, Backend::Redis)).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let held: Value = app
        .hold(
            &member,
            &court,
            &local("Europe/Madrid", 2, 18, 0),
            &local("Europe/Madrid", 2, 19, 0),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = held["id"].as_str().unwrap();
    let act = |action: &'static str| {
        let path = format!("/api/v1/bookings/{id}/{action}");
        let app = &app;
        let token = member.token.clone();
        async move {
            let response = app.post(&path, json!({}), Some(&token)).await;
            assert_eq!(response.status(), 200, "{action}");
        }
    };

    // The confirmation mail says what is true when it is sent: a booking cancelled before its
    // confirmation job runs gets only the cancellation (no calendar entry for a booking that is
    // gone). So the member cancels after the confirmation has arrived, as a member would.
    act("confirm").await;
    let confirmation = sink
        .wait_for(
            |m| {
                m.to.contains(&member.email)
                    && m.attachments
                        .iter()
                        .any(|a| a.content_type.starts_with("text/calendar"))
            },
            MAIL_WAIT,
        )
        .await
        .expect("the confirmation arrives");
    let ics = confirmation
        .attachments
        .iter()
        .find(|a| a.content_type.starts_with("text/calendar"))
        .unwrap();
    let calendar = String::from_utf8_lossy(&ics.content);
    assert!(calendar.contains(&format!("UID:{id}")), "{calendar}");
    assert!(calendar.contains("BEGIN:VEVENT"));
    assert!(
        confirmation.text.contains("18:00"),
        "local time in the text"
    );

    act("cancel").await;
    let cancellation = sink
        .wait_for(
            |m| m.to.contains(&member.email) && m.attachments.is_empty(),
            MAIL_WAIT,
        )
        .await
        .expect("the cancellation arrives");
    assert!(cancellation.text.contains(id) || cancellation.text.contains("cancel"));
    app.drain_jobs(MAIL_WAIT).await;
    assert_eq!(sink.messages().len(), 2);
}

#[tokio::test]
async fn a_booking_cancelled_before_its_confirmation_mail_goes_out_gets_only_the_cancellation() {
    // An instance without workers takes the requests, so both jobs are queued before either runs;
    // a second instance on the same database and queue then runs them.
    let sink = SmtpSink::start().await;
    let mut web = with_smtp(&sink, Backend::Redis);
    web.config.jobs.run_in_server = false;
    let web = TestApp::spawn_with(web).await;
    let admin = web.user(Role::Admin).await;
    let member = web.user(Role::Member).await;
    let court = web.facility(&admin, "Europe/Madrid", json!({})).await;
    let held: Value = web
        .hold(
            &member,
            &court,
            &local("Europe/Madrid", 2, 18, 0),
            &local("Europe/Madrid", 2, 19, 0),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = held["id"].as_str().unwrap();
    for action in ["confirm", "cancel"] {
        let response = web
            .post(
                &format!("/api/v1/bookings/{id}/{action}"),
                json!({}),
                Some(&member.token),
            )
            .await;
        assert_eq!(response.status(), 200, "{action}");
    }
    assert!(sink.messages().is_empty(), "nothing runs the jobs yet");

    let worker = TestApp::spawn_with(web.beside(with_smtp(&sink, Backend::Redis))).await;
    worker.drain_jobs(MAIL_WAIT).await;

    // No calendar entry for a booking that no longer exists: the cancellation alone.
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].to.contains(&member.email));
    assert!(messages[0].attachments.is_empty(), "no calendar file");
}

#[tokio::test]
async fn logins_logouts_and_bookings_reach_the_audit_log_which_only_admins_read() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    assert_eq!(
        app.login(&member.email, "wrong password").await.status(),
        401
    );
    assert_eq!(
        app.login("nobody@clubpulse.test", "wrong password")
            .await
            .status(),
        401
    );
    let second = app.token(&member.email, &member.password).await;
    let logout = app
        .post("/api/v1/auth/logout", json!({}), Some(&second))
        .await;
    assert_eq!(logout.status(), 204);
    let court = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let held = app
        .hold(
            &member,
            &court,
            &local("Europe/Madrid", 3, 10, 0),
            &local("Europe/Madrid", 3, 11, 0),
        )
        .await;
    assert_eq!(held.status(), 201);

    app.flush_audit().await;
    let mine: Value = app
        .get(
            &format!("/api/v1/admin/audit?actor={}", member.id),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "booking.held",
            "auth.logout",
            "auth.login.succeeded",
            "auth.login.failed",
            "auth.login.succeeded",
        ],
        "newest first"
    );
    let failures: Value = app
        .get(
            "/api/v1/admin/audit?action=auth.login.failed",
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let reasons: Vec<&str> = failures["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["unknown_account", "bad_credentials"]);
    assert!(failures["items"][0]["actor_id"].is_null());
    assert_eq!(failures["items"][0]["ip"], "127.0.0.1");

    // Pages of two, following next_before to the end.
    let mut seen = 0;
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(seq) => format!("/api/v1/admin/audit?limit=2&before={seq}"),
            None => "/api/v1/admin/audit?limit=2".to_owned(),
        };
        let page: Value = app
            .get(&path, Some(&admin.token))
            .await
            .json()
            .await
            .unwrap();
        seen += page["items"].as_array().unwrap().len();
        match page["next_before"].as_i64() {
            Some(seq) => before = Some(seq),
            None => break,
        }
    }
    assert_eq!(
        i64::try_from(seen).unwrap(),
        app.count("audit_log").await,
        "paging visits every entry once"
    );
    assert!(matches!(
        clubpulse_audit::verify(&app.db, None).await.unwrap(),
        clubpulse_audit::Verdict::Intact { .. }
    ));

    let forbidden = app.get("/api/v1/admin/audit", Some(&member.token)).await;
    assert_problem(forbidden, 403, "forbidden").await;
    for bad in [
        "limit=0",
        "action=DROP%20TABLE",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let response = app
            .get(&format!("/api/v1/admin/audit?{bad}"), Some(&admin.token))
            .await;
        assert_problem(response, 422, "validation_failed").await;
    }
    let not_a_time = app
        .get("/api/v1/admin/audit?from=yesterday", Some(&admin.token))
        .await;
    assert_eq!(not_a_time.status(), 400);
}

#[tokio::test]
async fn readiness_reports_the_job_queue_and_its_workers() {
    let app = TestApp::spawn().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready: Value = app.get("/ready", None).await.json().await.unwrap();
        assert_eq!(ready["jobs"]["status"], "up", "{ready}");
        if ready["jobs"]["workers"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server's worker pool never reported: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
