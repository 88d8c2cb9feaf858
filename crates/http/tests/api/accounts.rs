//! Registration, login, sessions and `me`, on both state backends.

use clubpulse_domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

/// Runs an async test body against a server on Redis and one on the in-process twin.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_redis {
            $(#[tokio::test] async fn $name() { super::$name(crate::helpers::TestApp::spawn().await).await; })*
        }
        mod in_process {
            $(#[tokio::test] async fn $name() { super::$name(crate::helpers::TestApp::spawn_in_process().await).await; })*
        }
    };
}

both_backends!(
    a_member_registers_logs_in_and_sees_themselves,
    the_session_cookie_is_http_only_lax_and_works_like_the_bearer_token,
    every_login_gets_a_new_token,
    logout_ends_only_the_current_session,
    logout_all_ends_every_session_of_the_user,
    a_member_lists_their_sessions_and_ends_one,
    another_members_session_cannot_be_ended,
);

async fn a_member_registers_logs_in_and_sees_themselves(app: TestApp) {
    let response = app
        .register("  Ana@Example.COM ", "correct horse battery")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ana@example.com");
    assert_eq!(user["role"], "member");

    let token = app.token("ana@example.com", "correct horse battery").await;
    let me: Value = app
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["name"], "Test Member");
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind("ana@example.com")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
}

async fn the_session_cookie_is_http_only_lax_and_works_like_the_bearer_token(app: TestApp) {
    let member = app.user(Role::Member).await;
    let response = app.login(&member.email, &member.password).await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert!(
        cookie.starts_with(&format!("clubpulse_session={token};")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(
        !cookie.contains("Secure"),
        "Secure is off unless configured"
    );
    assert!(token.len() >= 43, "at least 256 bits, base64");

    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("theme=dark; clubpulse_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}

async fn every_login_gets_a_new_token(app: TestApp) {
    let member = app.user(Role::Member).await;
    let second = app.token(&member.email, &member.password).await;

    assert_ne!(member.token, second);
    for token in [&member.token, &second] {
        assert_eq!(
            app.get("/api/v1/me", Some(token)).await.status(),
            StatusCode::OK
        );
    }
}

async fn logout_ends_only_the_current_session(app: TestApp) {
    let member = app.user(Role::Member).await;
    let laptop = app.token(&member.email, &member.password).await;

    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(&member.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    assert_problem(
        app.get("/api/v1/me", Some(&member.token)).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/me", Some(&laptop)).await.status(),
        StatusCode::OK
    );
}

async fn logout_all_ends_every_session_of_the_user(app: TestApp) {
    let member = app.user(Role::Member).await;
    let other = app.user(Role::Member).await;
    let mut tokens = vec![member.token.clone()];
    for _ in 0..3 {
        tokens.push(app.token(&member.email, &member.password).await);
    }

    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/logout-all",
            None,
            Some(&tokens[2]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    for token in &tokens {
        assert_problem(
            app.get("/api/v1/me", Some(token)).await,
            401,
            "unauthenticated",
        )
        .await;
    }
    assert_eq!(
        app.get("/api/v1/me", Some(&other.token)).await.status(),
        StatusCode::OK
    );
}

async fn a_member_lists_their_sessions_and_ends_one(app: TestApp) {
    let member = app.user(Role::Member).await;
    let phone = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", "ClubPulse iOS/1.0")
        .json(&json!({"email": member.email, "password": member.password}))
        .send()
        .await
        .unwrap();
    let phone_token = phone.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let sessions: Vec<Value> = app
        .get("/api/v1/auth/sessions", Some(&member.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<bool> = sessions
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(
        current,
        [false, true],
        "newest first; the caller's own is marked"
    );
    assert_eq!(sessions[0]["user_agent"], "ClubPulse iOS/1.0");
    let listed = serde_json::to_string(&sessions).unwrap();
    assert!(
        !listed.contains(&phone_token) && !listed.contains(&member.token),
        "no tokens listed"
    );

    let id = sessions[0]["id"].as_str().unwrap();
    let response = app
        .request(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{id}"),
            None,
            Some(&member.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_problem(
        app.get("/api/v1/me", Some(&phone_token)).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/me", Some(&member.token)).await.status(),
        StatusCode::OK
    );
}

async fn another_members_session_cannot_be_ended(app: TestApp) {
    let ana = app.user(Role::Member).await;
    let bruno = app.user(Role::Member).await;
    let sessions: Vec<Value> = app
        .get("/api/v1/auth/sessions", Some(&ana.token))
        .await
        .json()
        .await
        .unwrap();
    let id = sessions[0]["id"].as_str().unwrap();

    let response = app
        .request(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{id}"),
            None,
            Some(&bruno.token),
        )
        .await;

    assert_problem(response, 404, "session_not_found").await;
    assert_eq!(
        app.get("/api/v1/me", Some(&ana.token)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;

    let wrong = assert_problem(
        app.login(&member.email, "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        app.login("nobody@clubpulse.test", "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;

    assert_eq!(wrong["detail"], unknown["detail"]);
}

#[tokio::test]
async fn a_duplicate_registration_is_a_conflict_in_any_letter_case() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.register("ana@example.com", "correct horse battery")
            .await
            .status(),
        201
    );

    assert_problem(
        app.register("ANA@example.com", "another password").await,
        409,
        "email_taken",
    )
    .await;
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn an_ended_session_and_a_made_up_token_are_refused() {
    let app = TestApp::spawn().await;

    assert_problem(app.get("/api/v1/me", None).await, 401, "unauthenticated").await;
    assert_problem(
        app.get("/api/v1/me", Some("made-up-token")).await,
        401,
        "unauthenticated",
    )
    .await;
    let basic = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, "unauthenticated").await;
}

#[tokio::test]
async fn sessions_expire_after_the_idle_timeout() {
    let mut setup = crate::helpers::Setup::default();
    setup.config.sessions.idle_seconds = 1;
    let app = TestApp::spawn_with(setup).await;
    let member = app.user(Role::Member).await;
    assert_eq!(
        app.get("/api/v1/me", Some(&member.token)).await.status(),
        200
    );

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    assert_problem(
        app.get("/api/v1/me", Some(&member.token)).await,
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn the_secure_flag_is_set_when_configured() {
    let mut setup = crate::helpers::Setup::default();
    setup.config.sessions.cookie_secure = true;
    let app = TestApp::spawn_with(setup).await;
    let member = app.user(Role::Member).await;

    let response = app.login(&member.email, &member.password).await;

    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;

    let keys: Vec<String> = app
        .state_redis()
        .await
        .query(redis::cmd("KEYS").arg(format!("{}*", app.redis_prefix)))
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let redis = app.state_redis().await;
    let mut sessions = 0;
    for key in keys {
        assert!(!key.contains(&member.token), "{key}");
        let kind: String = redis.query(redis::cmd("TYPE").arg(&key)).await.unwrap();
        // Every value stored under the prefix, whatever its type (sessions, the audit stream…).
        let values: Vec<String> = match kind.as_str() {
            "hash" => redis.query(redis::cmd("HVALS").arg(&key)).await.unwrap(),
            "string" => redis.query(redis::cmd("GET").arg(&key)).await.unwrap(),
            "set" => redis.query(redis::cmd("SMEMBERS").arg(&key)).await.unwrap(),
            "zset" => redis
                .query(redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1))
                .await
                .unwrap(),
            "list" => redis
                .query(redis::cmd("LRANGE").arg(&key).arg(0).arg(-1))
                .await
                .unwrap(),
            "stream" => {
                let entries: Vec<(String, Vec<String>)> = redis
                    .query(redis::cmd("XRANGE").arg(&key).arg("-").arg("+"))
                    .await
                    .unwrap();
                entries.into_iter().flat_map(|(_, fields)| fields).collect()
            }
            other => panic!("{key} has an unexpected type {other}"),
        };
        if key.contains("session") && kind == "hash" {
            sessions += 1;
        }
        assert!(
            values.iter().all(|v| !v.contains(&member.token)),
            "token stored in {key}"
        );
    }
    assert!(sessions > 0, "the session itself was looked at");
}

#[tokio::test]
async fn concurrent_logins_each_get_a_distinct_working_session() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;

    let logins = (0..50).map(|_| app.token(&member.email, &member.password));
    let tokens = futures::future::join_all(logins).await;

    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 50);
    let sessions: Vec<Value> = app
        .get("/api/v1/auth/sessions", Some(&tokens[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.len(), 51);
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;
    let phone = app.token(&member.email, &member.password).await;
    let other = app.user(Role::Member).await;
    let change = |current: &str| json!({"current_password": current, "new_password": "a brand new password"});

    assert_problem(
        app.post(
            "/api/v1/auth/password",
            change("not it"),
            Some(&member.token),
        )
        .await,
        403,
        "wrong_password",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/me", Some(&phone)).await.status(),
        200,
        "a failed change ends nothing"
    );

    let response = app
        .post(
            "/api/v1/auth/password",
            change(&member.password),
            Some(&member.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        app.get("/api/v1/me", Some(&member.token)).await.status(),
        200,
        "this session stays"
    );
    assert_problem(
        app.get("/api/v1/me", Some(&phone)).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/me", Some(&other.token)).await.status(),
        200
    );
    assert_problem(
        app.login(&member.email, &member.password).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login(&member.email, "a brand new password")
            .await
            .status(),
        200
    );
}
