//! Notifications: stored once per booking event, listed newest first, read once, and pushed live
//! with the slot events of the facility.

use std::time::Duration;

use clubpulse_domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, Setup, TestApp, TestUser, assert_problem, eventually, listen, local, receive_until,
};

const MADRID: &str = "Europe/Madrid";
const WAIT: Duration = Duration::from_secs(15);

async fn list(app: &TestApp, user: &TestUser, query: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/v1/me/notifications{query}"),
            Some(&user.token),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn hold(app: &TestApp, user: &TestUser, court: &Value, day: i64, hour: u32) -> String {
    let response = app
        .hold(
            user,
            court,
            &local(MADRID, day, hour, 0),
            &local(MADRID, day, hour + 1, 0),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn act(app: &TestApp, user: &TestUser, booking: &str, action: &str) {
    let response = app
        .post(
            &format!("/api/v1/bookings/{booking}/{action}"),
            json!({}),
            Some(&user.token),
        )
        .await;
    assert_eq!(response.status(), 200, "{action}");
}

#[tokio::test]
async fn notifications_are_listed_newest_first_filtered_by_unread_and_read_once() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let other = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let booking = hold(&app, &member, &court, 2, 18).await;
    act(&app, &member, &booking, "confirm").await;
    act(&app, &member, &booking, "cancel").await;
    app.drain_outbox().await;

    let all = list(&app, &member, "").await;
    let kinds: Vec<&str> = all.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["booking.cancelled", "booking.confirmed"],
        "newest first; a hold says nothing"
    );
    for n in &all {
        assert_eq!(n["data"]["booking_id"], booking);
        assert_eq!(n["data"]["facility_id"], court["id"]);
        assert_eq!(n["data"]["facility_name"], court["name"]);
        assert!(n["data"]["start"].is_string() && n["data"]["end"].is_string());
        assert!(n["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            n["body"].as_str().unwrap().contains("18:00"),
            "local time: {n}"
        );
        assert!(n["read_at"].is_null());
    }
    assert_eq!(list(&app, &member, "?limit=1").await.len(), 1);
    assert!(list(&app, &other, "").await.is_empty(), "mine only");

    let first = all[0]["id"].as_str().unwrap();
    let read = format!("/api/v1/me/notifications/{first}/read");
    assert_problem(
        app.post(&read, json!({}), Some(&other.token)).await,
        404,
        "notification_not_found",
    )
    .await;
    assert_eq!(
        app.post(&read, json!({}), Some(&member.token))
            .await
            .status(),
        204
    );
    let read_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT read_at FROM notifications WHERE id = $1::uuid")
            .bind(first)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(read_at.is_some());
    assert_eq!(
        app.post(&read, json!({}), Some(&member.token))
            .await
            .status(),
        204,
        "twice is fine"
    );
    let again: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT read_at FROM notifications WHERE id = $1::uuid")
            .bind(first)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(again, read_at, "the first reading's time stays");

    let unread = list(&app, &member, "?unread=true").await;
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0]["kind"], "booking.confirmed");
    assert_eq!(list(&app, &member, "?unread=false").await.len(), 2);
    let unknown = format!("/api/v1/me/notifications/{}/read", Uuid::new_v4());
    assert_problem(
        app.post(&unknown, json!({}), Some(&member.token)).await,
        404,
        "notification_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_hold_that_expires_tells_its_member() {
    let mut setup = Setup::default();
    setup.config.booking.hold_seconds = 1;
    setup.config.booking.sweep_interval_ms = 100;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let booking = hold(&app, &member, &court, 2, 9).await;

    let told = eventually(WAIT, "the expiry notification", || async {
        list(&app, &member, "").await.into_iter().next()
    })
    .await;
    assert_eq!(told["kind"], "booking.expired");
    assert_eq!(told["title"], "Hold expired");
    assert_eq!(told["data"]["booking_id"], booking);
}

#[tokio::test]
async fn an_event_delivered_twice_notifies_once() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let booking = hold(&app, &member, &court, 3, 12).await;
    // Keep a copy of the confirmation's outbox event as it was written, before the relay takes it.
    for statement in [
        "CREATE TABLE outbox_copy (LIKE outbox)",
        "CREATE FUNCTION copy_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO outbox_copy SELECT NEW.*; RETURN NULL; END $$",
        "CREATE TRIGGER copy_outbox AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION copy_outbox()",
    ] {
        sqlx::query(statement).execute(&app.db).await.unwrap();
    }
    let mut listener = listen(&app, &[format!("user:{}", member.id)]).await;
    act(&app, &member, &booking, "confirm").await;
    app.drain_outbox().await;
    let live = receive_until(&mut listener, WAIT, |_, p| p["event"] == "notification").await;

    // A relay that published and stored, then died before its commit: the same event, again.
    sqlx::query("INSERT INTO outbox SELECT * FROM outbox_copy")
        .execute(&app.db)
        .await
        .unwrap();
    app.drain_outbox().await;

    let all = list(&app, &member, "").await;
    assert_eq!(all.len(), 1, "one notification: {all:?}");
    assert_eq!(all[0], live["notification"]);
}

async fn live_events(backend: Backend) {
    let app = TestApp::spawn_with(Setup {
        backend,
        ..Setup::default()
    })
    .await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let facility_id = court["id"].as_str().unwrap().to_owned();
    let facility = format!("facility:{facility_id}");
    let user = format!("user:{}", member.id);
    let mut listener = listen(&app, &[facility.clone(), user.clone()]).await;

    let booking = hold(&app, &member, &court, 2, 19).await;
    let held = receive_until(&mut listener, WAIT, |c, p| {
        c == facility && p["event"] == "slot.held"
    })
    .await;
    assert_eq!(held["facility_id"], facility_id);
    assert!(held["expires_at"].is_string());
    assert!(held["id"].is_string(), "the outbox event's id");
    let start = held["start"].as_str().unwrap().to_owned();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&start).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&local(MADRID, 2, 19, 0)).unwrap()
    );
    assert!(held["end"].is_string());

    act(&app, &member, &booking, "confirm").await;
    let booked = receive_until(&mut listener, WAIT, |c, p| {
        c == facility && p["event"] == "slot.booked"
    })
    .await;
    assert_eq!(booked["start"], start);
    let confirmed = receive_until(&mut listener, WAIT, |c, p| {
        c == user && p["event"] == "notification"
    })
    .await;
    assert_eq!(confirmed["notification"]["kind"], "booking.confirmed");

    act(&app, &member, &booking, "cancel").await;
    let released = receive_until(&mut listener, WAIT, |c, p| {
        c == facility && p["event"] == "slot.released"
    })
    .await;
    assert_eq!(released["reason"], "cancelled");
    assert_eq!(released["start"], start);
    let cancelled = receive_until(&mut listener, WAIT, |c, p| {
        c == user && p["event"] == "notification"
    })
    .await;
    assert_eq!(cancelled["notification"]["kind"], "booking.cancelled");

    app.drain_outbox().await;
    let stored = list(&app, &member, "").await;
    assert_eq!(
        stored[0], cancelled["notification"],
        "the live notification is the stored one"
    );
    assert_eq!(stored[1], confirmed["notification"]);
    for key in [
        "id",
        "kind",
        "title",
        "body",
        "data",
        "created_at",
        "read_at",
    ] {
        assert!(cancelled["notification"].get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn booking_events_are_pushed_on_the_facility_and_member_channels() {
    live_events(Backend::Redis).await;
}

#[tokio::test]
async fn booking_events_are_pushed_on_the_facility_and_member_channels_in_process() {
    live_events(Backend::InProcess).await;
}
