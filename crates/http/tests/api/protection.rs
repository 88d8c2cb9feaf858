//! CSRF defence for cookie-authenticated writes, and the security headers.

use clubpulse_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, assert_problem};

async fn cookie_post(
    app: &TestApp,
    path: &str,
    token: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(path))
        .header("cookie", format!("clubpulse_session={token}"))
        .json(&json!({}));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_cookie_authenticated_write_from_another_site_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;
    let own_origin = format!("http://{}", app.addr);

    let foreign = cookie_post(
        &app,
        "/api/v1/auth/logout-all",
        &member.token,
        Some("https://evil.example"),
    )
    .await;
    assert_problem(foreign, 403, "csrf_rejected").await;
    let silent = cookie_post(&app, "/api/v1/auth/logout-all", &member.token, None).await;
    assert_problem(silent, 403, "csrf_rejected").await;
    assert_eq!(
        app.get("/api/v1/me", Some(&member.token)).await.status(),
        200,
        "nothing happened"
    );

    let referer = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", format!("clubpulse_session={}", member.token))
        .header("referer", format!("{own_origin}/bookings?week=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        referer.status(),
        204,
        "a same-site Referer is enough without Origin"
    );
    let member = app.user(Role::Member).await;
    let own = cookie_post(
        &app,
        "/api/v1/auth/logout-all",
        &member.token,
        Some(&own_origin),
    )
    .await;
    assert_eq!(own.status(), 204);
}

#[tokio::test]
async fn bearer_requests_and_configured_origins_are_not_checked() {
    let mut setup = Setup::default();
    setup.config.server.allowed_origins = vec!["https://app.club.example".to_owned()];
    let app = TestApp::spawn_with(setup).await;
    let member = app.user(Role::Member).await;

    let bearer = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&member.token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 204);

    let member = app.user(Role::Member).await;
    let configured = cookie_post(
        &app,
        "/api/v1/auth/logout",
        &member.token,
        Some("https://app.club.example"),
    )
    .await;
    assert_eq!(configured.status(), 204);
    let reads = app
        .client
        .get(app.url("/api/v1/clubs"))
        .header("origin", "https://evil.example")
        .header("cookie", "clubpulse_session=whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(reads.status(), 200, "reads are not writes");
}

#[tokio::test]
async fn pages_and_answers_carry_a_content_security_policy() {
    let app = TestApp::spawn().await;

    let page = app.get("/docs/", None).await;
    let api = app.get("/api/v1/clubs", None).await;

    let page_policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        page_policy.contains("frame-ancestors 'none'")
            && page_policy.contains("default-src 'self'"),
        "{page_policy}"
    );
    let api_policy = api.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(api_policy.starts_with("default-src 'none'"), "{api_policy}");
    let _: Vec<Value> = api.json().await.unwrap();
}
