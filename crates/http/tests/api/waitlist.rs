//! The waitlist: who may join, and how a freed range is offered down the line, exactly once per
//! waited range, whatever races it.

use std::time::Duration;

use clubpulse_config::Secret;
use clubpulse_domain::Role;
use clubpulse_mail::sink::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, Setup, TestApp, TestUser, assert_problem, eventually, listen, local, read_response,
    receive_until,
};

const MADRID: &str = "Europe/Madrid";
const WAIT: Duration = Duration::from_secs(15);

async fn join(
    app: &TestApp,
    user: &TestUser,
    facility: &Value,
    start: &str,
    end: &str,
) -> reqwest::Response {
    app.post(
        "/api/v1/waitlist",
        json!({"facility_id": facility["id"], "start": start, "end": end}),
        Some(&user.token),
    )
    .await
}

async fn joined(app: &TestApp, user: &TestUser, facility: &Value, start: &str, end: &str) -> Value {
    let response = join(app, user, facility, start, end).await;
    assert_eq!(response.status(), 201, "join");
    response.json().await.unwrap()
}

async fn held(app: &TestApp, user: &TestUser, facility: &Value, start: &str, end: &str) -> Uuid {
    let response = app.hold(user, facility, start, end).await;
    assert_eq!(response.status(), 201, "hold");
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

async fn act(app: &TestApp, user: &TestUser, booking: Uuid, action: &str) {
    let response = app
        .post(
            &format!("/api/v1/bookings/{booking}/{action}"),
            json!({}),
            Some(&user.token),
        )
        .await;
    assert_eq!(response.status(), 200, "{action}");
}

fn id_of(entry: &Value) -> Uuid {
    entry["id"].as_str().unwrap().parse().unwrap()
}

/// An entry's status and offer hold, from the database.
async fn entry(app: &TestApp, id: Uuid) -> (String, Option<Uuid>) {
    sqlx::query_as("SELECT status, booking_id FROM waitlist_entries WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Waits until the entry has an offer hold, and returns it; on a timeout, says what the
/// bookings, the entries and the outbox held.
async fn offered(app: &TestApp, id: Uuid) -> Uuid {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let (status, Some(booking)) = entry(app, id).await
            && status == "offered"
        {
            return booking;
        }
        if tokio::time::Instant::now() >= deadline {
            let bookings: Vec<(Uuid, String, String, bool)> = sqlx::query_as(
                "SELECT id, status, during::text, waitlist_offer FROM bookings ORDER BY created_at",
            )
            .fetch_all(&app.db)
            .await
            .unwrap();
            let entries: Vec<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
                "SELECT id, status, booking_id FROM waitlist_entries ORDER BY created_at",
            )
            .fetch_all(&app.db)
            .await
            .unwrap();
            let outbox: Vec<(String, Value)> =
                sqlx::query_as("SELECT topic, payload FROM outbox ORDER BY seq")
                    .fetch_all(&app.db)
                    .await
                    .unwrap();
            panic!(
                "no offer for {id}: bookings {bookings:?}, entries {entries:?}, outbox {outbox:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (status, user, waitlist_offer) of a booking.
async fn booking_row(app: &TestApp, id: Uuid) -> (String, Uuid, bool) {
    sqlx::query_as("SELECT status, user_id, waitlist_offer FROM bookings WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn notifications(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let response = app.get("/api/v1/me/notifications", Some(&user.token)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn with_smtp(sink: &SmtpSink, backend: Backend) -> Setup {
    let mut setup = Setup {
        backend,
        ..Setup::default()
    };
    setup.config.mail.smtp_url = Some(Secret::new(sink.url()));
    setup.config.mail.from = "Club Pulse <no-reply@clubpulse.test>".to_owned();
    setup.config.booking.sweep_interval_ms = 100;
    setup
}

#[tokio::test]
async fn joining_follows_the_hold_rules_and_refuses_free_ranges_second_entries_and_too_many() {
    let mut setup = Setup::default();
    setup.config.booking.waitlist_max_entries = 2;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let (a, b, c) = (
        app.user(Role::Member).await,
        app.user(Role::Member).await,
        app.user(Role::Member).await,
    );
    let court = app.facility(&admin, MADRID, json!({})).await;
    let (start, end) = (local(MADRID, 2, 10, 0), local(MADRID, 2, 11, 0));
    held(&app, &a, &court, &start, &end).await;

    // A free range has nothing to wait for.
    let free = join(
        &app,
        &b,
        &court,
        &local(MADRID, 2, 12, 0),
        &local(MADRID, 2, 13, 0),
    )
    .await;
    assert_problem(free, 409, "slot_free").await;

    // First come, first served.
    let first = joined(&app, &b, &court, &start, &end).await;
    assert_eq!(first["status"], "waiting");
    assert_eq!(first["position"], 1);
    assert_eq!(first["facility_id"], court["id"]);
    assert!(first["booking_id"].is_null());
    let second = joined(&app, &c, &court, &start, &end).await;
    assert_eq!(second["position"], 2);

    let again = join(&app, &b, &court, &start, &end).await;
    assert_problem(again, 409, "already_waiting").await;

    // The cap counts open entries: a second (overlapping) range is fine, a third is not.
    joined(&app, &b, &court, &start, &local(MADRID, 2, 10, 30)).await;
    let third = join(&app, &b, &court, &local(MADRID, 2, 10, 30), &end).await;
    assert_problem(third, 409, "waitlist_full").await;

    // The same rules as a hold, with the same codes.
    let rules = [
        (local(MADRID, 2, 10, 15), local(MADRID, 2, 10, 45)),
        (local(MADRID, 2, 3, 0), local(MADRID, 2, 4, 0)),
        (local(MADRID, 40, 10, 0), local(MADRID, 40, 11, 0)),
        (local(MADRID, -1, 10, 0), local(MADRID, -1, 11, 0)),
    ];
    for (start, end) in &rules {
        let (status, _, hold) = read_response(app.hold(&c, &court, start, end).await).await;
        assert_eq!(status, 422, "{hold}");
        let code = hold["code"].as_str().unwrap();
        let refused = join(&app, &c, &court, start, end).await;
        assert_problem(refused, 422, code).await;
    }
    let nowhere = app
        .post(
            "/api/v1/waitlist",
            json!({"facility_id": Uuid::new_v4(), "start": start, "end": end}),
            Some(&c.token),
        )
        .await;
    assert_problem(nowhere, 404, "facility_not_found").await;
    let anonymous = app
        .post(
            "/api/v1/waitlist",
            json!({"facility_id": court["id"], "start": start, "end": end}),
            None,
        )
        .await;
    assert_problem(anonymous, 401, "unauthenticated").await;

    // Mine only: others' entries are neither listed nor removable.
    let mine: Vec<Value> = app
        .get("/api/v1/waitlist", Some(&c.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], second["id"]);
    assert_eq!(mine[0]["position"], 2);
    let theirs = app
        .request(
            Method::DELETE,
            &format!("/api/v1/waitlist/{}", id_of(&first)),
            None,
            Some(&c.token),
        )
        .await;
    assert_problem(theirs, 404, "waitlist_entry_not_found").await;
    assert_eq!(entry(&app, id_of(&first)).await.0, "waiting");

    // Leaving moves the next in line up.
    let left = app
        .request(
            Method::DELETE,
            &format!("/api/v1/waitlist/{}", id_of(&first)),
            None,
            Some(&b.token),
        )
        .await;
    assert_eq!(left.status(), 204);
    let mine: Vec<Value> = app
        .get("/api/v1/waitlist", Some(&c.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine[0]["position"], 1);
    let twice = app
        .request(
            Method::DELETE,
            &format!("/api/v1/waitlist/{}", id_of(&first)),
            None,
            Some(&b.token),
        )
        .await;
    assert_problem(twice, 404, "waitlist_entry_not_found").await;
    assert_eq!(app.count("waitlist_entries").await, 2);
    app.drain_outbox().await;
}

async fn cascade(backend: Backend) {
    let sink = SmtpSink::start().await;
    let mut setup = with_smtp(&sink, backend);
    // Offers last long enough to look at them; the test moves the first one's expiry itself.
    setup.config.booking.waitlist_offer_seconds = 600;
    setup.config.booking.max_active_holds = 1;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let (a, b, c, d) = (
        app.user(Role::Member).await,
        app.user(Role::Member).await,
        app.user(Role::Member).await,
        app.user(Role::Member).await,
    );
    let court = app.facility(&admin, MADRID, json!({})).await;
    let facility_id = court["id"].as_str().unwrap().to_owned();
    let (start, end) = (local(MADRID, 2, 18, 0), local(MADRID, 2, 19, 0));
    let taken = held(&app, &a, &court, &start, &end).await;
    let b_entry = id_of(&joined(&app, &b, &court, &start, &end).await);
    let c_entry = id_of(&joined(&app, &c, &court, &start, &end).await);
    let mut listener = listen(
        &app,
        &[
            format!("facility:{facility_id}"),
            format!("user:{}", b.id),
            format!("user:{}", c.id),
        ],
    )
    .await;

    // A cancels: the slot is held for B, and nobody else can take it.
    act(&app, &a, taken, "cancel").await;
    let b_offer = offered(&app, b_entry).await;
    assert_eq!(
        booking_row(&app, b_offer).await,
        ("held".to_owned(), b.id, true)
    );
    assert_eq!(entry(&app, c_entry).await, ("waiting".to_owned(), None));
    assert_problem(
        app.hold(&d, &court, &start, &end).await,
        409,
        "slot_unavailable",
    )
    .await;
    let expires_in: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM hold_expires_at - now())::float8 FROM bookings WHERE id = $1",
    )
    .bind(b_offer)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        (500.0..=600.0).contains(&expires_in),
        "the offer lasts the offer time: {expires_in}"
    );
    // The offer is not counted against B's hold limit (1 here).
    held(
        &app,
        &b,
        &court,
        &local(MADRID, 3, 18, 0),
        &local(MADRID, 3, 19, 0),
    )
    .await;
    let mine: Vec<Value> = app
        .get("/api/v1/waitlist", Some(&b.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine[0]["status"], "offered");
    assert_eq!(mine[0]["booking_id"], b_offer.to_string());
    assert!(mine[0]["position"].is_null());
    let mine: Vec<Value> = app
        .get("/api/v1/waitlist", Some(&c.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (mine[0]["status"].as_str(), mine[0]["position"].as_i64()),
        (Some("waiting"), Some(1))
    );

    // B is told: live, stored and by e-mail.
    let released = receive_until(&mut listener, WAIT, |channel, p| {
        channel.starts_with("facility:") && p["event"] == "slot.released"
    })
    .await;
    assert_eq!(released["reason"], "cancelled");
    assert_eq!(released["facility_id"], facility_id);
    // The offer hold is published as the slot's new state, then announced to B.
    let same_start = |p: &Value| {
        p["start"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            == chrono::DateTime::parse_from_rfc3339(&start).ok()
    };
    let held_live = receive_until(&mut listener, WAIT, |channel, p| {
        channel.starts_with("facility:") && p["event"] == "slot.held" && same_start(p)
    })
    .await;
    assert!(held_live["expires_at"].is_string());
    let live = receive_until(&mut listener, WAIT, |channel, p| {
        channel == format!("user:{}", b.id) && p["notification"]["kind"] == "waitlist.offer"
    })
    .await;
    // Published before the relay's commit (so a failed publish retries the batch): the stored
    // notification is there once the outbox has drained.
    app.drain_outbox().await;
    let stored = notifications(&app, &b).await;
    let offer_note = stored
        .iter()
        .find(|n| n["kind"] == "waitlist.offer")
        .expect("stored");
    assert_eq!(&live["notification"], offer_note);
    assert_eq!(offer_note["data"]["booking_id"], b_offer.to_string());
    assert_eq!(offer_note["data"]["facility_id"], facility_id);
    assert!(offer_note["data"]["expires_at"].is_string());
    assert!(offer_note["data"]["facility_name"].is_string());
    let mail = sink
        .wait_for(|m| m.to.contains(&b.email), WAIT)
        .await
        .expect("the offer is mailed");
    assert!(
        mail.subject.contains("A slot you waited for is free"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains(&b_offer.to_string()));

    // B lets it run out: C is offered it.
    sqlx::query("UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(b_offer)
        .execute(&app.db)
        .await
        .unwrap();
    let c_offer = offered(&app, c_entry).await;
    assert_ne!(c_offer, b_offer);
    assert_eq!(
        entry(&app, b_entry).await,
        ("expired".to_owned(), Some(b_offer))
    );
    assert_eq!(booking_row(&app, b_offer).await.0, "expired");
    assert_eq!(
        booking_row(&app, c_offer).await,
        ("held".to_owned(), c.id, true)
    );
    receive_until(&mut listener, WAIT, |channel, p| {
        channel == format!("user:{}", c.id) && p["notification"]["kind"] == "waitlist.offer"
    })
    .await;
    app.drain_outbox().await;
    let b_told: Vec<String> = notifications(&app, &b)
        .await
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(b_told, ["booking.expired", "waitlist.offer"]);

    // C reads the offer's mail and confirms: fulfilled.
    sink.wait_for(
        |m| m.to.contains(&c.email) && m.subject.contains("waited for"),
        WAIT,
    )
    .await
    .expect("C's offer is mailed");
    act(&app, &c, c_offer, "confirm").await;
    assert_eq!(
        entry(&app, c_entry).await,
        ("fulfilled".to_owned(), Some(c_offer))
    );
    receive_until(&mut listener, WAIT, |channel, p| {
        channel.starts_with("facility:") && p["event"] == "slot.booked"
    })
    .await;
    app.drain_jobs(WAIT).await;
    let to = |user: &TestUser| {
        sink.messages()
            .iter()
            .filter(|m| m.to.contains(&user.email))
            .count()
    };
    assert_eq!(to(&b), 1, "one offer mail to B");
    assert_eq!(to(&c), 2, "C's offer and C's confirmation");
    let offers: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE waitlist_offer")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(offers, 2);
    assert_eq!(app.overlapping_active_bookings().await, 0);
}

#[tokio::test]
async fn a_freed_slot_is_offered_down_the_waitlist_until_someone_confirms() {
    cascade(Backend::Redis).await;
}

#[tokio::test]
async fn a_freed_slot_is_offered_down_the_waitlist_in_process_too() {
    cascade(Backend::InProcess).await;
}

#[tokio::test]
async fn an_offer_nobody_confirms_runs_out_by_itself_and_passes_to_the_next_waiter() {
    let mut setup = Setup::default();
    setup.config.booking.waitlist_offer_seconds = 1;
    setup.config.booking.sweep_interval_ms = 100;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let (a, b, c) = (
        app.user(Role::Member).await,
        app.user(Role::Member).await,
        app.user(Role::Member).await,
    );
    let court = app.facility(&admin, MADRID, json!({})).await;
    let (start, end) = (local(MADRID, 2, 9, 0), local(MADRID, 2, 10, 0));
    let taken = held(&app, &a, &court, &start, &end).await;
    let b_entry = id_of(&joined(&app, &b, &court, &start, &end).await);
    let c_entry = id_of(&joined(&app, &c, &court, &start, &end).await);

    act(&app, &a, taken, "cancel").await;

    // B's offer runs out by itself, C's follows, and then nobody is left.
    let settled = |id: Uuid| {
        let app = &app;
        async move {
            eventually(WAIT, "the offer to run out", || async {
                match entry(app, id).await {
                    (status, Some(booking)) if status == "expired" => Some(booking),
                    _ => None,
                }
            })
            .await
        }
    };
    let b_offer = settled(b_entry).await;
    let c_offer = settled(c_entry).await;
    app.drain_outbox().await;
    assert_eq!(
        booking_row(&app, b_offer).await,
        ("expired".to_owned(), b.id, true)
    );
    assert_eq!(
        booking_row(&app, c_offer).await,
        ("expired".to_owned(), c.id, true)
    );
    for user in [&b, &c] {
        let told = notifications(&app, user).await;
        assert_eq!(told[0]["kind"], "booking.expired");
        assert_eq!(told[0]["title"], "Waitlist offer expired");
        assert_eq!(told[1]["kind"], "waitlist.offer");
    }
    // The slot is free for anyone now.
    held(&app, &a, &court, &start, &end).await;
}

#[tokio::test]
async fn a_waiter_whose_range_is_only_partly_freed_waits_for_the_rest() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let (a, b, w) = (
        app.user(Role::Member).await,
        app.user(Role::Member).await,
        app.user(Role::Member).await,
    );
    let court = app.facility(&admin, MADRID, json!({})).await;
    let first = held(
        &app,
        &a,
        &court,
        &local(MADRID, 2, 10, 0),
        &local(MADRID, 2, 10, 30),
    )
    .await;
    let second = held(
        &app,
        &b,
        &court,
        &local(MADRID, 2, 10, 30),
        &local(MADRID, 2, 11, 0),
    )
    .await;
    let waiting = id_of(
        &joined(
            &app,
            &w,
            &court,
            &local(MADRID, 2, 10, 0),
            &local(MADRID, 2, 11, 0),
        )
        .await,
    );

    act(&app, &a, first, "cancel").await;
    app.drain_outbox().await;
    assert_eq!(entry(&app, waiting).await, ("waiting".to_owned(), None));
    assert!(
        notifications(&app, &w).await.is_empty(),
        "nothing to tell while half the range is taken"
    );

    act(&app, &b, second, "cancel").await;
    let offer = offered(&app, waiting).await;
    assert_eq!(
        booking_row(&app, offer).await,
        ("held".to_owned(), w.id, true)
    );
}

#[tokio::test]
async fn leaving_with_an_offer_releases_it_to_the_next_waiter() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let (a, b, c) = (
        app.user(Role::Member).await,
        app.user(Role::Member).await,
        app.user(Role::Member).await,
    );
    let court = app.facility(&admin, MADRID, json!({})).await;
    let (start, end) = (local(MADRID, 2, 20, 0), local(MADRID, 2, 21, 0));
    let taken = held(&app, &a, &court, &start, &end).await;
    let b_entry = id_of(&joined(&app, &b, &court, &start, &end).await);
    let c_entry = id_of(&joined(&app, &c, &court, &start, &end).await);
    act(&app, &a, taken, "cancel").await;
    let b_offer = offered(&app, b_entry).await;

    let left = app
        .request(
            Method::DELETE,
            &format!("/api/v1/waitlist/{b_entry}"),
            None,
            Some(&b.token),
        )
        .await;
    assert_eq!(left.status(), 204);
    assert_eq!(booking_row(&app, b_offer).await.0, "cancelled");
    let c_offer = offered(&app, c_entry).await;
    assert_eq!(
        booking_row(&app, c_offer).await,
        ("held".to_owned(), c.id, true)
    );
    assert_eq!(app.overlapping_active_bookings().await, 0);
}

#[tokio::test]
async fn two_cancellations_freeing_one_waited_range_at_once_make_exactly_one_offer() {
    let first = TestApp::spawn().await;
    let second = first.another_instance().await;
    let admin = first.user(Role::Admin).await;
    let court = first.facility(&admin, MADRID, json!({})).await;
    // Several rounds, each on its own hour: two halves held by two members, two waiters for the
    // whole hour, both halves cancelled at once through the two instances.
    for hour in [8, 12, 16, 20] {
        let (x, y, w1, w2) = (
            first.user(Role::Member).await,
            first.user(Role::Member).await,
            first.user(Role::Member).await,
            first.user(Role::Member).await,
        );
        let (start, middle, end) = (
            local(MADRID, 3, hour, 0),
            local(MADRID, 3, hour, 30),
            local(MADRID, 3, hour + 1, 0),
        );
        let left_half = held(&first, &x, &court, &start, &middle).await;
        let right_half = held(&second, &y, &court, &middle, &end).await;
        let one = id_of(&joined(&first, &w1, &court, &start, &end).await);
        let two = id_of(&joined(&second, &w2, &court, &start, &end).await);

        tokio::join!(
            act(&first, &x, left_half, "cancel"),
            act(&second, &y, right_half, "cancel"),
        );

        let offer = offered(&first, one).await;
        first.drain_outbox().await;
        second.drain_outbox().await;
        let offers: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT id, user_id FROM bookings
             WHERE waitlist_offer AND facility_id = $1 AND lower(during) = $2::timestamptz",
        )
        .bind(court["id"].as_str().unwrap().parse::<Uuid>().unwrap())
        .bind(chrono::DateTime::parse_from_rfc3339(&start).unwrap())
        .fetch_all(&first.db)
        .await
        .unwrap();
        assert_eq!(offers, [(offer, w1.id)], "one offer, to the first waiter");
        assert_eq!(entry(&first, two).await, ("waiting".to_owned(), None));
        let told: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE kind = 'waitlist.offer' AND user_id = ANY($1)",
        )
        .bind(vec![w1.id, w2.id])
        .fetch_one(&first.db)
        .await
        .unwrap();
        assert_eq!(told, 1);
    }
    assert_eq!(first.overlapping_active_bookings().await, 0);
}
