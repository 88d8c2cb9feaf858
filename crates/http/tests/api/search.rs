//! Search through the API: facilities are indexed by background jobs when written, found in
//! plain words, and dropped from results when retired. (Ranking quality over the demo catalogue
//! is measured end to end in `crates/cli/tests/search.rs`.)

use std::time::Duration;

use clubpulse_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, with_search};

/// The results of an anonymous search for `q`.
pub(crate) async fn search(app: &TestApp, q: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url("/api/v1/search/facilities"))
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    answer["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn search_is_a_clear_503_when_turned_off() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/search/facilities?q=tenis", None).await;
    assert_problem(response, 503, "search_disabled").await;
    let bad = app.get("/api/v1/search/facilities?q=", None).await;
    assert_problem(bad, 422, "validation_failed").await;
}

#[tokio::test]
async fn facilities_are_indexed_when_written_and_leave_results_when_retired() {
    let app = TestApp::spawn_with(with_search()).await;
    let admin = app.user(Role::Admin).await;
    let court = app
        .facility(
            &admin,
            "Europe/Madrid",
            json!({
                "name": "Pista Azul",
                "description": "Pista de pádel con cristal panorámico.",
                "specifications": {"covered": true, "lighting": true, "surface": "artificial_grass"}
            }),
        )
        .await;
    let pool = app
        .facility(
            &admin,
            "Europe/Madrid",
            json!({"name": "Lap Pool", "sport": "swimming", "description": "Heated indoor lap pool, 25 m.",
                   "specifications": {"indoor": true, "heated": true, "lanes": 6}}),
        )
        .await;
    app.drain_jobs(Duration::from_secs(30)).await;

    let found = search(&app, "pádel techado").await;
    assert_eq!(found[0]["facility"]["id"], court["id"], "{found:?}");
    let found = search(&app, "indoor pool").await;
    assert_eq!(found[0]["facility"]["id"], pool["id"], "{found:?}");

    // A change is re-indexed: the new words find it.
    let patched = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/facilities/{}", court["id"].as_str().unwrap()),
            Some(json!({"description": "Pista de pádel junto a la cafetería del club."})),
            Some(&admin.token),
        )
        .await;
    assert_eq!(patched.status(), 200);
    app.drain_jobs(Duration::from_secs(30)).await;
    let found = search(&app, "cafetería").await;
    assert_eq!(found[0]["facility"]["id"], court["id"], "{found:?}");
    assert!(
        found[0]["matched"]["words"]
            .as_array()
            .unwrap()
            .contains(&json!("cafetería"))
    );

    let retired = app.retire(&admin, &court).await;
    assert_eq!(retired.status(), 204);
    let found = search(&app, "pádel").await;
    assert!(found.iter().all(|r| r["facility"]["id"] != court["id"]));
}
