//! The manager's dashboard data (`GET /api/v1/admin/stats`): occupancy in each club's local time
//! across a DST change, exact utilisation, booking outcomes and revenue, unmet demand (refused
//! holds, empty searches, the waitlist), the club filter, and who may ask.

use chrono::{Duration, Utc};
use clubpulse_domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, assert_problem, local, read_response, with_search};

const MADRID: &str = "Europe/Madrid";

/// Opening hours of 00:00–24:00 every day: 1440 open minutes a day, 1500 on the autumn change.
fn all_day() -> Value {
    let day = json!([["00:00", "24:00"]]);
    json!({"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day})
}

async fn stats(app: &TestApp, user: &TestUser, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/admin/stats?{query}"), Some(&user.token))
        .await;
    let (status, _, body) = read_response(response).await;
    assert_eq!(status, 200, "stats?{query}: {body}");
    body
}

/// A confirmed booking made through the API on a free future slot (`day` days ahead at `hour`),
/// then moved to `[start, end)` to build history: holds must lie in the future, history does not.
async fn confirmed_then_moved(
    app: &TestApp,
    member: &TestUser,
    facility: &Value,
    (day, hour): (i64, u32),
    start: &str,
    end: &str,
) -> Uuid {
    let id = held(app, member, facility, day, hour).await;
    let confirmed = app.booking_action(member, id, "confirm").await;
    assert_eq!(confirmed.status(), 200, "confirm");
    sqlx::query(
        "UPDATE bookings SET during = tstzrange($2::timestamptz, $3::timestamptz, '[)'),
                             blocks = tstzrange($2::timestamptz, $3::timestamptz, '[)')
         WHERE id = $1",
    )
    .bind(id)
    .bind(start)
    .bind(end)
    .execute(&app.db)
    .await
    .unwrap();
    id
}

/// A one-hour hold `day` days ahead at `hour` local time in Madrid.
async fn held(app: &TestApp, member: &TestUser, facility: &Value, day: i64, hour: u32) -> Uuid {
    let response = app
        .hold(
            member,
            facility,
            &local(MADRID, day, hour, 0),
            &local(MADRID, day, hour + 1, 0),
        )
        .await;
    let (status, _, body) = read_response(response).await;
    assert_eq!(status, 201, "hold: {body}");
    body["id"].as_str().unwrap().parse().unwrap()
}

/// The occupancy cell of an ISO weekday and hour.
fn cell(body: &Value, weekday: u64, hour: u64) -> &Value {
    body["occupancy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["weekday"] == weekday && c["hour"] == hour)
        .unwrap_or_else(|| panic!("no cell {weekday}/{hour}"))
}

fn day<'a>(body: &'a Value, date: &str) -> &'a Value {
    body["utilisation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("no day {date} in {}", body["utilisation"]))
}

/// Local today in Madrid, and the date `days` later, as `YYYY-MM-DD`.
fn madrid_date(days: i64) -> String {
    let tz: chrono_tz::Tz = MADRID.parse().unwrap();
    (Utc::now().with_timezone(&tz).date_naive() + Duration::days(days)).to_string()
}

#[tokio::test]
async fn bookings_land_in_their_local_weekday_and_hour_across_the_autumn_change() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let facility = app
        .facility(
            &admin,
            MADRID,
            json!({"slot_minutes": 60, "opening_hours": all_day()}),
        )
        .await;
    let club = facility["club_id"].as_str().unwrap();
    // Saturday 2026-10-24 19:00–20:30 CEST (UTC+2).
    confirmed_then_moved(
        &app,
        &member,
        &facility,
        (2, 8),
        "2026-10-24T19:00:00+02:00",
        "2026-10-24T20:30:00+02:00",
    )
    .await;
    // Sunday 2026-10-25, 02:00 CEST to 03:00 CET: two real hours, both in the repeated 02:00 hour.
    confirmed_then_moved(
        &app,
        &member,
        &facility,
        (2, 10),
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T03:00:00+01:00",
    )
    .await;
    // Monday 2026-10-26 19:00–20:00 CET (UTC+1): the same wall time as Saturday's, an hour later
    // in UTC.
    confirmed_then_moved(
        &app,
        &member,
        &facility,
        (2, 12),
        "2026-10-26T19:00:00+01:00",
        "2026-10-26T20:00:00+01:00",
    )
    .await;
    // After the range, and a cancelled one inside it: neither is booked time.
    confirmed_then_moved(
        &app,
        &member,
        &facility,
        (2, 14),
        "2026-10-27T10:00:00+01:00",
        "2026-10-27T11:00:00+01:00",
    )
    .await;
    let cancelled = held(&app, &member, &facility, 2, 16).await;
    assert_eq!(
        app.booking_action(&member, cancelled, "cancel")
            .await
            .status(),
        200
    );
    sqlx::query(
        "UPDATE bookings SET during = tstzrange('2026-10-24T10:00:00+02', '2026-10-24T11:00:00+02', '[)'),
                             blocks = tstzrange('2026-10-24T10:00:00+02', '2026-10-24T11:00:00+02', '[)')
         WHERE id = $1",
    )
    .bind(cancelled)
    .execute(&app.db)
    .await
    .unwrap();

    let body = stats(
        &app,
        &admin,
        &format!("from=2026-10-24&to=2026-10-27&club_id={club}"),
    )
    .await;

    assert_eq!(body["from"], "2026-10-24");
    assert_eq!(body["to"], "2026-10-27");
    assert_eq!(body["club_id"], club);
    assert_eq!(body["occupancy"].as_array().unwrap().len(), 7 * 24);
    // Saturday (6) 19:00 full, 20:00 half; each hour open 60 minutes that one Saturday.
    assert_eq!(
        cell(&body, 6, 19),
        &json!({"weekday": 6, "hour": 19, "booked_minutes": 60, "open_minutes": 60, "rate": 1.0})
    );
    assert_eq!(cell(&body, 6, 20)["booked_minutes"], 30);
    assert_eq!(cell(&body, 6, 20)["rate"], 0.5);
    assert_eq!(cell(&body, 6, 10)["booked_minutes"], 0, "cancelled");
    // Sunday (7): the repeated hour is open, and booked, twice over.
    assert_eq!(
        cell(&body, 7, 2),
        &json!({"weekday": 7, "hour": 2, "booked_minutes": 120, "open_minutes": 120, "rate": 1.0})
    );
    assert_eq!(cell(&body, 7, 3)["booked_minutes"], 0);
    // Monday (1) 19:00 in CET, not 18:00 or 20:00.
    assert_eq!(cell(&body, 1, 19)["booked_minutes"], 60);
    assert_eq!(cell(&body, 1, 18)["booked_minutes"], 0);
    assert_eq!(cell(&body, 1, 20)["booked_minutes"], 0);
    // Tuesday is outside the range: nothing open, no rate.
    assert_eq!(cell(&body, 2, 10)["open_minutes"], 0);
    assert!(cell(&body, 2, 10)["rate"].is_null());

    // Utilisation: every day, exact; the autumn Sunday is 25 hours long.
    let days: Vec<&str> = body["utilisation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2026-10-24", "2026-10-25", "2026-10-26"]);
    assert_eq!(
        day(&body, "2026-10-24"),
        &json!({"date": "2026-10-24", "booked_minutes": 90, "open_minutes": 1440, "rate": 0.0625})
    );
    assert_eq!(day(&body, "2026-10-25")["open_minutes"], 1500);
    assert_eq!(day(&body, "2026-10-25")["rate"], 120.0 / 1500.0);
    assert_eq!(day(&body, "2026-10-26")["booked_minutes"], 60);

    // The busiest hours, busiest first, ties by weekday.
    let peaks: Vec<(u64, u64, i64)> = body["peak_hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["weekday"].as_u64().unwrap(),
                p["hour"].as_u64().unwrap(),
                p["booked_minutes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(peaks, [(7, 2, 120), (1, 19, 60), (6, 19, 60), (6, 20, 30)]);
    assert_eq!(body["bookings"]["confirmed"], 3);
    assert_eq!(body["bookings"]["cancelled"], 1);
}

#[tokio::test]
async fn utilisation_is_exact_for_known_opening_hours() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    // Open 08:00–12:00 and 16:00–20:00 on Mondays only: 480 minutes on a Monday, none otherwise.
    let monday = json!([["08:00", "12:00"], ["16:00", "20:00"]]);
    let facility = app
        .facility(
            &admin,
            MADRID,
            json!({"slot_minutes": 60, "opening_hours": {"mon": monday}}),
        )
        .await;
    let club = facility["club_id"].as_str().unwrap();
    // Its grid only takes Mondays: hold on a free day of an all-day twin, then move the booking.
    let twin = app
        .facility(
            &admin,
            MADRID,
            json!({"slot_minutes": 60, "opening_hours": all_day()}),
        )
        .await;
    let id = confirmed_then_moved(
        &app,
        &member,
        &twin,
        (3, 9),
        "2026-11-02T09:00:00+01:00",
        "2026-11-02T11:00:00+01:00",
    )
    .await;
    sqlx::query("UPDATE bookings SET facility_id = $2::uuid WHERE id = $1")
        .bind(id)
        .bind(facility["id"].as_str().unwrap())
        .execute(&app.db)
        .await
        .unwrap();

    // Monday 2026-11-02 to Sunday 2026-11-08.
    let body = stats(
        &app,
        &admin,
        &format!("from=2026-11-02&to=2026-11-09&club_id={club}"),
    )
    .await;
    assert_eq!(
        day(&body, "2026-11-02"),
        &json!({"date": "2026-11-02", "booked_minutes": 120, "open_minutes": 480, "rate": 0.25})
    );
    let tuesday = day(&body, "2026-11-03");
    assert_eq!(tuesday["open_minutes"], 0);
    assert!(tuesday["rate"].is_null());
    assert_eq!(body["utilisation"].as_array().unwrap().len(), 7);
    assert_eq!(cell(&body, 1, 8)["open_minutes"], 60);
    assert_eq!(cell(&body, 1, 12)["open_minutes"], 0);
    assert_eq!(cell(&body, 1, 19)["open_minutes"], 60);
    assert_eq!(cell(&body, 1, 10)["rate"], 1.0);
    assert_eq!(cell(&body, 1, 8)["rate"], 0.0);
}

#[tokio::test]
async fn cancellations_expired_holds_and_revenue_are_counted() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let staff = app.user(Role::Staff).await;
    let member = app.user(Role::Member).await;
    // 30-minute slots at 20.00: an hour costs 40.00.
    let facility = app.facility(&admin, MADRID, json!({})).await;
    let club = facility["club_id"].as_str().unwrap();

    // Paid on site, kept.
    let kept = held(&app, &member, &facility, 3, 10).await;
    assert_eq!(
        app.booking_action(&member, kept, "checkout").await.status(),
        201
    );
    assert_eq!(
        app.booking_action(&staff, kept, "mark-paid").await.status(),
        200
    );
    // Paid on site, then cancelled late: refunded less the 50% fee.
    let refunded = held(&app, &member, &facility, 3, 12).await;
    assert_eq!(
        app.booking_action(&member, refunded, "checkout")
            .await
            .status(),
        201
    );
    assert_eq!(
        app.booking_action(&staff, refunded, "mark-paid")
            .await
            .status(),
        200
    );
    app.make_cancellations_late().await;
    assert_eq!(
        app.booking_action(&member, refunded, "cancel")
            .await
            .status(),
        200
    );
    // A hold cancelled (no fee: nothing was confirmed), one run out, one still running.
    let dropped = held(&app, &member, &facility, 3, 14).await;
    assert_eq!(
        app.booking_action(&member, dropped, "cancel")
            .await
            .status(),
        200
    );
    let lapsed = held(&app, &member, &facility, 3, 16).await;
    sqlx::query("UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(lapsed)
        .execute(&app.db)
        .await
        .unwrap();
    held(&app, &member, &facility, 3, 18).await;
    let payments: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT status, amount_cents, refunded_cents FROM payments ORDER BY created_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        payments,
        [
            ("succeeded".to_owned(), 4000, 0),
            ("refunded".to_owned(), 4000, 2000)
        ]
    );

    let body = stats(
        &app,
        &staff,
        &format!(
            "from={}&to={}&club_id={club}",
            madrid_date(0),
            madrid_date(7)
        ),
    )
    .await;
    assert_eq!(
        body["bookings"],
        json!({"confirmed": 1, "cancelled": 2, "late_cancellations": 1, "expired_holds": 1, "held_now": 1})
    );
    assert_eq!(
        body["revenue"],
        json!([{"currency": "EUR", "paid_cents": 8000, "refunded_cents": 2000, "net_cents": 6000,
                "cancellation_fees_cents": 2000}])
    );
    assert_eq!(body["unmet_demand"]["expired_holds"], 1);
    // The kept booking is the only booked time: an hour at 10:00 on its weekday.
    let booked: i64 = body["utilisation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["booked_minutes"].as_i64().unwrap())
        .sum();
    assert_eq!(booked, 60);
    assert_eq!(body["peak_hours"][0]["hour"], 10);
    assert_eq!(body["peak_hours"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn refused_holds_and_the_waitlist_are_unmet_demand_of_their_club_only() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let first = app.user(Role::Member).await;
    let second = app.user(Role::Member).await;
    let court = app.facility(&admin, MADRID, json!({})).await;
    let elsewhere = app.facility(&admin, MADRID, json!({})).await;
    let (club, other_club) = (
        court["club_id"].as_str().unwrap(),
        elsewhere["club_id"].as_str().unwrap(),
    );
    let (start, end) = (local(MADRID, 2, 19, 0), local(MADRID, 2, 20, 0));
    let taken = held(&app, &first, &court, 2, 19).await;
    assert_eq!(
        app.booking_action(&first, taken, "confirm").await.status(),
        200
    );
    // The refusal is still the member's 409, and it is recorded once.
    assert_problem(
        app.hold(&second, &court, &start, &end).await,
        409,
        "slot_unavailable",
    )
    .await;
    assert_eq!(app.count("demand_conflicts").await, 1);
    let waiting = app
        .post(
            "/api/v1/waitlist",
            json!({"facility_id": court["id"], "start": start, "end": end}),
            Some(&second.token),
        )
        .await;
    assert_eq!(waiting.status(), 201);
    // The other club has a booking of its own and no unmet demand.
    let theirs = held(&app, &first, &elsewhere, 2, 10).await;
    assert_eq!(
        app.booking_action(&first, theirs, "confirm").await.status(),
        200
    );

    let range = format!("from={}&to={}", madrid_date(0), madrid_date(7));
    let ours = stats(&app, &admin, &format!("{range}&club_id={club}")).await;
    let demand = &ours["unmet_demand"];
    assert_eq!(
        demand["conflicts"],
        json!([{"facility_id": court["id"], "facility_name": court["name"], "hour": 19, "count": 1}])
    );
    assert_eq!(demand["conflicts_total"], 1);
    assert_eq!(
        demand["waitlist"],
        json!([{"facility_id": court["id"], "facility_name": court["name"], "waiting": 1, "joined": 1}])
    );
    assert_eq!(demand["waiting_total"], 1);
    assert_eq!(ours["bookings"]["confirmed"], 1);

    let theirs = stats(&app, &admin, &format!("{range}&club_id={other_club}")).await;
    assert_eq!(theirs["unmet_demand"]["conflicts_total"], 0);
    assert_eq!(theirs["unmet_demand"]["conflicts"], json!([]));
    assert_eq!(theirs["unmet_demand"]["waiting_total"], 0);
    assert_eq!(theirs["bookings"]["confirmed"], 1);
    assert_eq!(theirs["peak_hours"][0]["hour"], 10);

    let all = stats(&app, &admin, &range).await;
    assert!(all["club_id"].is_null());
    assert_eq!(all["bookings"]["confirmed"], 2);
    assert_eq!(all["unmet_demand"]["conflicts_total"], 1);
}

#[tokio::test]
async fn searches_without_results_are_counted_by_their_normalised_query() {
    let app = TestApp::spawn_with(with_search()).await;
    let admin = app.user(Role::Admin).await;
    // A club with no facilities: a search filtered by it finds nothing.
    let club = app.club(&admin).await;
    let club_id = club["id"].as_str().unwrap();
    for q in ["  Pádel   NOCTURNO ", "pádel nocturno", "sauna"] {
        let response = app
            .client
            .get(app.url("/api/v1/search/facilities"))
            .query(&[("q", q), ("club_id", club_id)])
            .send()
            .await
            .unwrap();
        let (status, _, body) = read_response(response).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"], json!([]));
    }
    let unfiltered = app
        .client
        .get(app.url("/api/v1/search/facilities"))
        .query(&[("q", "Squash")])
        .send()
        .await
        .unwrap();
    assert_eq!(unfiltered.status(), 200);

    // Two days either side: the club's local dates need not be UTC's.
    let today = Utc::now().date_naive();
    let range = format!(
        "from={}&to={}",
        today - Duration::days(2),
        today + Duration::days(2)
    );
    let theirs = stats(&app, &admin, &format!("{range}&club_id={club_id}")).await;
    assert_eq!(
        theirs["unmet_demand"]["searches_without_results"],
        json!({"count": 3, "top": [{"query": "pádel nocturno", "count": 2}, {"query": "sauna", "count": 1}]})
    );
    let all = stats(&app, &admin, &range).await;
    assert_eq!(all["unmet_demand"]["searches_without_results"]["count"], 4);
    assert_eq!(
        all["unmet_demand"]["searches_without_results"]["top"][2],
        json!({"query": "squash", "count": 1})
    );
}

#[tokio::test]
async fn only_staff_see_the_stats_and_bad_ranges_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let staff = app.user(Role::Staff).await;
    let member = app.user(Role::Member).await;
    let path = "/api/v1/admin/stats";
    assert_problem(app.get(path, None).await, 401, "unauthenticated").await;
    assert_problem(app.get(path, Some(&member.token)).await, 403, "forbidden").await;

    // The default: the 28 days ending today (UTC), every club.
    let body = stats(&app, &staff, "").await;
    let today = Utc::now().date_naive();
    assert_eq!(body["to"], (today + Duration::days(1)).to_string());
    assert_eq!(body["from"], (today - Duration::days(27)).to_string());
    assert_eq!(body["utilisation"].as_array().unwrap().len(), 28);
    assert!(body["club_id"].is_null());
    assert!(body["generated_at"].is_string());
    // One side given: 28 days from or to it; 366 days is the longest range.
    assert_eq!(
        stats(&app, &admin, "from=2026-02-01").await["to"],
        "2026-03-01"
    );
    assert_eq!(
        stats(&app, &admin, "to=2026-03-01").await["from"],
        "2026-02-01"
    );
    let year = stats(&app, &admin, "from=2024-01-01&to=2025-01-01").await;
    assert_eq!(year["utilisation"].as_array().unwrap().len(), 366);
    let edge = stats(&app, &admin, "from=9999-12-01&to=9999-12-31").await;
    assert_eq!(edge["utilisation"].as_array().unwrap().len(), 30);

    for (query, status, code) in [
        ("from=2026-11-01&to=2026-11-01", 422, "invalid_range"),
        ("from=2026-12-01&to=2026-11-01", 422, "invalid_range"),
        ("from=2025-01-01&to=2026-01-03", 422, "range_too_long"),
        ("from=2026-11-1&to=2026-12-01", 422, "validation_failed"),
        ("from=2026-11-01T00:00:00Z", 422, "validation_failed"),
        ("to=2026-02-30", 422, "validation_failed"),
        ("from=1969-12-01&to=1969-12-05", 422, "validation_failed"),
        ("from=9999-12-31", 422, "validation_failed"),
        ("from=%00", 422, "validation_failed"),
        ("club_id=xyz", 400, "invalid_query"),
        ("colour=red", 400, "invalid_query"),
    ] {
        assert_problem(
            app.get(&format!("{path}?{query}"), Some(&staff.token))
                .await,
            status,
            code,
        )
        .await;
    }
    let nobody = Uuid::new_v4();
    assert_problem(
        app.get(&format!("{path}?club_id={nobody}"), Some(&staff.token))
            .await,
        404,
        "club_not_found",
    )
    .await;
}
