//! A member's calendar feed, read back by a real iCalendar parser (`scripts/calendar_check.py`,
//! with the `icalendar` package `scripts/setup` installs into the test venv): UTC instants right
//! across a DST change, long names folded and unfolded exactly, and a token that can be rotated and
//! revoked.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use clubpulse_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, TestUser, assert_problem};

/// Parses `ics` with the real parser and returns what it saw; fails the test with the parser's
/// complaint when the document is not valid.
async fn parse(ics: &str) -> Value {
    use tokio::io::AsyncWriteExt as _;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("var/venv/bin/python3");
    let mut child = tokio::process::Command::new(&python)
        .arg(root.join("scripts/calendar_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("run the calendar parser with {python:?} (run scripts/setup): {e}")
        });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ics.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "the parser refused the feed: {}\n{ics}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The next day, at least two days from now, on which Madrid changes its clocks (the last Sunday
/// of March or of October), found by the calendar alone, and its UTC offset in hours before and
/// after the change.
fn next_dst_change() -> (NaiveDate, i32, i32) {
    let soon = Utc::now().date_naive() + Duration::days(2);
    let last_sunday = |year: i32, month: u32| {
        let mut day = NaiveDate::from_ymd_opt(year, month, 31).unwrap();
        while day.weekday() != Weekday::Sun {
            day = day.pred_opt().unwrap();
        }
        day
    };
    [soon.year(), soon.year() + 1]
        .into_iter()
        .flat_map(|y| [(last_sunday(y, 3), 1, 2), (last_sunday(y, 10), 2, 1)])
        .find(|(day, _, _)| *day >= soon)
        .unwrap()
}

fn at(day: NaiveDate, hour: u32, offset: i32) -> String {
    format!("{day}T{hour:02}:00:00+{offset:02}:00")
}

async fn new_feed(app: &TestApp, member: &TestUser) -> Value {
    let response = app
        .post("/api/v1/me/calendar-feed", json!({}), Some(&member.token))
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn fetch(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/me/calendar.ics"))
        .query(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// Holds `start`–`end` and, unless `then` is empty, confirms or cancels it; returns the id.
async fn book(
    app: &TestApp,
    member: &TestUser,
    court: &Value,
    start: &str,
    end: &str,
    then: &[&str],
) -> String {
    let response = app.hold(member, court, start, end).await;
    assert_eq!(response.status(), 201, "hold {start}");
    let hold: Value = response.json().await.unwrap();
    let id = hold["id"].as_str().unwrap().to_owned();
    for action in then {
        let response = app.booking_action(member, &id, action).await;
        assert_eq!(response.status(), 200, "{action} {id}");
    }
    id
}

#[tokio::test]
async fn a_calendar_feed_lists_my_bookings_in_utc_across_a_dst_change() {
    let mut setup = Setup::default();
    // Far enough ahead to reach the next change of Madrid's clocks.
    setup.config.booking.window_days = 400;
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let other = app.user(Role::Member).await;
    // Longer than a content line, with characters of two, three and four octets and the three
    // characters a text value escapes.
    let name = "Pista Central cubierta – Club Náutico de Mallorca, iluminación; nº 1 🎾 \\ çàé €";
    let court = app
        .facility(&admin, "Europe/Madrid", json!({"name": name}))
        .await;
    let (change, before, after) = next_dst_change();
    let eve = change.pred_opt().unwrap();

    let on_the_day = book(
        &app,
        &member,
        &court,
        &at(change, 10, after),
        &at(change, 11, after),
        &["confirm"],
    )
    .await;
    let the_day_before = book(
        &app,
        &member,
        &court,
        &at(eve, 10, before),
        &at(eve, 11, before),
        &["confirm"],
    )
    .await;
    let cancelled = book(
        &app,
        &member,
        &court,
        &at(change, 18, after),
        &at(change, 19, after),
        &["cancel"],
    )
    .await;
    let held = book(
        &app,
        &member,
        &court,
        &at(change, 20, after),
        &at(change, 21, after),
        &[],
    )
    .await;
    let theirs = book(
        &app,
        &other,
        &court,
        &at(change, 12, after),
        &at(change, 13, after),
        &["confirm"],
    )
    .await;
    let feed = new_feed(&app, &member).await;
    let token = feed["token"].as_str().unwrap();
    assert!(
        feed["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/me/calendar.ics?token={token}")),
        "{feed}"
    );

    let response = fetch(&app, token).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.starts_with("private, max-age="), "{cache}");
    let ics = response.text().await.unwrap();
    assert!(ics.contains("\r\n "), "the long name is folded");
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
    let parsed = parse(&ics).await;
    assert_eq!(parsed["version"], "2.0");
    let events = parsed["events"].as_array().unwrap();
    let event = |id: &str| {
        events
            .iter()
            .find(|e| e["uid"] == format!("{id}@clubpulse"))
            .unwrap_or_else(|| panic!("no event for {id}: {parsed}"))
    };
    let utc = |day: NaiveDate, hour: u32| format!("{day}T{hour:02}:00:00Z");
    // 10:00 in Madrid is 10 minus the offset in force that day, in UTC.
    let day = event(&on_the_day);
    assert_eq!(day["start"], utc(change, 10 - after as u32));
    assert_eq!(day["end"], utc(change, 11 - after as u32));
    assert_eq!(day["status"], "CONFIRMED");
    assert_eq!(
        day["summary"], name,
        "folded and escaped, then read back exactly"
    );
    let eve_event = event(&the_day_before);
    assert_eq!(eve_event["start"], utc(eve, 10 - before as u32));
    assert_ne!(
        &day["start"].as_str().unwrap()[11..],
        &eve_event["start"].as_str().unwrap()[11..],
        "the same local time is another UTC time across the change"
    );
    let gone = event(&cancelled);
    assert_eq!(gone["status"], "CANCELLED");
    assert!(gone["sequence"].as_i64().unwrap() > day["sequence"].as_i64().unwrap());
    assert_eq!(event(&held)["status"], "TENTATIVE");
    assert_eq!(events.len(), 4, "only the member's bookings: {parsed}");
    assert!(!ics.contains(&theirs));

    // The same booking keeps its UID and stamp from one fetch to the next.
    let again = parse(&fetch(&app, token).await.text().await.unwrap()).await;
    assert_eq!(again["events"], parsed["events"]);
}

#[tokio::test]
async fn a_calendar_feed_token_is_shown_once_rotated_and_revoked() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let start = crate::helpers::local("Europe/Madrid", 2, 10, 0);
    let end = crate::helpers::local("Europe/Madrid", 2, 11, 0);
    let id = book(&app, &member, &court, &start, &end, &["confirm"]).await;

    let first = new_feed(&app, &member).await;
    let first = first["token"].as_str().unwrap().to_owned();
    let ics = fetch(&app, &first).await.text().await.unwrap();
    assert_eq!(
        parse(&ics).await["events"][0]["uid"],
        format!("{id}@clubpulse")
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM calendar_feeds")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&first), "only the hash is kept");

    // Asking again rotates: the new token works, the old one no longer does.
    let second = new_feed(&app, &member).await;
    let second = second["token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_problem(fetch(&app, &first).await, 404, "calendar_feed_not_found").await;
    assert_eq!(fetch(&app, &second).await.status(), 200);

    let revoked = app
        .request(
            Method::DELETE,
            "/api/v1/me/calendar-feed",
            None,
            Some(&member.token),
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_problem(fetch(&app, &second).await, 404, "calendar_feed_not_found").await;
    assert_problem(
        app.request(
            Method::DELETE,
            "/api/v1/me/calendar-feed",
            None,
            Some(&member.token),
        )
        .await,
        404,
        "calendar_feed_not_found",
    )
    .await;
    assert_problem(
        app.get("/api/v1/me/calendar.ics", None).await,
        401,
        "calendar_token_required",
    )
    .await;
    assert_problem(
        fetch(&app, "cpf_made-up").await,
        404,
        "calendar_feed_not_found",
    )
    .await;
    assert_problem(
        app.post("/api/v1/me/calendar-feed", json!({}), None).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.count("calendar_feeds").await, 0);
}

#[tokio::test]
async fn the_booking_page_calendar_file_and_the_feed_write_the_same_event() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let name = "Pista con un nombre muy largo para que la línea se pliegue – Club Náutico, Sur";
    let court = app
        .facility(&admin, "Europe/Madrid", json!({"name": name}))
        .await;
    let start = crate::helpers::local("Europe/Madrid", 3, 10, 0);
    let end = crate::helpers::local("Europe/Madrid", 3, 11, 0);
    let id = book(&app, &member, &court, &start, &end, &["confirm"]).await;
    let feed = new_feed(&app, &member).await;
    let from_feed = parse(
        &fetch(&app, feed["token"].as_str().unwrap())
            .await
            .text()
            .await
            .unwrap(),
    )
    .await;

    let page = app
        .client
        .get(app.url(&format!("/bookings/{id}/calendar.ics")))
        .header("cookie", format!("clubpulse_session={}", member.token))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page_ics = page.text().await.unwrap();
    assert!(page_ics.contains("\r\n "), "the page's file is folded too");
    let from_page = parse(&page_ics).await;

    assert_eq!(from_page["events"], from_feed["events"]);
    assert_eq!(from_page["events"][0]["summary"], name);
}
