//! Bad input on every endpoint: always a 4xx problem with a stable code, never a 5xx, and nothing
//! changes in the database.

use clubpulse_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

/// One bad request and the problem it must get.
struct Case {
    method: Method,
    path: String,
    body: Body,
    token: Option<String>,
    status: u16,
    code: &'static str,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn case(
    method: Method,
    path: impl Into<String>,
    body: Body,
    token: Option<&TestUser>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path: path.into(),
        body,
        token: token.map(|u| u.token.clone()),
        status,
        code,
    }
}

fn raw_json(text: &str) -> Body {
    Body::Raw("application/json", text.as_bytes().to_vec())
}

async fn snapshot(app: &TestApp) -> Vec<Value> {
    let mut rows = Vec::new();
    for table in ["users", "clubs", "facilities"] {
        let json: Option<Value> = sqlx::query_scalar(&format!(
            "SELECT jsonb_agg(to_jsonb(t) ORDER BY t.id) FROM {table} t"
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        rows.push(json.unwrap_or(Value::Null));
    }
    rows
}

#[tokio::test]
async fn bad_input_anywhere_gets_a_problem_and_changes_nothing() {
    use Method as M;
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let staff = app.user(Role::Staff).await;
    let member = app.user(Role::Member).await;
    let club = app.club(&admin).await;
    let facility: Value = app
        .post(
            "/api/v1/facilities",
            json!({"club_id": club["id"], "name": "Pista 1", "sport": "padel"}),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let facility_path = format!("/api/v1/facilities/{}", facility["id"].as_str().unwrap());
    let (a, s, m) = (Some(&admin), Some(&staff), Some(&member));
    let huge = vec![b' '; 70 * 1024];
    let deep_specifications = format!(
        "{{\"club_id\": {}, \"name\": \"X\", \"sport\": \"padel\", \"specifications\": {}}}",
        club["id"],
        "[".repeat(10_000)
    );
    let register = "/api/v1/auth/register";

    let cases = vec![
        // Registration.
        case(
            M::POST,
            register,
            raw_json("{\"email\": "),
            None,
            400,
            "malformed_json",
        ),
        case(
            M::POST,
            register,
            raw_json("{\"email\": \"a@b.co\", \"password\": \"long enough\", \"name\": \"A\"} x"),
            None,
            400,
            "malformed_json",
        ),
        case(
            M::POST,
            register,
            Body::Raw("application/json", vec![0xff, 0xfe, b'{']),
            None,
            400,
            "malformed_json",
        ),
        case(
            M::POST,
            register,
            Body::Json(json!({"email": 5, "password": "long enough", "name": "A"})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Json(json!({"email": "a@b.co", "password": "long enough"})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Json(
                json!({"email": "a@b.co", "password": "long enough", "name": "A", "role": "admin"}),
            ),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Json(json!({"email": "not-an-email", "password": "long enough", "name": "A"})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Json(json!({"email": "a@b.co", "password": "short", "name": "A"})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Json(json!({"email": "a@b.co", "password": "long enough", "name": "a\u{0000}b"})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Json(
                json!({"email": "a@b.co", "password": "long enough", "name": "x".repeat(5000)}),
            ),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Json(json!([1, 2, 3])),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            register,
            Body::Raw("text/plain", b"email=a@b.co".to_vec()),
            None,
            415,
            "unsupported_media_type",
        ),
        case(
            M::POST,
            register,
            Body::None,
            None,
            415,
            "unsupported_media_type",
        ),
        case(
            M::POST,
            register,
            Body::Raw("application/json", huge),
            None,
            413,
            "payload_too_large",
        ),
        // Login and sessions.
        case(
            M::POST,
            "/api/v1/auth/login",
            raw_json("{"),
            None,
            400,
            "malformed_json",
        ),
        case(
            M::POST,
            "/api/v1/auth/login",
            Body::Json(json!({"email": "nope", "password": "x"})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/auth/login",
            Body::Json(json!({"email": "a@b.co", "password": ""})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/auth/login",
            Body::Json(json!({"email": "a@b.co", "password": "x".repeat(5000)})),
            None,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/auth/logout",
            Body::None,
            None,
            401,
            "unauthenticated",
        ),
        case(
            M::POST,
            "/api/v1/auth/logout-all",
            Body::None,
            None,
            401,
            "unauthenticated",
        ),
        case(
            M::GET,
            "/api/v1/auth/sessions",
            Body::None,
            None,
            401,
            "unauthenticated",
        ),
        case(
            M::DELETE,
            "/api/v1/auth/sessions/not-a-uuid",
            Body::None,
            m,
            400,
            "invalid_path",
        ),
        case(
            M::DELETE,
            format!("/api/v1/auth/sessions/{}", uuid::Uuid::new_v4()),
            Body::None,
            m,
            404,
            "session_not_found",
        ),
        case(
            M::DELETE,
            format!("/api/v1/auth/sessions/{}", uuid::Uuid::new_v4()),
            Body::None,
            None,
            401,
            "unauthenticated",
        ),
        case(
            M::GET,
            "/api/v1/me",
            Body::None,
            None,
            401,
            "unauthenticated",
        ),
        // Admin.
        case(
            M::POST,
            "/api/v1/admin/users/not-a-uuid/ban",
            Body::None,
            a,
            400,
            "invalid_path",
        ),
        case(
            M::POST,
            "/api/v1/admin/users/not-a-uuid/revoke-sessions",
            Body::None,
            a,
            400,
            "invalid_path",
        ),
        case(
            M::POST,
            format!("/api/v1/admin/users/{}/ban", member.id),
            Body::None,
            s,
            403,
            "forbidden",
        ),
        // Clubs.
        case(
            M::POST,
            "/api/v1/clubs",
            raw_json("{\"name\": \"x\","),
            a,
            400,
            "malformed_json",
        ),
        case(
            M::POST,
            "/api/v1/clubs",
            Body::Json(json!({"name": "X", "timezone": "Nowhere/Town"})),
            a,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/clubs",
            Body::Json(json!({"name": " ", "timezone": "Europe/Madrid"})),
            a,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/clubs",
            Body::Json(
                json!({"name": "X", "timezone": "Europe/Madrid", "id": uuid::Uuid::new_v4()}),
            ),
            a,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/clubs",
            Body::Json(json!({"name": "X", "timezone": "Europe/Madrid"})),
            m,
            403,
            "forbidden",
        ),
        case(
            M::GET,
            "/api/v1/clubs/not-a-uuid",
            Body::None,
            None,
            400,
            "invalid_path",
        ),
        case(
            M::GET,
            format!("/api/v1/clubs/{}", uuid::Uuid::new_v4()),
            Body::None,
            None,
            404,
            "club_not_found",
        ),
        // Facilities.
        case(
            M::GET,
            "/api/v1/facilities?limit=0",
            Body::None,
            None,
            422,
            "validation_failed",
        ),
        case(
            M::GET,
            "/api/v1/facilities?limit=abc",
            Body::None,
            None,
            400,
            "invalid_query",
        ),
        case(
            M::GET,
            "/api/v1/facilities?offset=-1",
            Body::None,
            None,
            422,
            "validation_failed",
        ),
        case(
            M::GET,
            "/api/v1/facilities?club_id=xyz",
            Body::None,
            None,
            400,
            "invalid_query",
        ),
        case(
            M::GET,
            "/api/v1/facilities?sport=%F0%9F%8E%BE",
            Body::None,
            None,
            422,
            "validation_failed",
        ),
        case(
            M::GET,
            "/api/v1/facilities?unknown=1",
            Body::None,
            None,
            400,
            "invalid_query",
        ),
        case(
            M::GET,
            "/api/v1/facilities/xyz",
            Body::None,
            None,
            400,
            "invalid_path",
        ),
        case(
            M::GET,
            format!("/api/v1/facilities/{}", uuid::Uuid::new_v4()),
            Body::None,
            None,
            404,
            "facility_not_found",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            Body::Json(json!({"name": "X", "sport": "padel"})),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            raw_json(&deep_specifications),
            s,
            400,
            "malformed_json",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            Body::Json(json!({"club_id": "nope", "name": "X", "sport": "padel"})),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            Body::Json(
                json!({"club_id": club["id"], "name": "X", "sport": "padel", "slot_minutes": "thirty"}),
            ),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            Body::Json(
                json!({"club_id": club["id"], "name": "X", "sport": "padel", "slot_minutes": 1e300}),
            ),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            Body::Json(
                json!({"club_id": club["id"], "name": "X", "sport": "padel", "opening_hours": {"mon": [["07:00"]]}}),
            ),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            Body::Json(
                json!({"club_id": club["id"], "name": "X", "sport": "padel", "opening_hours": {"mon": "07-23"}}),
            ),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::POST,
            "/api/v1/facilities",
            Body::Json(
                json!({"club_id": club["id"], "name": "X", "sport": "padel", "created_at": "2020-01-01T00:00:00Z"}),
            ),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::PATCH,
            facility_path.clone(),
            Body::Json(json!({})),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::PATCH,
            facility_path.clone(),
            Body::Json(json!({"club_id": uuid::Uuid::new_v4()})),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::PATCH,
            facility_path.clone(),
            Body::Json(json!({"price_cents": 1.5})),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::PATCH,
            facility_path.clone(),
            Body::Json(json!({"name": null, "slot_minutes": 0})),
            s,
            422,
            "validation_failed",
        ),
        case(
            M::PATCH,
            format!("/api/v1/facilities/{}", uuid::Uuid::new_v4()),
            Body::Json(json!({"name": "Y"})),
            s,
            404,
            "facility_not_found",
        ),
        case(
            M::PATCH,
            facility_path.clone(),
            Body::Json(json!({"name": "Y"})),
            m,
            403,
            "forbidden",
        ),
        case(
            M::DELETE,
            "/api/v1/facilities/xyz",
            Body::None,
            s,
            400,
            "invalid_path",
        ),
        // The rest.
        case(
            M::GET,
            "/api/v1/nothing-here",
            Body::None,
            None,
            404,
            "not_found",
        ),
        case(
            M::PUT,
            "/api/v1/clubs",
            Body::None,
            a,
            405,
            "method_not_allowed",
        ),
    ];
    let before = snapshot(&app).await;

    for c in cases {
        let mut req = app.client.request(c.method.clone(), app.url(&c.path));
        if let Some(token) = &c.token {
            req = req.bearer_auth(token);
        }
        req = match c.body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(content_type, bytes) => req.header("content-type", content_type).body(bytes),
        };
        let response = req.send().await.unwrap();
        assert!(
            response.status().as_u16() < 500,
            "{} {} gave {}",
            c.method,
            c.path,
            response.status()
        );
        let problem = assert_problem(response, c.status, c.code).await;
        if c.code == "validation_failed" {
            assert!(
                problem["errors"].as_array().is_some_and(|e| !e.is_empty()),
                "{} {}: {problem}",
                c.method,
                c.path
            );
        }
    }

    assert_eq!(
        snapshot(&app).await,
        before,
        "bad input changed the database"
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&member.token)).await.status(),
        200
    );
}
