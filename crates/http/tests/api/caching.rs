//! Facility contexts come from the in-process cache, and an edit on one instance reaches the
//! cached context of another.

use std::time::Duration;

use clubpulse_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, eventually, local, metric};

fn availability(facility: &Value) -> String {
    format!(
        "/api/v1/facilities/{}/availability",
        facility["id"].as_str().unwrap()
    )
}

#[tokio::test]
async fn holds_and_availability_reads_load_a_facility_context_once() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let court = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let hits = r#"clubpulse_cache_requests_total{cache="facility",result="hit"}"#;
    let misses = r#"clubpulse_cache_requests_total{cache="facility",result="miss"}"#;
    let (hits_before, misses_before) = (metric(&app, hits).await, metric(&app, misses).await);

    for _ in 0..3 {
        assert_eq!(app.get(&availability(&court), None).await.status(), 200);
    }
    let held = app
        .hold(
            &member,
            &court,
            &local("Europe/Madrid", 2, 10, 0),
            &local("Europe/Madrid", 2, 11, 0),
        )
        .await;
    assert_eq!(held.status(), 201);

    assert_eq!(metric(&app, misses).await - misses_before, 1.0);
    assert!(metric(&app, hits).await - hits_before >= 3.0);
    assert!(metric(&app, r#"clubpulse_cache_entries{cache="facility"}"#).await >= 1.0);
}

#[tokio::test]
async fn an_edit_or_retirement_on_one_instance_reaches_the_cached_context_of_another() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let admin = a.user(Role::Admin).await;
    let member = a.user(Role::Member).await;
    let court = a.facility(&admin, "Europe/Madrid", json!({})).await;
    let (start, end) = (
        local("Europe/Madrid", 2, 11, 0),
        local("Europe/Madrid", 2, 11, 30),
    );
    // B caches the context: 30-minute slots.
    let slots = |body: Value| body["slots"].as_array().map_or(0, Vec::len);
    let before: Value = b
        .get(&availability(&court), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(slots(before.clone()) > 0, "{before}");

    let patched = a
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/facilities/{}", court["id"].as_str().unwrap()),
            Some(json!({"slot_minutes": 60})),
            Some(&admin.token),
        )
        .await;
    assert_eq!(patched.status(), 200);
    eventually(
        Duration::from_secs(10),
        "B to see hour-long slots",
        || async {
            let now: Value = b.get(&availability(&court), None).await.json().await.ok()?;
            (now["slot_minutes"] == 60 && slots(now) > 0).then_some(())
        },
    )
    .await;
    assert_problem(
        b.hold(&member, &court, &start, &end).await,
        422,
        "misaligned_slot",
    )
    .await;

    let retired = a.retire(&admin, &court).await;
    assert_eq!(retired.status(), 204);
    eventually(
        Duration::from_secs(10),
        "B to forget the facility",
        || async { (b.get(&availability(&court), None).await.status() == 404).then_some(()) },
    )
    .await;
    let (start, end) = (
        local("Europe/Madrid", 3, 11, 0),
        local("Europe/Madrid", 3, 12, 0),
    );
    assert_problem(
        b.hold(&member, &court, &start, &end).await,
        404,
        "facility_not_found",
    )
    .await;
    assert_eq!(a.count("bookings").await, 0, "nothing was held");
}
