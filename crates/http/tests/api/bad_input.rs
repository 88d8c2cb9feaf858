//! Bad input on every endpoint: always a 4xx problem with a stable code, never a 5xx, and nothing
//! changes in the database.

use clubpulse_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem, local, read_response};

/// One bad request and the problem it must get.
struct Case {
    method: Method,
    path: String,
    body: Body,
    token: Option<String>,
    /// Headers beyond the token's (a request signature, say).
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

impl Case {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
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
        headers: Vec::new(),
        status,
        code,
    }
}

fn raw_json(text: &str) -> Body {
    Body::Raw("application/json", text.as_bytes().to_vec())
}

/// Every row of every table of the public schema, found in the catalogue (so a new table is
/// covered the day it is made), in a stable order.
async fn snapshot(app: &TestApp) -> Vec<(String, Value)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(tablename) FROM pg_catalog.pg_tables
         WHERE schemaname = 'public' ORDER BY tablename",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        tables.len() >= 10,
        "the catalogue lists too few tables: {tables:?}"
    );
    let mut rows = Vec::new();
    for table in tables {
        let json: Value = sqlx::query_scalar(&format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]'::jsonb)
             FROM {table} t"
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        rows.push((table, json));
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
    // The audit flusher runs on its own clock: chain what is pending first, so that both snapshots
    // see the same log however long the cases take.
    app.flush_audit().await;
    let before = snapshot(&app).await;

    for c in cases {
        let mut req = app.client.request(c.method.clone(), app.url(&c.path));
        if let Some(token) = &c.token {
            req = req.bearer_auth(token);
        }
        for (name, value) in &c.headers {
            req = req.header(*name, value);
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

    app.flush_audit().await;
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

/// Any stable code: the case pins the status, and the code must be a snake_case word.
const ANY_CODE: &str = "*";
/// With [`ANY_CODE`]: any client error (an oversized password is simply a wrong one, say).
const ANY_4XX: u16 = 0;

/// Sends every case and checks its answer: the status it must get, problem+json, a stable code,
/// and for `validation_failed` the fields at fault.
async fn send_all(app: &TestApp, cases: Vec<Case>) {
    for c in cases {
        let mut req = app.client.request(c.method.clone(), app.url(&c.path));
        if let Some(token) = &c.token {
            req = req.bearer_auth(token);
        }
        for (name, value) in &c.headers {
            req = req.header(*name, value);
        }
        req = match c.body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(content_type, bytes) => req.header("content-type", content_type).body(bytes),
        };
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        assert!(status < 500, "{} {} gave {status}", c.method, c.path);
        if c.code != ANY_CODE {
            let problem = assert_problem(response, c.status, c.code).await;
            if c.code == "validation_failed" {
                assert!(
                    problem["errors"].as_array().is_some_and(|e| !e.is_empty()),
                    "{} {}: {problem}",
                    c.method,
                    c.path
                );
            }
            continue;
        }
        let (_, content_type, body) = read_response(response).await;
        let code = body["code"].as_str().unwrap_or_default();
        if c.status == ANY_4XX {
            assert!(
                (400..500).contains(&status),
                "{} {}: {body}",
                c.method,
                c.path
            );
        } else {
            assert_eq!(status, c.status, "{} {}: {body}", c.method, c.path);
        }
        assert_eq!(
            content_type, "application/problem+json",
            "{} {}",
            c.method, c.path
        );
        assert!(
            !code.is_empty() && code.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
            "{} {}: no stable code: {body}",
            c.method,
            c.path
        );
    }
}

/// The same body with a control character in each of its strings in turn, and with one as a key:
/// each is 422 `validation_failed`, refused before the handler runs.
fn poisoned(
    method: Method,
    path: &str,
    body: &Value,
    token: Option<&TestUser>,
) -> impl Iterator<Item = Case> {
    let mut cases = Vec::new();
    let Value::Object(members) = body else {
        panic!("a JSON object body");
    };
    for (key, value) in members {
        if value.is_string() {
            for bad in ["\u{0000}", "\u{001b}[2J", "\u{007f}", "\u{0085}"] {
                let mut copy = members.clone();
                copy.insert(key.clone(), json!(format!("x{bad}y")));
                cases.push(case(
                    method.clone(),
                    path,
                    Body::Json(Value::Object(copy)),
                    token,
                    422,
                    "validation_failed",
                ));
            }
        }
    }
    for bad_key in ["\u{0000}", "a\u{0001}b", "\n"] {
        let mut copy = members.clone();
        copy.insert(bad_key.to_owned(), json!(1));
        cases.push(case(
            method.clone(),
            path,
            Body::Json(Value::Object(copy)),
            token,
            422,
            "validation_failed",
        ));
    }
    // NUL deep inside a nested value, and a nesting deeper than the parser follows.
    let mut nested = members.clone();
    nested.insert(
        "nested".to_owned(),
        json!({"a": [{"b": ["ok", "\u{0000}"]}]}),
    );
    cases.push(case(
        method.clone(),
        path,
        Body::Json(Value::Object(nested)),
        token,
        422,
        "validation_failed",
    ));
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let mut text = serde_json::to_string(body).unwrap();
    text.pop();
    let comma = if members.is_empty() { "" } else { "," };
    text.push_str(&format!("{comma}\"deep\": {deep}}}"));
    cases.push(case(
        method,
        path,
        Body::Raw("application/json", text.into_bytes()),
        token,
        400,
        "malformed_json",
    ));
    cases.into_iter()
}

#[tokio::test]
async fn bad_input_on_every_route_gets_a_problem_and_changes_no_table() {
    use Method as M;
    const MADRID: &str = "Europe/Madrid";
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let staff = app.user(Role::Staff).await;
    let member = app.user(Role::Member).await;
    let other = app.user(Role::Member).await;
    let facility = app.facility(&admin, MADRID, json!({})).await;
    let fid = facility["id"].as_str().unwrap().to_owned();
    let (start, end) = (local(MADRID, 2, 10, 0), local(MADRID, 2, 11, 0));
    let hold: Value = app
        .hold(&member, &facility, &start, &end)
        .await
        .json()
        .await
        .unwrap();
    let booking = hold["id"].as_str().expect("a hold").to_owned();
    let class: Value = app
        .post(
            "/api/v1/classes",
            json!({"facility_id": fid, "title": "Spinning", "start": local(MADRID, 3, 18, 0), "end": local(MADRID, 3, 19, 0), "capacity": 5}),
            Some(&staff.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let class = class["id"].as_str().expect("a class").to_owned();
    // Another member waits for the member's hold: an entry that is not the member's.
    let waiting: Value = app
        .post(
            "/api/v1/waitlist",
            json!({"facility_id": fid, "start": start, "end": end}),
            Some(&other.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let waiting = waiting["id"].as_str().expect("a waitlist entry").to_owned();
    let key: Value = app
        .post(
            "/api/v1/admin/api-keys",
            json!({"name": "integration", "scopes": ["read"]}),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let key = key["id"].as_str().expect("an API key").to_owned();
    // A key that requires signed requests, used as a Bearer token like a member's session.
    let signed: Value = app
        .post(
            "/api/v1/admin/api-keys",
            json!({"name": "signed", "scopes": ["read", "write"], "require_signature": true}),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let signing = signed["signing_secret"]
        .as_str()
        .expect("a signing secret")
        .to_owned();
    let signer = TestUser {
        token: signed["secret"].as_str().unwrap().to_owned(),
        ..admin.clone()
    };
    let now = chrono::Utc::now().timestamp();
    let sign = |t: i64, method: &Method, target: &str, body: &[u8]| {
        crate::signed_requests::signature(&signing, t, method, target, body)
    };
    // A signature already used once: its replay is refused.
    let used = sign(now, &Method::GET, "/api/v1/me", b"");
    let first = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&signer.token)
        .header("clubpulse-signature", &used)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let facility_body = serde_json::to_vec(
        &json!({"club_id": facility["club_id"], "name": "Pista firmada", "sport": "padel"}),
    )
    .unwrap();
    let (a, s, m, o) = (Some(&admin), Some(&staff), Some(&member), Some(&other));
    let g = Some(&signer);
    let huge = vec![b' '; 70 * 1024];
    let nobody = uuid::Uuid::new_v4();
    let later = (local(MADRID, 4, 10, 0), local(MADRID, 4, 11, 0));
    // Time extremes: the first and last years RFC 3339 can write, at the widest offsets.
    let year_1 = ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00");
    let year_9999 = ("9999-12-31T22:00:00-14:00", "9999-12-31T23:00:00-14:00");
    // The same years in UTC, the widest range the API can name.
    let utc_extremes = ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z");
    let long_text = "x".repeat(60_000);

    let mut cases = Vec::new();
    // Every JSON body, poisoned with control characters, NUL and deep nesting.
    let bodies = [
        (
            M::POST,
            "/api/v1/auth/register".to_owned(),
            json!({"email": "new@clubpulse.test", "password": "long enough", "name": "New"}),
            None,
        ),
        (
            M::POST,
            "/api/v1/auth/login".to_owned(),
            json!({"email": member.email, "password": member.password}),
            None,
        ),
        (
            M::POST,
            "/api/v1/auth/password".to_owned(),
            json!({"current_password": member.password, "new_password": "another long one"}),
            m,
        ),
        (
            M::POST,
            "/api/v1/auth/password-reset".to_owned(),
            json!({"email": member.email}),
            None,
        ),
        (
            M::POST,
            "/api/v1/auth/password-reset/confirm".to_owned(),
            json!({"token": "abc", "password": "long enough"}),
            None,
        ),
        (
            M::POST,
            "/api/v1/clubs".to_owned(),
            json!({"name": "Nuevo", "timezone": MADRID}),
            a,
        ),
        (
            M::POST,
            "/api/v1/facilities".to_owned(),
            json!({"club_id": facility["club_id"], "name": "Pista 9", "sport": "padel", "description": "d", "currency": "EUR"}),
            s,
        ),
        (
            M::PATCH,
            format!("/api/v1/facilities/{fid}"),
            json!({"name": "Pista 10", "description": "d"}),
            s,
        ),
        (
            M::POST,
            "/api/v1/bookings".to_owned(),
            json!({"facility_id": fid, "start": later.0, "end": later.1}),
            m,
        ),
        (
            M::POST,
            "/api/v1/bookings/recurring".to_owned(),
            json!({"facility_id": fid, "start": later.0, "end": later.1, "weeks": 2}),
            m,
        ),
        (
            M::POST,
            "/api/v1/classes".to_owned(),
            json!({"facility_id": fid, "title": "Yoga", "start": later.0, "end": later.1, "capacity": 5}),
            s,
        ),
        (
            M::POST,
            format!("/api/v1/classes/{class}/enrollments"),
            json!({"spots": 1}),
            m,
        ),
        (
            M::POST,
            "/api/v1/waitlist".to_owned(),
            json!({"facility_id": fid, "start": start, "end": end}),
            m,
        ),
        (
            M::POST,
            "/api/v1/admin/api-keys".to_owned(),
            json!({"name": "other", "scopes": ["read"]}),
            a,
        ),
        (
            M::POST,
            format!("/api/v1/admin/api-keys/{key}/rotate"),
            json!({"grace_seconds": 10}),
            a,
        ),
        (
            M::POST,
            "/api/v1/admin/webhooks".to_owned(),
            json!({"url": "https://8.8.8.8/hooks", "events": ["booking.held"]}),
            a,
        ),
        (
            M::POST,
            format!("/api/v1/admin/api-keys/{key}/signing-secret"),
            json!({"grace_seconds": 10}),
            a,
        ),
    ];
    for (method, path, body, token) in &bodies {
        cases.extend(poisoned(method.clone(), path, body, *token));
        // Oversized text in every string field.
        if let Value::Object(members) = body {
            for (field, value) in members {
                if value.is_string() && field != "token" {
                    let mut copy = members.clone();
                    copy.insert(field.clone(), json!(long_text));
                    cases.push(case(
                        method.clone(),
                        path.clone(),
                        Body::Json(Value::Object(copy)),
                        *token,
                        ANY_4XX,
                        ANY_CODE,
                    ));
                }
            }
        }
    }

    let hold_at =
        |range: (&str, &str)| json!({"facility_id": fid, "start": range.0, "end": range.1});
    cases.extend([
        // Auth and sessions.
        case(M::POST, "/api/v1/auth/password", Body::Json(json!({})), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/auth/password-reset", Body::Json(json!({"email": 1})), None, 422, "validation_failed"),
        case(M::POST, "/api/v1/auth/password-reset/confirm", Body::Json(json!({"token": "t".repeat(300), "password": "long enough"})), None, 400, "reset_token_invalid"),
        case(M::DELETE, "/api/v1/auth/sessions/%00", Body::None, m, 400, "invalid_path"),
        // Admin: users, API keys, jobs, audit.
        case(M::POST, format!("/api/v1/admin/users/{nobody}/ban"), Body::None, a, 404, "user_not_found"),
        case(M::POST, format!("/api/v1/admin/users/{nobody}/revoke-sessions"), Body::None, a, 404, "user_not_found"),
        case(M::POST, "/api/v1/admin/api-keys", Body::Json(json!({"name": "k", "scopes": "read"})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/admin/api-keys", Body::Json(json!({"name": "k", "scopes": ["root"]})), a, 422, ANY_CODE),
        case(M::POST, "/api/v1/admin/api-keys", Body::Json(json!({"name": "k", "scopes": ["read"]})), m, 403, "forbidden"),
        case(M::GET, "/api/v1/admin/api-keys", Body::None, s, 403, "forbidden"),
        case(M::DELETE, "/api/v1/admin/api-keys/xyz", Body::None, a, 400, "invalid_path"),
        case(M::DELETE, format!("/api/v1/admin/api-keys/{nobody}"), Body::None, a, 404, "api_key_not_found"),
        case(M::POST, format!("/api/v1/admin/api-keys/{key}/rotate"), Body::Json(json!({"grace_seconds": 2_592_001})), a, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/admin/api-keys/{key}/rotate"), Body::Json(json!({"grace_seconds": -1})), a, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/admin/api-keys/{key}/rotate"), raw_json("{\"grace_seconds\": 99999999999999999999999}"), a, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/admin/api-keys/{key}/rotate"), Body::Json(json!({"grace_seconds": 1e300})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/admin/api-keys", Body::Json(json!({"name": "k", "scopes": ["read"], "require_signature": "yes"})), a, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/admin/api-keys/{key}/signing-secret"), Body::Json(json!({})), a, 409, "signature_not_required"),
        case(M::POST, format!("/api/v1/admin/api-keys/{}/signing-secret", signed["id"].as_str().unwrap()), Body::Json(json!({"grace_seconds": -1})), a, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/admin/api-keys/{}/signing-secret", signed["id"].as_str().unwrap()), Body::Json(json!({"grace_seconds": 2_592_001})), a, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/admin/api-keys/{nobody}/signing-secret"), Body::Json(json!({})), a, 404, "api_key_not_found"),
        case(M::POST, format!("/api/v1/admin/api-keys/{key}/signing-secret"), Body::Json(json!({})), m, 403, "forbidden"),
        case(M::POST, "/api/v1/admin/api-keys/xyz/signing-secret", Body::Json(json!({})), a, 400, "invalid_path"),
        // Signed requests: every refusal is a 401 with its code, before any handler runs.
        case(M::GET, "/api/v1/me", Body::None, g, 401, "signature_required"),
        case(M::GET, "/api/v1/me", Body::None, g, 401, "signature_malformed").header("clubpulse-signature", "t=now,v1=beef"),
        case(M::GET, "/api/v1/me", Body::None, g, 401, "signature_malformed").header("clubpulse-signature", "t=1,v1=é"),
        case(M::GET, "/api/v1/me", Body::None, g, 401, "signature_malformed").header("clubpulse-signature", format!("t=99999999999999999999,v1={}", "0".repeat(64))),
        case(M::GET, "/api/v1/me", Body::None, g, 401, "signature_expired").header("clubpulse-signature", sign(now - 1000, &M::GET, "/api/v1/me", b"")),
        case(M::GET, "/api/v1/me", Body::None, g, 401, "signature_expired").header("clubpulse-signature", sign(now + 1000, &M::GET, "/api/v1/me", b"")),
        case(M::GET, "/api/v1/me", Body::None, g, 401, "signature_replayed").header("clubpulse-signature", used.clone()),
        case(M::GET, "/api/v1/me?x=1", Body::None, g, 401, "signature_invalid").header("clubpulse-signature", sign(now, &M::GET, "/api/v1/me", b"")),
        case(M::POST, "/api/v1/facilities", Body::Raw("application/json", facility_body.clone()), g, 401, "signature_invalid").header("clubpulse-signature", sign(now, &M::POST, "/api/v1/facilities", b"{}")),
        case(M::POST, "/api/v1/facilities", Body::Raw("application/json", facility_body.clone()), g, 401, "signature_required"),
        case(M::POST, "/api/v1/facilities", Body::Raw("application/json", huge.clone()), g, 413, "payload_too_large").header("clubpulse-signature", sign(now, &M::POST, "/api/v1/facilities", &huge)),
        // The calendar feed: no token, or one no feed has; nothing to revoke.
        case(M::GET, "/api/v1/me/calendar.ics", Body::None, None, 401, "calendar_token_required"),
        case(M::GET, "/api/v1/me/calendar.ics?token=", Body::None, None, 401, "calendar_token_required"),
        case(M::GET, "/api/v1/me/calendar.ics?token=%00", Body::None, None, 404, "calendar_feed_not_found"),
        case(M::GET, format!("/api/v1/me/calendar.ics?token={}", "t".repeat(10_000)), Body::None, None, 404, "calendar_feed_not_found"),
        case(M::GET, "/api/v1/me/calendar.ics?token=a&token=b", Body::None, None, ANY_4XX, ANY_CODE),
        case(M::DELETE, "/api/v1/me/calendar-feed", Body::None, m, 404, "calendar_feed_not_found"),
        case(M::DELETE, "/api/v1/me/calendar-feed", Body::None, None, 401, "unauthenticated"),
        case(M::POST, "/api/v1/me/calendar-feed", Body::None, None, 401, "unauthenticated"),
        case(M::GET, "/api/v1/admin/jobs", Body::None, s, 403, "forbidden"),
        case(M::GET, "/api/v1/admin/jobs/dead?limit=201", Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/jobs/dead?limit=0", Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/jobs/dead?offset=100001", Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/jobs/dead?limit=-1", Body::None, a, 400, "invalid_query"),
        case(M::GET, "/api/v1/admin/jobs/dead?limit=99999999999999999999999", Body::None, a, 400, "invalid_query"),
        case(M::POST, "/api/v1/admin/jobs/dead/xyz/retry", Body::None, a, 400, "invalid_path"),
        case(M::POST, format!("/api/v1/admin/jobs/dead/{nobody}/retry"), Body::None, a, 404, ANY_CODE),
        case(M::POST, "/api/v1/admin/jobs/dead/retry", Body::None, m, 403, "forbidden"),
        case(M::DELETE, "/api/v1/admin/jobs/dead", Body::None, s, 403, "forbidden"),
        case(M::GET, "/api/v1/admin/audit?limit=201", Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/audit?action=%00", Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/audit?action=auth%01login", Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/audit?action=x&action=y", Body::None, a, 400, "invalid_query"),
        case(M::GET, "/api/v1/admin/audit?from=2026-13-01T00:00:00Z", Body::None, a, 400, "invalid_query"),
        case(M::GET, "/api/v1/admin/audit?from=9999-12-31T23:00:00-14:00&to=0001-01-01T00:00:00%2B14:00", Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/audit?before=99999999999999999999", Body::None, a, 400, "invalid_query"),
        case(M::GET, "/api/v1/admin/audit?actor=%00", Body::None, a, 400, "invalid_query"),
        case(M::GET, "/api/v1/admin/audit", Body::None, s, 403, "forbidden"),
        // Clubs.
        case(M::POST, "/api/v1/clubs", Body::Json(json!({"name": "X", "timezone": MADRID, "free_cancellation_minutes": 43_201})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/clubs", Body::Json(json!({"name": "X", "timezone": MADRID, "late_cancellation_fee_percent": 101})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/clubs", Body::Json(json!({"name": "X", "timezone": MADRID, "late_cancellation_fee_percent": -1})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/clubs", Body::Json(json!({"name": "X", "timezone": MADRID, "free_cancellation_minutes": 1e300})), a, 422, "validation_failed"),
        // Facilities: what the outside fuzzer found (a NUL in `specifications`), and its kin.
        case(M::POST, "/api/v1/facilities", Body::Json(json!({"club_id": facility["club_id"], "name": "Pista 9", "sport": "padel", "specifications": {"surface": "clay\u{0000}"}})), s, 422, "validation_failed"),
        case(M::POST, "/api/v1/facilities", Body::Json(json!({"club_id": facility["club_id"], "name": "Pista 9", "sport": "padel", "specifications": {"amenities": ["\u{0000}"]}})), s, 422, "validation_failed"),
        case(M::POST, "/api/v1/facilities", Body::Json(json!({"club_id": facility["club_id"], "name": "Pista 9", "sport": "padel", "specifications": {"a\u{0000}": true}})), s, 422, "validation_failed"),
        case(M::POST, "/api/v1/facilities", Body::Json(json!({"club_id": facility["club_id"], "name": "Pista 9", "sport": "padel", "slot_minutes": 2_147_483_648_i64})), s, 422, "validation_failed"),
        case(M::POST, "/api/v1/facilities", Body::Json(json!({"club_id": nobody, "name": "Pista 9", "sport": "padel"})), s, 422, "validation_failed"),
        case(M::PATCH, format!("/api/v1/facilities/{fid}"), Body::Json(json!({"specifications": {"k": "\u{0000}"}})), s, 422, "validation_failed"),
        case(M::PATCH, format!("/api/v1/facilities/{fid}"), Body::Json(json!({"opening_hours": {"mon": [["25:00", "26:00"]]}})), s, 422, "validation_failed"),
        case(M::PATCH, format!("/api/v1/facilities/{fid}"), Body::Json(json!({"buffer_minutes": -1})), s, 422, "validation_failed"),
        case(M::GET, "/api/v1/facilities?limit=201", Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/facilities?offset=100001", Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/facilities?limit=99999999999999999999", Body::None, None, 400, "invalid_query"),
        case(M::GET, "/api/v1/facilities?sport=%00", Body::None, None, 422, "validation_failed"),
        case(M::DELETE, format!("/api/v1/facilities/{fid}"), Body::None, m, 403, "forbidden"),
        // Bookings: time extremes, offsets at ±14:00, ranges, ids.
        case(M::POST, "/api/v1/bookings", Body::Json(hold_at(year_1)), m, 422, ANY_CODE),
        case(M::POST, "/api/v1/bookings", Body::Json(hold_at(year_9999)), m, 422, ANY_CODE),
        case(M::POST, "/api/v1/bookings", Body::Json(hold_at((year_1.0, year_9999.1))), m, 422, ANY_CODE),
        case(M::POST, "/api/v1/bookings", Body::Json(hold_at((later.1.as_str(), later.0.as_str()))), m, 422, "invalid_range"),
        case(M::POST, "/api/v1/bookings", Body::Json(hold_at(("2026-05-01T10:00:00", "2026-05-01T11:00:00"))), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/bookings", Body::Json(hold_at(("2026-05-01T10:00:00+24:00", "2026-05-01T11:00:00+24:00"))), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/bookings", Body::Json(hold_at(("10000-01-01T00:00:00Z", "10000-01-01T01:00:00Z"))), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/bookings", Body::Json(json!({"facility_id": nobody, "start": later.0, "end": later.1})), m, 404, "facility_not_found"),
        case(M::POST, "/api/v1/bookings", Body::Json(json!({"facility_id": fid, "start": 1, "end": later.1})), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/bookings/recurring", Body::Json(json!({"facility_id": fid, "start": later.0, "end": later.1, "weeks": 27})), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/bookings/recurring", Body::Json(json!({"facility_id": fid, "start": later.0, "end": later.1, "weeks": 0})), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/bookings/recurring", Body::Json(json!({"facility_id": fid, "start": later.0, "end": later.1, "weeks": i64::MAX})), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/bookings/recurring", Body::Json(json!({"facility_id": fid, "start": year_9999.0, "end": year_9999.1, "weeks": 2})), m, 422, ANY_CODE),
        case(M::GET, "/api/v1/bookings?limit=201", Body::None, m, 422, "validation_failed"),
        case(M::GET, "/api/v1/bookings?limit=0", Body::None, m, 422, "validation_failed"),
        case(M::GET, "/api/v1/bookings/xyz", Body::None, m, 400, "invalid_path"),
        case(M::GET, format!("/api/v1/bookings/{booking}"), Body::None, o, 404, "booking_not_found"),
        case(M::POST, format!("/api/v1/bookings/{booking}/confirm"), Body::None, o, 404, "booking_not_found"),
        case(M::POST, format!("/api/v1/bookings/{booking}/cancel"), Body::None, o, 404, "booking_not_found"),
        case(M::POST, "/api/v1/bookings/%00/cancel", Body::None, m, 400, "invalid_path"),
        case(M::GET, format!("/api/v1/facilities/{fid}/availability?from={}&to={}", year_1.0.replace('+', "%2B"), year_9999.1), Body::None, None, 422, "validation_failed"),
        case(M::GET, format!("/api/v1/facilities/{fid}/availability?from={}&to={}", utc_extremes.0, utc_extremes.1), Body::None, None, 422, "range_too_long"),
        case(M::GET, format!("/api/v1/facilities/{fid}/availability?from={}&to={}", utc_extremes.1, utc_extremes.0), Body::None, None, 422, "invalid_range"),
        case(M::GET, format!("/api/v1/facilities/{fid}/availability?from=%00"), Body::None, None, 422, "validation_failed"),
        case(M::GET, format!("/api/v1/facilities/{nobody}/availability"), Body::None, None, 404, "facility_not_found"),
        case(M::GET, "/api/v1/availability?facility_ids=xyz", Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/availability?facility_ids=%00", Body::None, None, 422, "validation_failed"),
        case(M::GET, format!("/api/v1/availability?facility_ids={fid}&from={}&to={}", year_1.0.replace('+', "%2B"), year_9999.1), Body::None, None, 422, "validation_failed"),
        case(M::GET, format!("/api/v1/availability?facility_ids={fid}&from={}&to={}", utc_extremes.0, utc_extremes.1), Body::None, None, 422, "range_too_long"),
        case(M::GET, format!("/api/v1/facilities/{nobody}/popular-times"), Body::None, None, 404, "facility_not_found"),
        // Classes and enrolments.
        case(M::POST, "/api/v1/classes", Body::Json(json!({"facility_id": fid, "title": "Yoga", "start": later.0, "end": later.1, "capacity": 10_001})), s, 422, "validation_failed"),
        case(M::POST, "/api/v1/classes", Body::Json(json!({"facility_id": fid, "title": "Yoga", "start": later.0, "end": later.1, "capacity": 0})), s, 422, "validation_failed"),
        case(M::POST, "/api/v1/classes", Body::Json(json!({"facility_id": fid, "title": "Yoga", "start": year_1.0, "end": year_1.1, "capacity": 5})), s, 422, ANY_CODE),
        case(M::POST, "/api/v1/classes", Body::Json(json!({"facility_id": fid, "title": "Yoga", "start": year_9999.0, "end": year_9999.1, "capacity": 5})), s, 422, ANY_CODE),
        case(M::POST, "/api/v1/classes", Body::Json(json!({"facility_id": fid, "title": "Yoga", "start": later.0, "end": later.1, "capacity": 5})), m, 403, "forbidden"),
        case(M::GET, "/api/v1/classes?facility_id=xyz", Body::None, None, 400, "invalid_query"),
        case(M::GET, "/api/v1/classes/xyz", Body::None, None, 400, "invalid_path"),
        case(M::GET, format!("/api/v1/classes/{nobody}"), Body::None, None, 404, "class_not_found"),
        case(M::POST, format!("/api/v1/classes/{class}/enrollments"), Body::Json(json!({"spots": 101})), m, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/classes/{class}/enrollments"), Body::Json(json!({"spots": -1})), m, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/classes/{class}/enrollments"), Body::Json(json!({"spots": "1"})), m, 422, "validation_failed"),
        case(M::POST, format!("/api/v1/classes/{nobody}/enrollments"), Body::Json(json!({"spots": 1})), m, 404, "class_not_found"),
        case(M::POST, "/api/v1/enrollments/xyz/cancel", Body::None, m, 400, "invalid_path"),
        case(M::POST, format!("/api/v1/enrollments/{nobody}/cancel"), Body::None, m, 404, ANY_CODE),
        // The waitlist.
        case(M::POST, "/api/v1/waitlist", Body::Json(json!({"facility_id": fid, "start": later.0, "end": later.1})), m, 409, "slot_free"),
        case(M::POST, "/api/v1/waitlist", Body::Json(json!({"facility_id": fid, "start": start, "end": end})), o, 409, "already_waiting"),
        case(M::POST, "/api/v1/waitlist", Body::Json(json!({"facility_id": fid, "start": start, "end": end})), None, 401, "unauthenticated"),
        case(M::POST, "/api/v1/waitlist", Body::Json(hold_at(year_1)), m, 422, ANY_CODE),
        case(M::POST, "/api/v1/waitlist", Body::Json(hold_at(year_9999)), m, 422, ANY_CODE),
        case(M::POST, "/api/v1/waitlist", Body::Json(hold_at((year_1.0, year_9999.1))), m, 422, ANY_CODE),
        case(M::POST, "/api/v1/waitlist", Body::Json(hold_at((later.1.as_str(), later.0.as_str()))), m, 422, "invalid_range"),
        case(M::POST, "/api/v1/waitlist", Body::Json(hold_at(("2026-05-01T10:00:00", "2026-05-01T11:00:00"))), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/waitlist", Body::Json(hold_at((local(MADRID, 2, 10, 10).as_str(), end.as_str()))), m, 422, ANY_CODE),
        case(M::POST, "/api/v1/waitlist", Body::Json(json!({"facility_id": nobody, "start": later.0, "end": later.1})), m, 404, "facility_not_found"),
        case(M::POST, "/api/v1/waitlist", Body::Json(json!({"facility_id": "xyz", "start": later.0, "end": later.1})), m, 422, "validation_failed"),
        case(M::POST, "/api/v1/waitlist", Body::Json(json!({"facility_id": fid, "start": later.0})), m, 422, "validation_failed"),
        case(M::GET, "/api/v1/waitlist?limit=0", Body::None, m, 422, "validation_failed"),
        // Outbound webhooks.
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "gopher://8.8.8.8/", "events": ["booking.held"]})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "https://u:p@8.8.8.8/", "events": ["booking.held"]})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "https://8.8.8.8/", "events": ["booking.nope"]})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "https://8.8.8.8/", "events": []})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "https://8.8.8.8/", "events": [1]})), a, 422, "validation_failed"),
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "http://127.0.0.1:9/", "events": ["booking.held"]})), a, 422, "webhook_target_forbidden"),
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "http://[fe80::1]/", "events": ["booking.held"]})), a, 422, "webhook_target_forbidden"),
        case(M::POST, "/api/v1/admin/webhooks", Body::Json(json!({"url": "https://8.8.8.8/", "events": ["booking.held"]})), m, 403, "forbidden"),
        case(M::GET, "/api/v1/admin/webhooks", Body::None, s, 403, "forbidden"),
        case(M::DELETE, "/api/v1/admin/webhooks/xyz", Body::None, a, 400, "invalid_path"),
        case(M::DELETE, format!("/api/v1/admin/webhooks/{nobody}"), Body::None, a, 404, "webhook_not_found"),
        case(M::GET, format!("/api/v1/admin/webhooks/{nobody}/deliveries"), Body::None, a, 404, "webhook_not_found"),
        case(M::GET, format!("/api/v1/admin/webhooks/{nobody}/deliveries?limit=201"), Body::None, a, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/webhooks/%00/deliveries", Body::None, a, 400, "invalid_path"),
        case(M::GET, "/api/v1/waitlist?limit=201", Body::None, m, 422, "validation_failed"),
        case(M::GET, "/api/v1/waitlist?status=waiting", Body::None, m, 400, "invalid_query"),
        case(M::GET, "/api/v1/waitlist", Body::None, None, 401, "unauthenticated"),
        case(M::DELETE, "/api/v1/waitlist/xyz", Body::None, m, 400, "invalid_path"),
        case(M::DELETE, format!("/api/v1/waitlist/{nobody}"), Body::None, m, 404, "waitlist_entry_not_found"),
        case(M::DELETE, format!("/api/v1/waitlist/{waiting}"), Body::None, m, 404, "waitlist_entry_not_found"),
        case(M::DELETE, format!("/api/v1/waitlist/{waiting}"), Body::None, None, 401, "unauthenticated"),
        // Notifications.
        case(M::GET, "/api/v1/me/notifications", Body::None, None, 401, "unauthenticated"),
        case(M::GET, "/api/v1/me/notifications?limit=0", Body::None, m, 422, "validation_failed"),
        case(M::GET, "/api/v1/me/notifications?limit=201", Body::None, m, 422, "validation_failed"),
        case(M::GET, "/api/v1/me/notifications?unread=maybe", Body::None, m, 400, "invalid_query"),
        case(M::GET, "/api/v1/me/notifications?unread=%00", Body::None, m, 400, "invalid_query"),
        case(M::POST, "/api/v1/me/notifications/xyz/read", Body::None, m, 400, "invalid_path"),
        case(M::POST, format!("/api/v1/me/notifications/{nobody}/read"), Body::None, m, 404, "notification_not_found"),
        case(M::POST, format!("/api/v1/me/notifications/{nobody}/read"), Body::None, None, 401, "unauthenticated"),
        // Payments: another member's booking is as unknown as a missing one; staff only mark
        // bookings paid; a webhook without a valid signature changes nothing.
        case(M::POST, "/api/v1/bookings/xyz/checkout", Body::None, m, 400, "invalid_path"),
        case(M::POST, format!("/api/v1/bookings/{nobody}/checkout"), Body::None, m, 404, "booking_not_found"),
        case(M::POST, format!("/api/v1/bookings/{booking}/checkout"), Body::None, o, 404, "booking_not_found"),
        case(M::POST, format!("/api/v1/bookings/{booking}/checkout"), Body::None, None, 401, "unauthenticated"),
        case(M::GET, "/api/v1/bookings/%00/payments", Body::None, m, 400, "invalid_path"),
        case(M::GET, format!("/api/v1/bookings/{nobody}/payments"), Body::None, m, 404, "booking_not_found"),
        case(M::GET, format!("/api/v1/bookings/{booking}/payments"), Body::None, o, 404, "booking_not_found"),
        case(M::GET, format!("/api/v1/bookings/{booking}/payments"), Body::None, None, 401, "unauthenticated"),
        case(M::POST, "/api/v1/bookings/xyz/mark-paid", Body::None, s, 400, "invalid_path"),
        case(M::POST, format!("/api/v1/bookings/{nobody}/mark-paid"), Body::None, s, 404, "booking_not_found"),
        case(M::POST, format!("/api/v1/bookings/{booking}/mark-paid"), Body::None, m, 403, "forbidden"),
        case(M::POST, format!("/api/v1/bookings/{booking}/mark-paid"), Body::None, None, 401, "unauthenticated"),
        case(M::POST, "/api/v1/payments/stripe/webhook", Body::Json(json!({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "status": "succeeded"}}})), None, 400, "invalid_signature"),
        case(M::POST, "/api/v1/payments/stripe/webhook", Body::Raw("application/json", b"\x00\xff not json".to_vec()), None, 400, "invalid_signature"),
        case(M::POST, "/api/v1/payments/stripe/webhook", Body::None, None, 400, "invalid_signature"),
        // The dashboard's data: staff only, strict local dates, at most 366 days.
        case(M::GET, "/api/v1/admin/stats", Body::None, None, 401, "unauthenticated"),
        case(M::GET, "/api/v1/admin/stats", Body::None, m, 403, "forbidden"),
        case(M::GET, "/api/v1/admin/stats?from=2026-11-01&to=2026-11-01", Body::None, s, 422, "invalid_range"),
        case(M::GET, "/api/v1/admin/stats?from=2026-12-01&to=2026-11-01", Body::None, s, 422, "invalid_range"),
        case(M::GET, "/api/v1/admin/stats?from=2025-01-01&to=2026-01-03", Body::None, s, 422, "range_too_long"),
        case(M::GET, "/api/v1/admin/stats?from=2026-11-1", Body::None, s, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/stats?to=2026-11-01T00:00:00%2B01:00", Body::None, s, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/stats?from=0000-01-01", Body::None, s, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/stats?from=9999-12-31", Body::None, s, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/stats?from=%00", Body::None, s, 422, "validation_failed"),
        case(M::GET, "/api/v1/admin/stats?club_id=xyz", Body::None, s, 400, "invalid_query"),
        case(M::GET, "/api/v1/admin/stats?from[]=1", Body::None, s, 400, "invalid_query"),
        case(M::GET, format!("/api/v1/admin/stats?club_id={nobody}"), Body::None, s, 404, "club_not_found"),
        // Search, favourites and recommendations.
        case(M::GET, "/api/v1/search/facilities?q=tenis&limit=51", Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/search/facilities?q=tenis&limit=0", Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/search/facilities?q=%00%01", Body::None, None, 422, "validation_failed"),
        case(M::GET, format!("/api/v1/search/facilities?q={}", "a".repeat(257)), Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/search/facilities?q=tenis&mode=psychic", Body::None, None, 400, "invalid_query"),
        case(M::GET, "/api/v1/search/facilities?q=tenis&free_from=2026-05-01T10:00:00Z", Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/search/facilities", Body::None, None, 400, "invalid_query"),
        case(M::GET, format!("/api/v1/facilities/{fid}/similar?limit=51"), Body::None, None, 422, "validation_failed"),
        case(M::GET, "/api/v1/me/favorites", Body::None, None, 401, "unauthenticated"),
        case(M::PUT, "/api/v1/me/favorites/xyz", Body::None, m, 400, "invalid_path"),
        case(M::PUT, format!("/api/v1/me/favorites/{nobody}"), Body::None, m, 404, "facility_not_found"),
        case(M::DELETE, "/api/v1/me/favorites/%00", Body::None, m, 400, "invalid_path"),
        case(M::GET, "/api/v1/me/recommendations?limit=0", Body::None, m, 422, "validation_failed"),
        case(M::GET, "/api/v1/me/recommendations?limit=51", Body::None, m, 422, "validation_failed"),
    ]);
    app.flush_audit().await;
    let before = snapshot(&app).await;

    send_all(&app, cases).await;

    app.flush_audit().await;
    let after = snapshot(&app).await;
    for ((table, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(is, was, "bad input changed the table {table}");
    }
    assert_eq!(after.len(), before.len());
    assert_eq!(
        app.get("/api/v1/me", Some(&member.token)).await.status(),
        200
    );
}
