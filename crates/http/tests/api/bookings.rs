//! The booking engine over HTTP: holds that cannot overlap, expiry, limits, alternatives,
//! availability, weekly series across DST, ownership and bad input.

use std::time::Duration;

use clubpulse_domain::{BookingEventKind, Role};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, assert_problem, each, local, urlencode};

const MADRID: &str = "Europe/Madrid";

#[tokio::test]
async fn a_member_holds_confirms_and_cancels_a_slot() {
    hold_confirm_cancel(TestApp::spawn().await).await;
}

#[tokio::test]
async fn the_booking_lifecycle_works_on_the_in_process_state_too() {
    hold_confirm_cancel(TestApp::spawn_in_process().await).await;
}

async fn hold_confirm_cancel(app: TestApp) {
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let (start, end) = (local(MADRID, 2, 18, 0), local(MADRID, 2, 19, 0));

    let response = app.hold(&member, &court, &start, &end).await;
    assert_eq!(response.status(), 201);
    let held: Value = response.json().await.unwrap();
    assert_eq!(held["status"], "held");
    assert_eq!(held["price_cents"], 4000, "two 30-minute slots at 20.00");
    let expires: chrono::DateTime<chrono::Utc> =
        held["expires_at"].as_str().unwrap().parse().unwrap();
    let in_five = (expires - chrono::Utc::now()).num_seconds();
    assert!((290..=300).contains(&in_five), "{in_five}");
    let id = held["id"].as_str().unwrap();

    let confirmed: Value = app
        .post(
            &format!("/api/v1/bookings/{id}/confirm"),
            json!({}),
            Some(&member.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(confirmed["status"], "confirmed");
    assert!(confirmed["expires_at"].is_null());
    let again = app
        .post(
            &format!("/api/v1/bookings/{id}/confirm"),
            json!({}),
            Some(&member.token),
        )
        .await;
    assert_eq!(again.status(), 200, "confirming twice changes nothing");

    let mine: Vec<Value> = app
        .get("/api/v1/bookings", Some(&member.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);

    let cancelled: Value = app
        .post(
            &format!("/api/v1/bookings/{id}/cancel"),
            json!({}),
            Some(&member.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        cancelled["cancellation_fee_cents"].is_null(),
        "more than 24 hours ahead: free"
    );
    assert_problem(
        app.post(
            &format!("/api/v1/bookings/{id}/cancel"),
            json!({}),
            Some(&member.token),
        )
        .await,
        409,
        "booking_not_active",
    )
    .await;

    // The slot is free again; under a three-day policy, cancelling it late costs half the price.
    sqlx::query("UPDATE clubs SET free_cancellation_minutes = 4320")
        .execute(&app.db)
        .await
        .unwrap();
    let again: Value = app
        .hold(&member, &court, &start, &end)
        .await
        .json()
        .await
        .unwrap();
    let id = again["id"].as_str().unwrap();
    let held_cancel: Value = app
        .post(
            &format!("/api/v1/bookings/{id}/cancel"),
            json!({}),
            Some(&member.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        held_cancel["cancellation_fee_cents"].is_null(),
        "dropping an unpaid hold is free"
    );
    let again: Value = app
        .hold(&member, &court, &start, &end)
        .await
        .json()
        .await
        .unwrap();
    let id = again["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/bookings/{id}/confirm"),
        json!({}),
        Some(&member.token),
    )
    .await;
    let late: Value = app
        .post(
            &format!("/api/v1/bookings/{id}/cancel"),
            json!({}),
            Some(&member.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(late["cancellation_fee_cents"], 2000);
}

#[tokio::test]
async fn another_members_booking_is_not_found_on_every_route() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let owner = app.user(Role::Member).await;
    let other = app.user(Role::Member).await;
    let staff = app.user(Role::Staff).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let held: Value = app
        .hold(
            &owner,
            &court,
            &local(MADRID, 1, 10, 0),
            &local(MADRID, 1, 10, 30),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = held["id"].as_str().unwrap();

    assert_problem(
        app.get(&format!("/api/v1/bookings/{id}"), Some(&other.token))
            .await,
        404,
        "booking_not_found",
    )
    .await;
    for action in ["confirm", "cancel"] {
        let response = app
            .post(
                &format!("/api/v1/bookings/{id}/{action}"),
                json!({}),
                Some(&other.token),
            )
            .await;
        assert_problem(response, 404, "booking_not_found").await;
    }
    let listed: Vec<Value> = app
        .get("/api/v1/bookings", Some(&other.token))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());
    assert_eq!(
        app.get(&format!("/api/v1/bookings/{id}"), Some(&staff.token))
            .await
            .status(),
        200,
        "staff see every booking"
    );
    let still: Value = app
        .get(&format!("/api/v1/bookings/{id}"), Some(&owner.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "held");
}

#[tokio::test]
async fn hundreds_of_clashing_requests_over_two_instances_leave_no_overlap() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let admin = a.user(Role::Admin).await;
    let court = a
        .facility(&admin, MADRID, json!({"buffer_minutes": 10}))
        .await;
    let mut members = Vec::new();
    for _ in 0..40 {
        members.push(a.user(Role::Member).await);
    }
    // 8 slots of 30 minutes, each asked for by 40 members, plus hour-long requests straddling them.
    let mut plan = Vec::new();
    for (i, member) in members.iter().enumerate() {
        for slot in 0..8u32 {
            let app = if (i + slot as usize).is_multiple_of(2) {
                &a
            } else {
                &b
            };
            let (h, m) = (9 + slot / 2, (slot % 2) * 30);
            let (eh, em) = if m == 0 { (h, 30) } else { (h + 1, 0) };
            let end = if i % 5 == 0 {
                local(MADRID, 3, eh + 1, em)
            } else {
                local(MADRID, 3, eh, em)
            };
            plan.push((app, member, local(MADRID, 3, h, m), end));
        }
    }
    assert!(plan.len() >= 300);
    let requests = plan
        .iter()
        .map(|(app, member, start, end)| app.hold(member, &court, start, end));

    let responses = futures::future::join_all(requests).await;

    let mut created = 0;
    for response in responses {
        let status = response.status().as_u16();
        assert!(matches!(status, 201 | 409), "unexpected {status}");
        if status == 201 {
            created += 1;
        } else {
            let problem: Value = response.json().await.unwrap();
            assert!(
                matches!(
                    problem["code"].as_str(),
                    Some("slot_unavailable" | "too_many_holds")
                ),
                "{problem}"
            );
        }
    }
    assert!(created >= 1);
    assert_eq!(a.overlapping_active_bookings().await, 0);
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE status = 'held'")
        .fetch_one(&a.db)
        .await
        .unwrap();
    assert_eq!(active, created);
}

#[tokio::test]
async fn a_taken_slot_offers_alternatives_that_are_really_free() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let ana = app.user(Role::Member).await;
    let bruno = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let club_id = court["club_id"].as_str().unwrap();
    for name in ["Pista Norte", "Pista Sur"] {
        let body = json!({"club_id": club_id, "name": name, "sport": "padel"});
        assert_eq!(
            app.post("/api/v1/facilities", body, Some(&admin.token))
                .await
                .status(),
            201
        );
    }
    let (start, end) = (local(MADRID, 2, 19, 0), local(MADRID, 2, 20, 0));
    assert_eq!(app.hold(&ana, &court, &start, &end).await.status(), 201);

    let problem = assert_problem(
        app.hold(&bruno, &court, &start, &end).await,
        409,
        "slot_unavailable",
    )
    .await;

    let alternatives = problem["alternatives"].as_array().unwrap().clone();
    assert!((1..=5).contains(&alternatives.len()), "{problem}");
    let reasons: Vec<&str> = alternatives
        .iter()
        .map(|a| a["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"nearest_time") && reasons.contains(&"similar_facility"),
        "{reasons:?}"
    );
    // Every alternative can really be held (each one on its own: alternatives may overlap each other).
    for alternative in alternatives {
        let facility = json!({"id": alternative["facility_id"]});
        let response = app
            .hold(
                &bruno,
                &facility,
                alternative["start"].as_str().unwrap(),
                alternative["end"].as_str().unwrap(),
            )
            .await;
        assert_eq!(response.status(), 201, "{alternative}");
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.post(
                &format!("/api/v1/bookings/{id}/cancel"),
                json!({}),
                Some(&bruno.token)
            )
            .await
            .status(),
            200
        );
    }
}

#[tokio::test]
async fn the_buffer_keeps_the_next_booking_from_starting_too_soon() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let other = app.user(Role::Member).await;
    let court = app
        .facility(&admin, MADRID, json!({"buffer_minutes": 10}))
        .await;
    assert_eq!(
        app.hold(
            &member,
            &court,
            &local(MADRID, 1, 10, 0),
            &local(MADRID, 1, 10, 30)
        )
        .await
        .status(),
        201
    );

    assert_problem(
        app.hold(
            &other,
            &court,
            &local(MADRID, 1, 10, 30),
            &local(MADRID, 1, 11, 0),
        )
        .await,
        409,
        "slot_unavailable",
    )
    .await;
    assert_eq!(
        app.hold(
            &other,
            &court,
            &local(MADRID, 1, 11, 0),
            &local(MADRID, 1, 11, 30)
        )
        .await
        .status(),
        201
    );
    assert_eq!(app.overlapping_active_bookings().await, 0);
}

#[tokio::test]
async fn a_member_may_hold_only_so_many_slots_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    for hour in 8..11 {
        assert_eq!(
            app.hold(
                &member,
                &court,
                &local(MADRID, 1, hour, 0),
                &local(MADRID, 1, hour, 30)
            )
            .await
            .status(),
            201
        );
    }

    assert_problem(
        app.hold(
            &member,
            &court,
            &local(MADRID, 1, 12, 0),
            &local(MADRID, 1, 12, 30),
        )
        .await,
        409,
        "too_many_holds",
    )
    .await;
    assert_eq!(app.count("bookings").await, 3);
}

fn fast_expiry(sweep_ms: u64) -> Setup {
    let mut setup = Setup::default();
    setup.config.booking.hold_seconds = 1;
    setup.config.booking.sweep_interval_ms = sweep_ms;
    setup
}

#[tokio::test]
async fn an_expired_hold_is_swept_without_any_request_and_its_release_published() {
    let app = TestApp::spawn_with(fast_expiry(200)).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let mut events = app.events.subscribe();
    let held: Value = app
        .hold(
            &member,
            &court,
            &local(MADRID, 1, 9, 0),
            &local(MADRID, 1, 9, 30),
        )
        .await
        .json()
        .await
        .unwrap();

    // The sweeper runs every 200 ms; on a busy machine it may run late, so wait for it (bounded)
    // rather than for a fixed time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1::uuid")
            .bind(held["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
        if status == "expired" {
            break;
        }
        assert_eq!(status, "held");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hold was not swept within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The release is published after the sweeper's commit: wait for it too.
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the hold's events arrive within 30 s")
            .unwrap();
        kinds.push(event.kind);
    }
    assert_eq!(kinds, [BookingEventKind::Held, BookingEventKind::Expired]);
    let id = held["id"].as_str().unwrap();
    assert_problem(
        app.post(
            &format!("/api/v1/bookings/{id}/confirm"),
            json!({}),
            Some(&member.token),
        )
        .await,
        409,
        "hold_expired",
    )
    .await;
}

#[tokio::test]
async fn an_expired_hold_blocks_nobody_even_before_the_sweeper_runs() {
    let app = TestApp::spawn_with(fast_expiry(3_600_000)).await;
    let admin = app.user(Role::Admin).await;
    let first = app.user(Role::Member).await;
    let second = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let (start, end) = (local(MADRID, 1, 20, 0), local(MADRID, 1, 21, 0));
    let held: Value = app
        .hold(&first, &court, &start, &end)
        .await
        .json()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;

    assert_eq!(app.hold(&second, &court, &start, &end).await.status(), 201);

    let id = held["id"].as_str().unwrap();
    let first_now: Value = app
        .get(&format!("/api/v1/bookings/{id}"), Some(&first.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first_now["status"], "expired");
    assert_problem(
        app.post(
            &format!("/api/v1/bookings/{id}/confirm"),
            json!({}),
            Some(&first.token),
        )
        .await,
        409,
        "hold_expired",
    )
    .await;
    assert_eq!(app.overlapping_active_bookings().await, 0);
}

#[tokio::test]
async fn availability_follows_every_write_in_process() {
    let app = TestApp::spawn_in_process().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let slot = local(MADRID, 1, 18, 0);
    let path = format!(
        "/api/v1/facilities/{}/availability?from={}&to={}",
        court["id"].as_str().unwrap(),
        urlencode(&slot),
        urlencode(&local(MADRID, 1, 18, 30))
    );
    let state = |body: Value| body["slots"][0]["state"].as_str().unwrap().to_owned();
    assert_eq!(
        state(app.get(&path, None).await.json().await.unwrap()),
        "free"
    );

    let held: Value = app
        .hold(&member, &court, &slot, &local(MADRID, 1, 18, 30))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        state(app.get(&path, None).await.json().await.unwrap()),
        "held"
    );
    let id = held["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/bookings/{id}/cancel"),
        json!({}),
        Some(&member.token),
    )
    .await;
    assert_eq!(
        state(app.get(&path, None).await.json().await.unwrap()),
        "free"
    );
}

#[tokio::test]
async fn availability_follows_every_write_on_both_instances() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let admin = a.user(Role::Admin).await;
    let member = a.user(Role::Member).await;
    let court = a.facility(&admin, MADRID, json!({})).await;
    let (start, end) = (local(MADRID, 1, 0, 0), local(MADRID, 2, 0, 0));
    let path = format!(
        "/api/v1/facilities/{}/availability?from={}&to={}",
        court["id"].as_str().unwrap(),
        urlencode(&start),
        urlencode(&end)
    );
    let state_at = |body: &Value, at: &str| -> String {
        let at: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
        body["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["start"]
                    .as_str()
                    .unwrap()
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
                    == at
            })
            .map(|s| s["state"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let slot = local(MADRID, 1, 18, 0);
    let before: Value = b.get(&path, None).await.json().await.unwrap();
    assert_eq!(state_at(&before, &slot), "free");
    let slots = before["slots"].as_array().unwrap();
    assert_eq!(
        slots.iter().filter(|s| s["state"] == "free").count(),
        32,
        "07:00 to 23:00 in 30-minute slots"
    );
    assert_eq!(slots.first().unwrap()["state"], "closed");

    let held: Value = a
        .hold(&member, &court, &slot, &local(MADRID, 1, 18, 30))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        state_at(&b.get(&path, None).await.json().await.unwrap(), &slot),
        "held"
    );
    let id = held["id"].as_str().unwrap();
    a.post(
        &format!("/api/v1/bookings/{id}/confirm"),
        json!({}),
        Some(&member.token),
    )
    .await;
    assert_eq!(
        state_at(&b.get(&path, None).await.json().await.unwrap(), &slot),
        "booked"
    );
    b.post(
        &format!("/api/v1/bookings/{id}/cancel"),
        json!({}),
        Some(&member.token),
    )
    .await;
    assert_eq!(
        state_at(&a.get(&path, None).await.json().await.unwrap(), &slot),
        "free"
    );
    assert_eq!(
        state_at(&b.get(&path, None).await.json().await.unwrap(), &slot),
        "free"
    );

    let batch: Vec<Value> = a
        .get(
            &format!(
                "/api/v1/availability?facility_ids={}&from={}&to={}",
                court["id"].as_str().unwrap(),
                urlencode(&start),
                urlencode(&end)
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(
        batch[0]["slots"],
        b.get(&path, None).await.json::<Value>().await.unwrap()["slots"]
    );
}

#[tokio::test]
async fn a_weekly_series_keeps_its_local_time_across_a_dst_change() {
    let mut setup = Setup::default();
    setup.config.booking.window_days = 800;
    setup.config.booking.max_active_holds = 1;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    // Madrid moves to summer time on 2027-03-28: 19:00 local is 18:00 UTC before, 17:00 UTC after.
    let body = json!({"facility_id": court["id"], "start": "2027-03-16T19:00:00+01:00", "end": "2027-03-16T20:00:00+01:00", "weeks": 4});

    let response = app
        .post("/api/v1/bookings/recurring", body, Some(&member.token))
        .await;

    assert_eq!(response.status(), 201);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["held"], 4, "a series counts as one hold: {result}");
    let starts: Vec<&str> = result["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-03-16T18:00:00Z",
            "2027-03-23T18:00:00Z",
            "2027-03-30T17:00:00Z",
            "2027-04-06T17:00:00Z"
        ]
    );

    // A week taken by someone else makes only that occurrence fail, with alternatives.
    let other = app.user(Role::Member).await;
    let taken: Value = app
        .hold(
            &other,
            &court,
            "2027-04-13T20:00:00+02:00",
            "2027-04-13T21:00:00+02:00",
        )
        .await
        .json()
        .await
        .unwrap();
    let id = taken["id"].as_str().unwrap();
    assert_eq!(
        app.post(
            &format!("/api/v1/bookings/{id}/confirm"),
            json!({}),
            Some(&other.token)
        )
        .await
        .status(),
        200
    );
    let body = json!({"facility_id": court["id"], "start": "2027-04-06T20:00:00+02:00", "end": "2027-04-06T21:00:00+02:00", "weeks": 2});
    let result: Value = app
        .post("/api/v1/bookings/recurring", body, Some(&other.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        each(&result["occurrences"], "status"),
        ["held", "refused"],
        "{result}"
    );
    assert_eq!(result["occurrences"][1]["code"], "slot_unavailable");
    assert!(
        !result["occurrences"][1]["alternatives"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_grid_on_a_dst_day_has_one_slot_fewer() {
    let mut setup = Setup::default();
    setup.config.booking.window_days = 800;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let all_day = json!({"slot_minutes": 60, "opening_hours": {"sun": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]]}});
    let court = app.facility(&admin, "America/New_York", all_day).await;
    let path = |from: &str, to: &str| {
        format!(
            "/api/v1/facilities/{}/availability?from={}&to={}",
            court["id"].as_str().unwrap(),
            urlencode(from),
            urlencode(to)
        )
    };

    let sunday: Value = app
        .get(
            &path("2027-03-14T00:00:00-05:00", "2027-03-15T00:00:00-04:00"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let saturday: Value = app
        .get(
            &path("2027-03-13T00:00:00-05:00", "2027-03-14T00:00:00-05:00"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(sunday["slots"].as_array().unwrap().len(), 23);
    assert_eq!(saturday["slots"].as_array().unwrap().len(), 24);
    assert!(
        sunday["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "free")
    );
}

#[tokio::test]
async fn popular_times_count_confirmed_bookings() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    for days in [1, 8] {
        let member = app.user(Role::Member).await;
        let held: Value = app
            .hold(
                &member,
                &court,
                &local(MADRID, days, 19, 0),
                &local(MADRID, days, 19, 30),
            )
            .await
            .json()
            .await
            .unwrap();
        let id = held["id"].as_str().unwrap();
        assert_eq!(
            app.post(
                &format!("/api/v1/bookings/{id}/confirm"),
                json!({}),
                Some(&member.token)
            )
            .await
            .status(),
            200
        );
    }
    // Popular times are counted by the outbox relay, after the commit.
    app.drain_outbox().await;

    let popular: Vec<Value> = app
        .get(
            &format!(
                "/api/v1/facilities/{}/popular-times",
                court["id"].as_str().unwrap()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(popular.len(), 1);
    assert_eq!(popular[0]["hour"], 19);
    assert_eq!(popular[0]["bookings"], 2);
}

#[tokio::test]
async fn bad_booking_requests_get_their_own_codes_and_write_nothing() {
    let mut setup = Setup::default();
    setup.config.booking.min_notice_minutes = 120;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let split = json!({"opening_hours": {
        "mon": [["07:00", "14:00"], ["16:00", "22:00"]], "tue": [["07:00", "14:00"], ["16:00", "22:00"]],
        "wed": [["07:00", "14:00"], ["16:00", "22:00"]], "thu": [["07:00", "14:00"], ["16:00", "22:00"]],
        "fri": [["07:00", "14:00"], ["16:00", "22:00"]], "sat": [["07:00", "14:00"], ["16:00", "22:00"]],
        "sun": [["07:00", "14:00"], ["16:00", "22:00"]]}});
    let court = app.facility(&admin, MADRID, split).await;
    let now = chrono::Utc::now();
    let soon = (now + chrono::Duration::minutes(30)).to_rfc3339();
    let cases = [
        (
            local(MADRID, 1, 10, 0),
            local(MADRID, 1, 10, 0),
            422,
            "invalid_range",
        ),
        (
            local(MADRID, 1, 11, 0),
            local(MADRID, 1, 10, 0),
            422,
            "invalid_range",
        ),
        (
            local(MADRID, 1, 10, 10),
            local(MADRID, 1, 10, 40),
            422,
            "misaligned_slot",
        ),
        (
            local(MADRID, 1, 13, 30),
            local(MADRID, 1, 16, 30),
            422,
            "outside_opening_hours",
        ),
        (
            local(MADRID, 1, 22, 0),
            local(MADRID, 1, 22, 30),
            422,
            "outside_opening_hours",
        ),
        (
            local(MADRID, -1, 10, 0),
            local(MADRID, -1, 10, 30),
            422,
            "in_the_past",
        ),
        (
            soon.clone(),
            (now + chrono::Duration::minutes(60)).to_rfc3339(),
            422,
            "insufficient_notice",
        ),
        (
            local(MADRID, 40, 10, 0),
            local(MADRID, 40, 10, 30),
            422,
            "beyond_booking_window",
        ),
        (
            "2026-12-01T10:00:00".to_owned(),
            "2026-12-01T10:30:00".to_owned(),
            422,
            "validation_failed",
        ),
        (
            "tomorrow".to_owned(),
            "later".to_owned(),
            422,
            "validation_failed",
        ),
    ];
    for (start, end, status, code) in cases {
        assert_problem(app.hold(&member, &court, &start, &end).await, status, code).await;
    }
    let unknown = json!({"id": uuid::Uuid::new_v4()});
    assert_problem(
        app.hold(
            &member,
            &unknown,
            &local(MADRID, 1, 10, 0),
            &local(MADRID, 1, 10, 30),
        )
        .await,
        404,
        "facility_not_found",
    )
    .await;
    assert_problem(
        app.post(
            "/api/v1/bookings",
            json!({"facility_id": court["id"], "start": local(MADRID, 1, 10, 0)}),
            Some(&member.token),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(app.post("/api/v1/bookings", json!({"facility_id": court["id"], "start": local(MADRID, 1, 10, 0), "end": local(MADRID, 1, 10, 30), "status": "confirmed"}), Some(&member.token)).await, 422, "validation_failed").await;
    assert_problem(
        app.hold(
            &crate::helpers::TestUser {
                token: "nope".into(),
                ..member.clone()
            },
            &court,
            &local(MADRID, 1, 10, 0),
            &local(MADRID, 1, 10, 30),
        )
        .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(app.post("/api/v1/bookings/recurring", json!({"facility_id": court["id"], "start": local(MADRID, 1, 10, 0), "end": local(MADRID, 1, 10, 30), "weeks": 0}), Some(&member.token)).await, 422, "validation_failed").await;
    let path = format!(
        "/api/v1/facilities/{}/availability",
        court["id"].as_str().unwrap()
    );
    assert_problem(
        app.get(&format!("{path}?from=yesterday"), None).await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.get(
            &format!("{path}?from=2026-12-01T00:00:00Z&to=2027-02-01T00:00:00Z"),
            None,
        )
        .await,
        422,
        "range_too_long",
    )
    .await;
    assert_problem(
        app.get("/api/v1/availability?facility_ids=a,b", None).await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.request(
            Method::GET,
            "/api/v1/bookings/not-an-id",
            None,
            Some(&member.token),
        )
        .await,
        400,
        "invalid_path",
    )
    .await;

    assert_eq!(app.count("bookings").await, 0);
}
