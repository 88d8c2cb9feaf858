//! Clubs and facilities: who may change them, and how they are validated.

use clubpulse_domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

fn court(club_id: &Value) -> Value {
    json!({
        "club_id": club_id,
        "name": "Pista Central",
        "sport": "tennis",
        "description": "Pista de tierra batida con iluminación nocturna.",
        "specifications": {"covered": false, "lighting": true, "surface": "clay"},
        "price_cents": 1800,
    })
}

#[tokio::test]
async fn an_admin_creates_a_club_that_anyone_can_list() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;

    let response = app
        .post(
            "/api/v1/clubs",
            json!({"name": "Club Náutico", "timezone": "America/Argentina/Buenos_Aires"}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let club: Value = response.json().await.unwrap();

    let clubs: Vec<Value> = app.get("/api/v1/clubs", None).await.json().await.unwrap();
    assert_eq!(clubs.len(), 1);
    assert_eq!(clubs[0]["timezone"], "America/Argentina/Buenos_Aires");
    let one: Value = app
        .get(
            &format!("/api/v1/clubs/{}", club["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one, club);
}

#[tokio::test]
async fn club_names_are_unique_and_time_zones_must_exist() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let club = app.club(&admin).await;

    let dup = app.post("/api/v1/clubs", json!({"name": club["name"].as_str().unwrap().to_uppercase(), "timezone": "Europe/Madrid"}), Some(&admin.token)).await;
    assert_problem(dup, 409, "club_name_taken").await;
    let body = assert_problem(
        app.post(
            "/api/v1/clubs",
            json!({"name": "Otro", "timezone": "Mars/Olympus_Mons"}),
            Some(&admin.token),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "timezone");
    assert_eq!(app.count("clubs").await, 1);
}

#[tokio::test]
async fn only_admins_create_clubs() {
    let app = TestApp::spawn().await;
    let staff = app.user(Role::Staff).await;
    let body = json!({"name": "Club", "timezone": "Europe/Madrid"});

    assert_problem(
        app.post("/api/v1/clubs", body.clone(), None).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.post("/api/v1/clubs", body, Some(&staff.token)).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(app.count("clubs").await, 0);
}

#[tokio::test]
async fn staff_create_edit_and_retire_a_facility_with_defaults_filled_in() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let staff = app.user(Role::Staff).await;
    let club = app.club(&admin).await;

    let response = app
        .post("/api/v1/facilities", court(&club["id"]), Some(&staff.token))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let facility: Value = response.json().await.unwrap();
    assert_eq!(facility["slot_minutes"], 30);
    assert_eq!(facility["buffer_minutes"], 0);
    assert_eq!(facility["currency"], "EUR");
    assert_eq!(
        facility["opening_hours"]["mon"],
        json!([["07:00", "23:00"]])
    );
    assert_eq!(
        facility["opening_hours"]["sun"],
        json!([["07:00", "23:00"]])
    );
    let path = format!("/api/v1/facilities/{}", facility["id"].as_str().unwrap());

    let patched: Value = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({"slot_minutes": 60, "opening_hours": {"sat": [["09:00", "14:00"]]}})),
            Some(&staff.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["slot_minutes"], 60);
    assert_eq!(patched["name"], "Pista Central");
    assert_eq!(patched["opening_hours"]["sat"], json!([["09:00", "14:00"]]));
    assert_eq!(
        patched["opening_hours"]["mon"],
        json!([]),
        "days left out are closed"
    );
    assert_eq!(
        app.get(&path, None).await.json::<Value>().await.unwrap(),
        patched
    );

    assert_eq!(
        app.request(Method::DELETE, &path, None, Some(&staff.token))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(app.get(&path, None).await, 404, "facility_not_found").await;
    let listed: Vec<Value> = app
        .get("/api/v1/facilities", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());
    assert_problem(
        app.request(Method::DELETE, &path, None, Some(&staff.token))
            .await,
        404,
        "facility_not_found",
    )
    .await;
}

#[tokio::test]
async fn facilities_are_listed_by_club_and_sport_in_pages() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let first = app.club(&admin).await;
    let second = app.club(&admin).await;
    for (club, name, sport) in [
        (&first, "A", "tennis"),
        (&first, "B", "padel"),
        (&first, "C", "padel"),
        (&second, "D", "padel"),
    ] {
        let body = json!({"club_id": club["id"], "name": name, "sport": sport});
        assert_eq!(
            app.post("/api/v1/facilities", body, Some(&admin.token))
                .await
                .status(),
            201
        );
    }

    let all: Vec<Value> = app
        .get("/api/v1/facilities", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    let padel: Vec<Value> = app
        .get(
            &format!(
                "/api/v1/facilities?club_id={}&sport=padel",
                first["id"].as_str().unwrap()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = padel.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["B", "C"]);
    let page: Vec<Value> = app
        .get("/api/v1/facilities?limit=2&offset=3", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
}

#[tokio::test]
async fn members_cannot_change_facilities() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let club = app.club(&admin).await;
    let facility: Value = app
        .post("/api/v1/facilities", court(&club["id"]), Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/facilities/{}", facility["id"].as_str().unwrap());

    assert_problem(
        app.post(
            "/api/v1/facilities",
            court(&club["id"]),
            Some(&member.token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.request(
            Method::PATCH,
            &path,
            Some(json!({"name": "Mine"})),
            Some(&member.token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.request(Method::DELETE, &path, None, Some(&member.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.request(Method::DELETE, &path, None, None).await,
        401,
        "unauthenticated",
    )
    .await;

    assert_eq!(
        app.get(&path, None).await.json::<Value>().await.unwrap(),
        facility
    );
}

#[tokio::test]
async fn facility_names_are_unique_within_a_club_until_retired() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let club = app.club(&admin).await;
    let first: Value = app
        .post("/api/v1/facilities", court(&club["id"]), Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();

    assert_problem(
        app.post("/api/v1/facilities", court(&club["id"]), Some(&admin.token))
            .await,
        409,
        "facility_name_taken",
    )
    .await;

    let path = format!("/api/v1/facilities/{}", first["id"].as_str().unwrap());
    app.request(Method::DELETE, &path, None, Some(&admin.token))
        .await;
    assert_eq!(
        app.post("/api/v1/facilities", court(&club["id"]), Some(&admin.token))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn every_invalid_facility_field_is_named() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let club = app.club(&admin).await;
    let body = json!({
        "club_id": club["id"],
        "name": "",
        "sport": "Tennis!",
        "specifications": ["covered"],
        "opening_hours": {"mon": [["23:00", "07:00"]], "someday": []},
        "slot_minutes": 7,
        "buffer_minutes": 500,
        "price_cents": -1,
        "currency": "euro",
    });

    let problem = assert_problem(
        app.post("/api/v1/facilities", body, Some(&admin.token))
            .await,
        422,
        "validation_failed",
    )
    .await;

    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "buffer_minutes",
            "currency",
            "name",
            "opening_hours.mon[0]",
            "opening_hours.someday",
            "price_cents",
            "slot_minutes",
            "specifications",
            "sport"
        ]
    );
    assert_eq!(app.count("facilities").await, 0);
}

#[tokio::test]
async fn a_facility_in_an_unknown_club_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;

    let problem = assert_problem(
        app.post(
            "/api/v1/facilities",
            court(&json!(uuid::Uuid::new_v4())),
            Some(&admin.token),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    assert_eq!(problem["errors"][0]["field"], "club_id");
}
