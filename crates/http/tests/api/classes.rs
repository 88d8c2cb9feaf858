//! Classes: capacity is never exceeded under concurrency, and cancelling frees places.

use clubpulse_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, local};

const MADRID: &str = "Europe/Madrid";

async fn class(app: &TestApp, capacity: i64) -> (Value, Value) {
    let admin = app.user(Role::Admin).await;
    let hall = app
        .facility(&admin, MADRID, json!({"sport": "fitness"}))
        .await;
    let response = app
        .post(
            "/api/v1/classes",
            json!({"facility_id": hall["id"], "title": "Spinning", "start": local(MADRID, 2, 18, 0), "end": local(MADRID, 2, 19, 0), "capacity": capacity}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), 201);
    (response.json().await.unwrap(), hall)
}

#[tokio::test]
async fn a_hundred_members_racing_for_ten_places_fill_it_exactly() {
    let app = TestApp::spawn().await;
    let (class, _) = class(&app, 10).await;
    let mut members = Vec::new();
    for _ in 0..100 {
        members.push(app.user(Role::Member).await);
    }
    let path = format!(
        "/api/v1/classes/{}/enrollments",
        class["id"].as_str().unwrap()
    );

    let responses = futures::future::join_all(
        members
            .iter()
            .map(|m| app.post(&path, json!({"spots": 1}), Some(&m.token))),
    )
    .await;

    let mut enrolled = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => enrolled += 1,
            409 => {
                assert_problem(response, 409, "class_full").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(enrolled, 10);
    let (taken, enrolled_rows): (i32, i64) = sqlx::query_as(
        "SELECT c.spots_taken, (SELECT coalesce(sum(spots), 0) FROM enrollments e WHERE e.class_id = c.id AND e.status = 'active')
         FROM classes c WHERE c.id = $1::uuid",
    )
    .bind(class["id"].as_str().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((taken, enrolled_rows), (10, 10));
}

#[tokio::test]
async fn enrolling_several_places_and_cancelling_frees_them() {
    let app = TestApp::spawn().await;
    let (class, _) = class(&app, 3).await;
    let ana = app.user(Role::Member).await;
    let bruno = app.user(Role::Member).await;
    let path = format!(
        "/api/v1/classes/{}/enrollments",
        class["id"].as_str().unwrap()
    );

    let enrolment: Value = app
        .post(&path, json!({"spots": 2}), Some(&ana.token))
        .await
        .json()
        .await
        .unwrap();
    assert_problem(
        app.post(&path, json!({"spots": 2}), Some(&bruno.token))
            .await,
        409,
        "class_full",
    )
    .await;
    let id = enrolment["id"].as_str().unwrap();
    assert_problem(
        app.post(
            &format!("/api/v1/enrollments/{id}/cancel"),
            json!({}),
            Some(&bruno.token),
        )
        .await,
        404,
        "enrollment_not_found",
    )
    .await;
    assert_eq!(
        app.post(
            &format!("/api/v1/enrollments/{id}/cancel"),
            json!({}),
            Some(&ana.token)
        )
        .await
        .status(),
        200
    );

    assert_eq!(
        app.post(&path, json!({"spots": 3}), Some(&bruno.token))
            .await
            .status(),
        201
    );
    let now: Value = app
        .get(
            &format!("/api/v1/classes/{}", class["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["spots_left"], 0);
    assert_problem(
        app.post(&path, json!({"spots": 0}), Some(&ana.token)).await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn a_class_occupies_its_facility() {
    let app = TestApp::spawn().await;
    let (_, hall) = class(&app, 5).await;
    let member = app.user(Role::Member).await;

    let response = app
        .hold(
            &member,
            &hall,
            &local(MADRID, 2, 18, 30),
            &local(MADRID, 2, 19, 0),
        )
        .await;

    assert_problem(response, 409, "slot_unavailable").await;
}
