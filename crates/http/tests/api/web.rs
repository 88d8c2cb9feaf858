//! The web app's pages over HTTP (the browser tests in tests/browser drive them in Chromium):
//! HTML with hashed, long-cached assets and no inline script, forms that act through the booking
//! service, refusals that change nothing, and errors that are pages for browsers and problem
//! documents for everything else.

use reqwest::{StatusCode, header, redirect::Policy};
use serde_json::Value;

use crate::helpers::{TestApp, TestUser, local};
use clubpulse_domain::Role;

/// A browser-like client: no redirects followed, so each answer is seen as sent.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in through the sign-in form and answers the session cookie.
async fn sign_in(app: &TestApp, user: &TestUser) -> String {
    let response = browser()
        .post(app.url("/login"))
        .form(&[
            ("email", user.email.as_str()),
            ("password", user.password.as_str()),
            ("next", "/me/bookings"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/me/bookings");
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// A form post from this site's own page, with the member's cookie.
async fn submit(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser()
        .post(app.url(path))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, app.url(""))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn page(app: &TestApp, cookie: Option<&str>, path: &str) -> (StatusCode, String) {
    let mut request = browser()
        .get(app.url(path))
        .header(header::ACCEPT, "text/html");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{path} is not a page"
    );
    (status, response.text().await.unwrap())
}

/// The `value` of the first slot button in a week page whose `data-state` is `state`.
fn slot_value(html: &str, state: &str) -> String {
    let marker = format!("data-state=\"{state}\"");
    let at = html.find(&marker).expect("a slot in that state");
    let rest = &html[at..];
    let value = &rest[rest.find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_owned()
}

async fn active_bookings(app: &TestApp, facility: &Value) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE facility_id = $1 AND status IN ('held', 'confirmed')",
    )
    .bind(
        facility["id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .unwrap(),
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn pages_load_only_their_own_hashed_assets_and_no_inline_script() {
    let app = TestApp::spawn().await;
    let response = browser().get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(
        !policy.contains("script-src"),
        "scripts fall back to 'self' only: {policy}"
    );
    assert_eq!(response.headers()[header::REFERRER_POLICY], "same-origin");
    let html = response.text().await.unwrap();
    assert!(html.contains("<input type=\"search\" id=\"q\" name=\"q\""));
    let mut assets = Vec::new();
    for piece in html.split("<script").skip(1) {
        let tag = &piece[..piece.find('>').unwrap()];
        assert!(
            tag.contains("src=\"/assets/"),
            "an inline or foreign script: {tag}"
        );
    }
    for attr in ["src=\"/assets/", "href=\"/assets/"] {
        for piece in html.split(attr).skip(1) {
            assets.push(format!("/assets/{}", &piece[..piece.find('"').unwrap()]));
        }
    }
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in &assets {
        let response = browser().get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }
    let stale = browser()
        .get(app.url("/assets/app.0000000000.js"))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(stale, 404, "asset_not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_a_page_for_browsers_and_a_problem_for_clients() {
    let app = TestApp::spawn().await;
    let (status, html) = page(&app, None, "/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("There is no such page."));
    let api = browser()
        .get(app.url("/api/v1/nothing"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(api, 404, "not_found").await;
    let plain = browser()
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(plain, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn pages_speak_the_browser_s_language_until_the_switch_is_used() {
    let app = TestApp::spawn().await;
    let spanish = browser()
        .get(app.url("/login"))
        .header(header::ACCEPT_LANGUAGE, "es-ES,es;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(spanish.contains("<html lang=\"es\">"));
    assert!(spanish.contains("Contraseña"));
    let switched = browser()
        .get(app.url("/lang/en?next=/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert_eq!(switched.headers()[header::LOCATION], "/login");
    let cookie = switched.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("clubpulse_lang=en;"));
    let english = browser()
        .get(app.url("/login"))
        .header(header::ACCEPT_LANGUAGE, "es")
        .header(header::COOKIE, "clubpulse_lang=en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("<html lang=\"en\">"));
    // Only paths of this site are followed.
    let away = browser()
        .get(app.url("/lang/es?next=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(away.headers()[header::LOCATION], "/");
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_on_the_sign_in_page_says_so_and_opens_no_session() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;
    let response = browser()
        .post(app.url("/login"))
        .form(&[
            ("email", member.email.as_str()),
            ("password", "not it at all"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Wrong e-mail or password")
    );
    // A form missing its fields is told plainly, not a 500.
    let broken = browser()
        .post(app.url("/login"))
        .form(&[("email", member.email.as_str())])
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert!(broken.text().await.unwrap().contains("invalid_form"));
    app.stop().await;
}

#[tokio::test]
async fn a_member_holds_from_the_week_page_and_a_second_member_is_offered_alternatives() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let facility = app
        .facility(&admin, "Europe/Madrid", serde_json::json!({}))
        .await;
    let id = facility["id"].as_str().unwrap();
    let ana = app.user(Role::Member).await;
    let bruno = app.user(Role::Member).await;
    let ana_cookie = sign_in(&app, &ana).await;
    let bruno_cookie = sign_in(&app, &bruno).await;
    let week = local("Europe/Madrid", 2, 0, 0)[..10].to_owned();
    let (status, html) = page(
        &app,
        Some(&ana_cookie),
        &format!("/facilities/{id}?week={week}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let slot = slot_value(&html, "free");

    let held = submit(
        &app,
        &ana_cookie,
        &format!("/facilities/{id}/hold"),
        &[("slot", &slot), ("week", &week)],
    )
    .await;
    assert_eq!(held.status(), StatusCode::SEE_OTHER);
    let booking_path = held.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, hold_page) = page(&app, Some(&ana_cookie), &booking_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(hold_page.contains("data-countdown=\""));
    assert_eq!(active_bookings(&app, &facility).await, 1);

    // Bruno saw it free a moment ago: the same slot is refused with what is free instead.
    let taken = submit(
        &app,
        &bruno_cookie,
        &format!("/facilities/{id}/hold"),
        &[("slot", &slot), ("week", &week)],
    )
    .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let html = taken.text().await.unwrap();
    assert!(html.contains("data-alternatives"));
    assert!(html.contains("Someone took that slot a moment ago."));
    assert_eq!(active_bookings(&app, &facility).await, 1);
    // And the week now shows it held.
    let (_, html) = page(
        &app,
        Some(&bruno_cookie),
        &format!("/facilities/{id}?week={week}"),
    )
    .await;
    assert_eq!(slot_value(&html, "held"), slot);

    // A form from another site is refused before anything happens.
    let forged = browser()
        .post(app.url(&format!("/facilities/{id}/hold")))
        .header(header::COOKIE, &bruno_cookie)
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("slot", slot.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // Ana confirms (to pay at the club), finds it under her bookings, then cancels.
    let confirmed = submit(&app, &ana_cookie, &format!("{booking_path}/confirm"), &[]).await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    let (_, mine) = page(&app, Some(&ana_cookie), "/me/bookings").await;
    assert!(mine.contains("data-status=\"confirmed\""));
    let ics = browser()
        .get(app.url(&format!("{booking_path}/calendar.ics")))
        .header(header::COOKIE, &ana_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ics.headers()[header::CONTENT_TYPE],
        "text/calendar; charset=utf-8"
    );
    let ics = ics.text().await.unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
    assert!(ics.contains("\r\nSTATUS:CONFIRMED\r\n"));
    let cancelled = submit(&app, &ana_cookie, &format!("{booking_path}/cancel"), &[]).await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    assert_eq!(active_bookings(&app, &facility).await, 0);
    // Bruno cannot act on Ana's booking.
    let theirs = submit(&app, &bruno_cookie, &format!("{booking_path}/cancel"), &[]).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn bad_forms_are_told_what_to_do_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let facility = app
        .facility(&admin, "Europe/Madrid", serde_json::json!({}))
        .await;
    let id = facility["id"].as_str().unwrap();
    let member = app.user(Role::Member).await;
    let cookie = sign_in(&app, &member).await;
    for slot in [
        "garbage",
        "2026-13-01T00:00:00Z/2026-13-01T01:00:00Z",
        "/",
        "2020-01-01T10:00:00Z/2020-01-01T11:00:00Z",
    ] {
        let response = submit(
            &app,
            &cookie,
            &format!("/facilities/{id}/hold"),
            &[("slot", slot)],
        )
        .await;
        assert!(
            response.status().is_client_error(),
            "{slot}: {}",
            response.status()
        );
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let missing = submit(
        &app,
        &cookie,
        &format!("/facilities/{id}/hold"),
        &[("week", "x")],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let nobody = submit(
        &app,
        &cookie,
        "/facilities/not-a-uuid/hold",
        &[("slot", "x")],
    )
    .await;
    assert!(nobody.status().is_client_error());
    let (status, _) = page(&app, Some(&cookie), "/bookings/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = page(
        &app,
        Some(&cookie),
        &format!("/facilities/{}", uuid::Uuid::new_v4()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = page(
        &app,
        Some(&cookie),
        &format!("/facilities/{id}?week=not-a-date"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a bad week shows this week");
    assert_eq!(app.count("bookings").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn member_pages_ask_to_sign_in_and_the_dashboard_is_for_staff() {
    let app = TestApp::spawn().await;
    for path in ["/me/bookings", "/me/notifications", "/admin"] {
        let response = browser().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let to = response.headers()[header::LOCATION].to_str().unwrap();
        assert!(to.starts_with("/login?next="), "{path} → {to}");
    }
    // A form posted while signed out signs in and comes back to the page it was on.
    let posted = browser()
        .post(app.url("/facilities/00000000-0000-0000-0000-000000000000/hold"))
        .header(header::REFERER, app.url("/facilities/x?week=2026-12-07"))
        .form(&[("slot", "a/b")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        posted.headers()[header::LOCATION],
        "/login?next=/facilities/x%3Fweek%3D2026-12-07"
    );
    let member = app.user(Role::Member).await;
    let cookie = sign_in(&app, &member).await;
    let (status, _) = page(&app, Some(&cookie), "/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let staff = app.user(Role::Staff).await;
    let cookie = sign_in(&app, &staff).await;
    let (status, html) = page(&app, Some(&cookie), "/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-activity="));
    // Signing out ends the session for the API as well.
    let me = browser()
        .get(app.url("/api/v1/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let out = submit(&app, &cookie, "/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let me = browser()
        .get(app.url("/api/v1/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
