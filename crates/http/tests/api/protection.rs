//! CSRF defence for cookie-authenticated writes, and the security headers.

use clubpulse_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{OwnRedis, Setup, TestApp, assert_problem};

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

fn limited(global: u32) -> Setup {
    let mut setup = Setup::default();
    setup.config.rate_limits.enabled = true;
    setup.config.rate_limits.global_per_ip = global;
    setup
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_limit_admits_exactly_its_number_across_two_instances() {
    let a = TestApp::spawn_with(limited(20)).await;
    let b = TestApp::spawn_with(a.beside(limited(20))).await;

    let requests = (0..100).map(|i| {
        if i % 2 == 0 {
            a.get("/api/v1/clubs", None)
        } else {
            b.get("/api/v1/clubs", None)
        }
    });
    let responses = futures::future::join_all(requests).await;

    let mut admitted = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => admitted += 1,
            429 => {
                let retry: u64 = header(&response, "retry-after")
                    .unwrap_or_else(|| panic!("{:?}", response.headers()))
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry));
                assert_eq!(
                    header(&response, "ratelimit-remaining").as_deref(),
                    Some("0")
                );
                assert_eq!(
                    header(&response, "x-ratelimit-limit").as_deref(),
                    Some("20")
                );
                assert_problem(response, 429, "rate_limited").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(admitted, 20);
}

#[tokio::test]
async fn answers_count_down_the_remaining_requests() {
    let app = TestApp::spawn_with(limited(5)).await;

    for expected in (0..5).rev() {
        let response = app.get("/api/v1/clubs", None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("5"));
        assert_eq!(
            header(&response, "ratelimit-remaining"),
            Some(expected.to_string())
        );
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            Some(expected.to_string())
        );
        let reset: u64 = header(&response, "ratelimit-reset")
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&reset));
    }
    let refused = app.get("/api/v1/clubs", None).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        app.get("/health", None).await.status(),
        200,
        "probes are not limited"
    );
}

#[tokio::test]
async fn allowed_addresses_are_not_limited_per_ip() {
    let mut setup = limited(3);
    setup.config.rate_limits.allow = vec!["127.0.0.0/8".to_owned()];
    let app = TestApp::spawn_with(setup).await;

    for _ in 0..10 {
        let response = app.get("/api/v1/clubs", None).await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn logins_are_limited_per_account_whether_or_not_it_exists() {
    let mut setup = limited(1000);
    setup.config.rate_limits.login = 5;
    setup.config.rate_limits.allow = vec!["127.0.0.1".to_owned()];
    let app = TestApp::spawn_with(setup).await;
    let member = app.user(Role::Member).await; // one login already counted for this account

    for _ in 0..4 {
        assert_problem(
            app.login(&member.email, "wrong password").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_problem(
        app.login(&member.email, &member.password).await,
        429,
        "rate_limited",
    )
    .await;
    for _ in 0..5 {
        assert_problem(
            app.login("ghost@clubpulse.test", "wrong password").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_problem(
        app.login("ghost@clubpulse.test", "wrong password").await,
        429,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn logins_are_limited_per_ip() {
    let mut setup = limited(1000);
    setup.config.rate_limits.login = 5;
    let app = TestApp::spawn_with(setup).await;

    for i in 0..5 {
        let response = app
            .login(&format!("nobody{i}@clubpulse.test"), "whatever")
            .await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    assert_problem(
        app.login("someone-else@clubpulse.test", "whatever").await,
        429,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn holds_are_limited_per_member() {
    let mut setup = limited(1000);
    setup.config.rate_limits.booking = 2;
    setup.config.rate_limits.allow = vec!["127.0.0.1".to_owned()];
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let at = |h| crate::helpers::local("Europe/Madrid", 1, h, 0);
    let till = |h| crate::helpers::local("Europe/Madrid", 1, h, 30);

    assert_eq!(
        app.hold(&member, &court, &at(9), &till(9)).await.status(),
        201
    );
    assert_eq!(
        app.hold(&member, &court, &at(10), &till(10)).await.status(),
        201
    );
    assert_problem(
        app.hold(&member, &court, &at(11), &till(11)).await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(app.count("bookings").await, 2);
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let get = |app: &TestApp, forwarded: &str| {
        app.client
            .get(app.url("/api/v1/clubs"))
            .header("x-forwarded-for", forwarded.to_owned())
            .send()
    };
    let mut behind_proxy = limited(2);
    behind_proxy.config.rate_limits.trusted_proxies = vec!["127.0.0.1".to_owned()];
    let app = TestApp::spawn_with(behind_proxy).await;
    for _ in 0..2 {
        assert_eq!(
            get(&app, "198.51.100.9, 203.0.113.5")
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        get(&app, "198.51.100.9, 203.0.113.5")
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        get(&app, "203.0.113.6").await.unwrap().status(),
        200,
        "another client has its own budget"
    );

    let direct = TestApp::spawn_with(limited(2)).await;
    for forwarded in ["203.0.113.7", "203.0.113.8"] {
        assert_eq!(get(&direct, forwarded).await.unwrap().status(), 200);
    }
    assert_eq!(
        get(&direct, "203.0.113.9").await.unwrap().status(),
        429,
        "a client cannot pick its own address"
    );
}

#[tokio::test]
async fn with_redis_down_writes_fail_closed_reads_stay_up_and_recovery_is_automatic() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = OwnRedis::start(port).await;
    let app = TestApp::spawn_with(Setup {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        ..limited(1000)
    })
    .await;
    let member = app.user(Role::Member).await;
    let port = redis.stop();

    let started = std::time::Instant::now();
    let login = app.login(&member.email, &member.password).await;
    assert_problem(login, 503, "rate_limiter_unavailable").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(
        app.get("/api/v1/clubs", None).await.status(),
        200,
        "public reads stay up"
    );
    let register = app.register("new@clubpulse.test", "a long password").await;
    assert_eq!(register.status(), 503);
    assert_eq!(
        app.count("users").await,
        1,
        "a refused write changes nothing"
    );

    let redis = OwnRedis::start(port).await;
    let mut recovered = false;
    for _ in 0..40 {
        if app.login(&member.email, &member.password).await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(recovered, "logins work again once Redis is back");
    redis.stop();
}

async fn api_key(app: &TestApp, admin: &crate::helpers::TestUser, scopes: Value) -> Value {
    let response = app
        .post(
            "/api/v1/admin/api-keys",
            json!({"name": "Front desk", "scopes": scopes}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn with_key(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("x-api-key", key)
}

#[tokio::test]
async fn an_api_key_is_shown_once_stored_hashed_and_scoped() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let club = app.club(&admin).await;
    let reader = api_key(&app, &admin, json!(["read"])).await;
    let writer = api_key(&app, &admin, json!(["read", "write"])).await;
    let secret = reader["secret"].as_str().unwrap();
    assert!(secret.starts_with(reader["prefix"].as_str().unwrap()));

    let listed: Vec<Value> = app
        .get("/api/v1/admin/api-keys", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| k.get("secret").is_none()));
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE id = $1::uuid")
        .bind(reader["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(stored, secret);
    assert!(!stored.contains(secret));

    let facility = json!({"club_id": club["id"], "name": "Pista API", "sport": "padel"});
    let refused = with_key(&app, reqwest::Method::POST, "/api/v1/facilities", secret)
        .json(&facility)
        .send()
        .await
        .unwrap();
    assert_problem(refused, 403, "insufficient_scope").await;
    assert_eq!(
        with_key(&app, reqwest::Method::GET, "/api/v1/me", secret)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let made = app
        .client
        .post(app.url("/api/v1/facilities"))
        .bearer_auth(writer["secret"].as_str().unwrap())
        .json(&facility)
        .send()
        .await
        .unwrap();
    assert_eq!(
        made.status(),
        201,
        "a write key may act as staff, as Bearer too"
    );
    let admin_only = with_key(
        &app,
        reqwest::Method::GET,
        "/api/v1/admin/api-keys",
        writer["secret"].as_str().unwrap(),
    )
    .send()
    .await
    .unwrap();
    assert_problem(admin_only, 403, "forbidden").await;
    let sessions = with_key(&app, reqwest::Method::GET, "/api/v1/auth/sessions", secret)
        .send()
        .await
        .unwrap();
    assert_problem(sessions, 403, "session_required").await;
    let forged = format!("{}_notthesecret", reader["prefix"].as_str().unwrap());
    assert_problem(
        with_key(&app, reqwest::Method::GET, "/api/v1/me", &forged)
            .send()
            .await
            .unwrap(),
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_and_a_rotated_one_works_until_its_grace_ends() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let key = api_key(&app, &admin, json!(["read"])).await;
    let old = key["secret"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap();

    let rotated = app
        .post(
            &format!("/api/v1/admin/api-keys/{id}/rotate"),
            json!({"grace_seconds": 1}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(rotated.status(), 201);
    let rotated: Value = rotated.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["scopes"], json!(["read"]));
    for secret in [&old, &new] {
        assert_eq!(
            with_key(&app, reqwest::Method::GET, "/api/v1/me", secret)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_problem(
        app.post(
            &format!("/api/v1/admin/api-keys/{id}/rotate"),
            json!({}),
            Some(&admin.token),
        )
        .await,
        409,
        "api_key_inactive",
    )
    .await;

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    assert_problem(
        with_key(&app, reqwest::Method::GET, "/api/v1/me", &old)
            .send()
            .await
            .unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        with_key(&app, reqwest::Method::GET, "/api/v1/me", &new)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let new_id = rotated["id"].as_str().unwrap();
    let revoke = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/api-keys/{new_id}"),
            None,
            Some(&admin.token),
        )
        .await;
    assert_eq!(revoke.status(), 204);
    assert_problem(
        with_key(&app, reqwest::Method::GET, "/api/v1/me", &new)
            .send()
            .await
            .unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    let member = app.user(Role::Member).await;
    assert_problem(
        app.post(
            "/api/v1/admin/api-keys",
            json!({"name": "x", "scopes": ["read"]}),
            Some(&member.token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post(
            "/api/v1/admin/api-keys",
            json!({"name": "x", "scopes": ["admin"]}),
            Some(&admin.token),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn api_keys_are_limited_per_key() {
    let mut setup = limited(1000);
    setup.config.rate_limits.api_key = 3;
    setup.config.rate_limits.allow = vec!["127.0.0.1".to_owned()];
    let app = TestApp::spawn_with(setup).await;
    let admin = app.user(Role::Admin).await;
    let key = api_key(&app, &admin, json!(["read"])).await;
    let secret = key["secret"].as_str().unwrap();

    for _ in 0..3 {
        assert_eq!(
            with_key(&app, reqwest::Method::GET, "/api/v1/me", secret)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_problem(
        with_key(&app, reqwest::Method::GET, "/api/v1/me", secret)
            .send()
            .await
            .unwrap(),
        429,
        "rate_limited",
    )
    .await;
}
