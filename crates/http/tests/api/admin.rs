//! Admin actions on accounts: revoking sessions and banning.

use clubpulse_domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn an_admin_revokes_every_session_of_one_user_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let target = app.user(Role::Member).await;
    let second = app.token(&target.email, &target.password).await;
    let bystander = app.user(Role::Member).await;

    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/admin/users/{}/revoke-sessions", target.id),
            None,
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    for token in [&target.token, &second] {
        assert_problem(
            app.get("/api/v1/me", Some(token)).await,
            401,
            "unauthenticated",
        )
        .await;
    }
    assert_eq!(
        app.get("/api/v1/me", Some(&bystander.token)).await.status(),
        200
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&admin.token)).await.status(),
        200
    );
    assert_eq!(
        app.get(
            "/api/v1/me",
            Some(&app.token(&target.email, &target.password).await)
        )
        .await
        .status(),
        200,
        "revoked, not banned: can log in again"
    );
}

#[tokio::test]
async fn a_banned_user_is_logged_out_everywhere_and_cannot_log_in() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let target = app.user(Role::Member).await;
    let bystander = app.user(Role::Member).await;

    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/admin/users/{}/ban", target.id),
            None,
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_problem(
        app.get("/api/v1/me", Some(&target.token)).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.login(&target.email, &target.password).await,
        403,
        "account_banned",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/me", Some(&bystander.token)).await.status(),
        200
    );
    let banned_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT banned_at FROM users WHERE id = $1")
            .bind(target.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(banned_at.is_some());
}

#[tokio::test]
async fn only_admins_may_revoke_or_ban() {
    let app = TestApp::spawn().await;
    let target = app.user(Role::Member).await;
    let member = app.user(Role::Member).await;
    let staff = app.user(Role::Staff).await;

    for action in ["revoke-sessions", "ban"] {
        let path = format!("/api/v1/admin/users/{}/{action}", target.id);
        assert_problem(
            app.request(Method::POST, &path, None, None).await,
            401,
            "unauthenticated",
        )
        .await;
        for caller in [&member, &staff] {
            assert_problem(
                app.request(Method::POST, &path, None, Some(&caller.token))
                    .await,
                403,
                "forbidden",
            )
            .await;
        }
    }
    assert_eq!(
        app.get("/api/v1/me", Some(&target.token)).await.status(),
        200
    );
    assert_eq!(
        app.login(&target.email, &target.password).await.status(),
        200
    );
}

#[tokio::test]
async fn unknown_users_and_self_bans_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let nobody = Uuid::new_v4();

    for action in ["revoke-sessions", "ban"] {
        let path = format!("/api/v1/admin/users/{nobody}/{action}");
        assert_problem(
            app.request(Method::POST, &path, None, Some(&admin.token))
                .await,
            404,
            "user_not_found",
        )
        .await;
    }
    let path = format!("/api/v1/admin/users/{}/ban", admin.id);
    assert_problem(
        app.request(Method::POST, &path, Some(json!({})), Some(&admin.token))
            .await,
        409,
        "cannot_ban_self",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/me", Some(&admin.token)).await.status(),
        200
    );
}
