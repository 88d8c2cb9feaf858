//! The transactional outbox: a request that dies right after its commit loses none of its write's
//! side effects, and an event delivered twice takes effect once.

use std::time::Duration;

use clubpulse_config::Secret;
use clubpulse_domain::Role;
use clubpulse_mail::sink::SmtpSink;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Setup, TestApp, local, urlencode};

const MADRID: &str = "Europe/Madrid";
const WAIT: Duration = Duration::from_secs(15);

fn with_smtp(sink: &SmtpSink) -> Setup {
    let mut setup = Setup::default();
    setup.config.mail.smtp_url = Some(Secret::new(sink.url()));
    setup.config.mail.from = "Club Pulse <no-reply@clubpulse.test>".to_owned();
    setup
}

/// Polls a slot's state until it is `want`, failing after [`WAIT`] with the last state seen.
async fn wait_for_state(app: &TestApp, path: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body: Value = app.get(path, None).await.json().await.unwrap();
        let state = body["slots"][0]["state"].as_str().unwrap_or("").to_owned();
        if state == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot stayed {state}, never {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The audit actions recorded for a booking, oldest first.
async fn audited(app: &TestApp, booking: Uuid) -> Vec<(String, Option<Uuid>)> {
    sqlx::query_as("SELECT action, actor_id FROM audit_log WHERE target = $1 ORDER BY seq")
        .bind(format!("booking:{booking}"))
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_request_that_dies_right_after_its_commit_loses_none_of_its_side_effects() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(with_smtp(&sink)).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let (start, end) = (local(MADRID, 2, 10, 0), local(MADRID, 2, 10, 30));
    let path = format!(
        "/api/v1/facilities/{}/availability?from={}&to={}",
        court["id"].as_str().unwrap(),
        urlencode(&start),
        urlencode(&end)
    );
    // The day is now cached with the slot free: only an invalidation can show the hold.
    wait_for_state(&app, &path, "free").await;
    let faults = app.state.bookings.faults();

    faults.fail_after_commit(true);
    let held = app.hold(&member, &court, &start, &end).await;
    faults.fail_after_commit(false);
    assert_eq!(held.status(), 500, "the request died after its commit");
    let id: Uuid =
        sqlx::query_scalar("SELECT id FROM bookings WHERE user_id = $1 AND status = 'held'")
            .bind(member.id)
            .fetch_one(&app.db)
            .await
            .expect("the hold was committed");
    wait_for_state(&app, &path, "held").await;

    faults.fail_after_commit(true);
    let confirmed = app
        .post(
            &format!("/api/v1/bookings/{id}/confirm"),
            json!({}),
            Some(&member.token),
        )
        .await;
    faults.fail_after_commit(false);
    assert_eq!(confirmed.status(), 500, "the request died after its commit");
    wait_for_state(&app, &path, "booked").await;

    sink.wait_for(
        |m| {
            m.to.contains(&member.email)
                && m.attachments
                    .iter()
                    .any(|a| a.content_type.starts_with("text/calendar"))
        },
        WAIT,
    )
    .await
    .expect("the confirmation is mailed all the same");
    app.flush_audit().await;
    assert_eq!(
        audited(&app, id).await,
        [
            ("booking.held".to_owned(), Some(member.id)),
            ("booking.confirmed".to_owned(), Some(member.id))
        ]
    );
    app.drain_jobs(WAIT).await;
    assert_eq!(sink.messages().len(), 1, "one confirmation, nothing else");
}

#[tokio::test]
async fn an_event_delivered_twice_is_audited_and_mailed_once() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(with_smtp(&sink)).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let held: Value = app
        .hold(
            &member,
            &court,
            &local(MADRID, 3, 12, 0),
            &local(MADRID, 3, 12, 30),
        )
        .await
        .json()
        .await
        .unwrap();
    let id: Uuid = held["id"].as_str().unwrap().parse().unwrap();
    // Keep a copy of the confirmation's outbox event as it was written, before the relay takes it.
    sqlx::query("CREATE TABLE outbox_copy (LIKE outbox)")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "CREATE FUNCTION copy_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO outbox_copy SELECT NEW.*; RETURN NULL; END $$",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER copy_outbox AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION copy_outbox()",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let confirmed = app
        .post(
            &format!("/api/v1/bookings/{id}/confirm"),
            json!({}),
            Some(&member.token),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    app.drain_jobs(WAIT).await;
    sink.wait_for(|m| m.to.contains(&member.email), WAIT)
        .await
        .expect("the confirmation is mailed");

    // A relay that carried out the effects but died before its commit: the same event, again.
    sqlx::query("INSERT INTO outbox SELECT * FROM outbox_copy")
        .execute(&app.db)
        .await
        .unwrap();
    app.drain_jobs(WAIT).await;
    app.flush_audit().await;

    assert_eq!(
        audited(&app, id).await,
        [
            ("booking.held".to_owned(), Some(member.id)),
            ("booking.confirmed".to_owned(), Some(member.id))
        ]
    );
    assert_eq!(
        sink.messages().len(),
        1,
        "the confirmation is not sent twice"
    );
}
