//! Health, readiness, request ids, the OpenAPI document and its docs page.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_answers_without_touching_dependencies() {
    let app = TestApp::spawn().await;
    // The server's pool is this one: closed, every database call fails at once.
    app.db.close().await;
    let ready = app.get("/ready", None).await;
    assert_eq!(
        ready.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is really gone"
    );

    let health = app.get("/health", None).await;

    assert_eq!(health.status(), StatusCode::OK);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readiness_reports_each_dependency_and_its_backend() {
    let redis = TestApp::spawn().await;
    let memory = TestApp::spawn_in_process().await;

    let on_redis: Value = redis.get("/ready", None).await.json().await.unwrap();
    let in_process: Value = memory.get("/ready", None).await.json().await.unwrap();

    assert_eq!(on_redis["status"], "ready");
    assert_eq!(on_redis["database"]["status"], "up");
    assert_eq!(on_redis["database"]["backend"], "postgres");
    assert_eq!(on_redis["state"]["backend"], "redis");
    assert_eq!(on_redis["state"]["status"], "up");
    assert_eq!(in_process["state"]["backend"], "in-process");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.db.close().await;

    let response = app.get("/ready", None).await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"]["status"], "down");
}

#[tokio::test]
async fn a_request_id_is_echoed_when_sane_and_made_up_otherwise() {
    let app = TestApp::spawn().await;

    let echoed = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "req-123.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "req-123.abc");

    let replaced = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

    let problem = app.get("/nowhere", None).await;
    assert!(
        problem.headers().contains_key("x-request-id"),
        "errors carry the id too"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;

    for path in ["/health", "/nowhere", "/api/v1/me"] {
        let response = app.get(path, None).await;
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert_eq!(
            response.headers()["referrer-policy"],
            "no-referrer",
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_of_the_contract() {
    let app = TestApp::spawn().await;

    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    let expected = [
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/logout-all"),
        ("get", "/api/v1/auth/sessions"),
        ("delete", "/api/v1/auth/sessions/{id}"),
        ("get", "/api/v1/me"),
        ("post", "/api/v1/auth/password"),
        ("post", "/api/v1/auth/password-reset"),
        ("post", "/api/v1/auth/password-reset/confirm"),
        ("get", "/api/v1/admin/audit"),
        ("get", "/api/v1/admin/jobs"),
        ("get", "/api/v1/admin/jobs/dead"),
        ("delete", "/api/v1/admin/jobs/dead"),
        ("post", "/api/v1/admin/jobs/dead/{id}/retry"),
        ("post", "/api/v1/admin/jobs/dead/retry"),
        ("post", "/api/v1/admin/users/{id}/revoke-sessions"),
        ("post", "/api/v1/admin/users/{id}/ban"),
        ("post", "/api/v1/admin/api-keys"),
        ("get", "/api/v1/admin/api-keys"),
        ("delete", "/api/v1/admin/api-keys/{id}"),
        ("post", "/api/v1/admin/api-keys/{id}/rotate"),
        ("post", "/api/v1/clubs"),
        ("get", "/api/v1/clubs"),
        ("get", "/api/v1/clubs/{id}"),
        ("get", "/api/v1/facilities"),
        ("post", "/api/v1/facilities"),
        ("get", "/api/v1/facilities/{id}"),
        ("patch", "/api/v1/facilities/{id}"),
        ("delete", "/api/v1/facilities/{id}"),
        ("post", "/api/v1/bookings"),
        ("get", "/api/v1/bookings"),
        ("get", "/api/v1/bookings/{id}"),
        ("post", "/api/v1/bookings/{id}/confirm"),
        ("post", "/api/v1/bookings/{id}/cancel"),
        ("post", "/api/v1/bookings/recurring"),
        ("get", "/api/v1/facilities/{id}/availability"),
        ("get", "/api/v1/availability"),
        ("get", "/api/v1/facilities/{id}/popular-times"),
        ("post", "/api/v1/classes"),
        ("get", "/api/v1/classes"),
        ("get", "/api/v1/classes/{id}"),
        ("post", "/api/v1/classes/{id}/enrollments"),
        ("post", "/api/v1/enrollments/{id}/cancel"),
        ("get", "/api/v1/search/facilities"),
        ("get", "/api/v1/facilities/{id}/similar"),
        ("get", "/api/v1/me/favorites"),
        ("put", "/api/v1/me/favorites/{facility_id}"),
        ("delete", "/api/v1/me/favorites/{facility_id}"),
        ("get", "/api/v1/me/recommendations"),
        ("get", "/health"),
        ("get", "/ready"),
    ];
    for (method, path) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "a route is documented that the test does not know"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn the_docs_page_renders_the_openapi_document() {
    let app = TestApp::spawn().await;

    let redirect = app.get("/docs", None).await;
    assert!(redirect.status().is_redirection());
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let init = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}

#[tokio::test]
async fn a_stopped_server_shuts_down_cleanly_and_refuses_new_connections() {
    let app = TestApp::spawn().await;
    let url = app.url("/health");
    let client = app.client.clone();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    app.stop().await;

    assert!(client.get(&url).send().await.is_err());
}
