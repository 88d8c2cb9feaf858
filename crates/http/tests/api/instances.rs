//! Two instances sharing one PostgreSQL and one Redis behave as one service.

use clubpulse_domain::Role;
use reqwest::Method;

use crate::helpers::{TestApp, assert_problem};

async fn pair() -> (TestApp, TestApp) {
    let first = TestApp::spawn().await;
    let second = first.another_instance().await;
    (first, second)
}

#[tokio::test]
async fn a_session_made_on_one_instance_works_on_the_other() {
    let (a, b) = pair().await;
    let member = a.user(Role::Member).await;

    let me = b.get("/api/v1/me", Some(&member.token)).await;

    assert_eq!(me.status(), 200);
    assert_eq!(
        me.json::<serde_json::Value>().await.unwrap()["email"],
        member.email
    );
}

#[tokio::test]
async fn logout_all_on_one_instance_is_refused_on_the_other_at_the_next_request() {
    let (a, b) = pair().await;
    let member = a.user(Role::Member).await;
    let on_b = b.token(&member.email, &member.password).await;
    assert_eq!(b.get("/api/v1/me", Some(&member.token)).await.status(), 200);

    let response = a
        .request(
            Method::POST,
            "/api/v1/auth/logout-all",
            None,
            Some(&member.token),
        )
        .await;
    assert_eq!(response.status(), 204);

    for token in [&member.token, &on_b] {
        assert_problem(
            b.get("/api/v1/me", Some(token)).await,
            401,
            "unauthenticated",
        )
        .await;
        assert_problem(
            a.get("/api/v1/me", Some(token)).await,
            401,
            "unauthenticated",
        )
        .await;
    }
}

#[tokio::test]
async fn a_ban_on_one_instance_ends_hundreds_of_sessions_used_concurrently_on_both() {
    let (a, b) = pair().await;
    let admin = a.user(Role::Admin).await;
    let target = a.user(Role::Member).await;
    let bystander = b.user(Role::Member).await;
    // 200 concurrent requests over both instances, all with live sessions.
    let requests = (0..200).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let token = if i % 4 < 2 {
            &target.token
        } else {
            &bystander.token
        };
        app.get("/api/v1/me", Some(token))
    });
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }

    let ban = a
        .request(
            Method::POST,
            &format!("/api/v1/admin/users/{}/ban", target.id),
            None,
            Some(&admin.token),
        )
        .await;
    assert_eq!(ban.status(), 204);

    let after = (0..200).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let token = if i % 4 < 2 {
            &target.token
        } else {
            &bystander.token
        };
        async move {
            (
                i % 4 < 2,
                app.get("/api/v1/me", Some(token)).await.status().as_u16(),
            )
        }
    });
    for (is_target, status) in futures::future::join_all(after).await {
        assert_eq!(status, if is_target { 401 } else { 200 });
    }
}
