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
    for ready in [&on_redis, &in_process] {
        assert_eq!(ready["caches"]["status"], "listening", "{ready}");
    }
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.db.close().await;

    let response = app.get("/ready", None).await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"]["status"], "down");
    assert_eq!(body["database"]["backend"], "postgres");
    // Public: it names what is down, never the error itself.
    for part in ["database", "state", "jobs"] {
        assert!(body[part].get("error").is_none(), "{part}: {body}");
    }
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
        ("post", "/api/v1/admin/api-keys/{id}/signing-secret"),
        ("post", "/api/v1/admin/webhooks"),
        ("get", "/api/v1/admin/webhooks"),
        ("delete", "/api/v1/admin/webhooks/{id}"),
        ("get", "/api/v1/admin/webhooks/{id}/deliveries"),
        ("get", "/api/v1/admin/stats"),
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
        ("post", "/api/v1/waitlist"),
        ("get", "/api/v1/waitlist"),
        ("delete", "/api/v1/waitlist/{id}"),
        ("get", "/api/v1/me/notifications"),
        ("post", "/api/v1/me/calendar-feed"),
        ("delete", "/api/v1/me/calendar-feed"),
        ("get", "/api/v1/me/calendar.ics"),
        ("post", "/api/v1/me/notifications/{id}/read"),
        ("post", "/api/v1/bookings/{id}/checkout"),
        ("get", "/api/v1/bookings/{id}/payments"),
        ("post", "/api/v1/bookings/{id}/mark-paid"),
        ("post", "/api/v1/payments/stripe/webhook"),
        ("get", "/api/v1/ws"),
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
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
    let signature = &doc["components"]["securitySchemes"]["signature"];
    assert_eq!(signature["name"], "ClubPulse-Signature");
    assert!(
        signature["description"]
            .as_str()
            .is_some_and(|d| d.contains("HMAC-SHA256") && d.contains("signature_replayed")),
        "{signature}"
    );
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

/// Every `$ref` in a JSON document, with where it is.
fn refs(value: &Value, at: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(members) => {
            if let Some(Value::String(target)) = members.get("$ref") {
                out.push((at.clone(), target.clone()));
            }
            for (key, member) in members {
                refs(member, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                refs(item, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_ref_of_the_served_openapi_document_resolves() {
    let app = TestApp::spawn().await;

    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    assert_eq!(doc["openapi"], "3.1.0");
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(found.len() > 50, "too few $refs: {}", found.len());
    let unresolved: Vec<_> = found
        .iter()
        .filter(|(_, target)| {
            target
                .strip_prefix('#')
                .is_none_or(|pointer| doc.pointer(pointer).is_none())
        })
        .collect();
    assert!(unresolved.is_empty(), "unresolved $refs: {unresolved:?}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["429", "503"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if parameter["in"] == "path" {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: `{name}` is not in the path"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn documented_bounds_are_the_servers_bounds() {
    let app = TestApp::spawn().await;
    let admin = app.user(clubpulse_domain::Role::Admin).await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    // Every query parameter with a documented maximum: one above it is refused, the maximum itself
    // is not refused for being too large.
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        if path.contains('{') {
            continue;
        }
        for parameter in get["parameters"].as_array().into_iter().flatten() {
            let Some(max) = parameter["schema"]["maximum"].as_i64() else {
                continue;
            };
            let name = parameter["name"].as_str().unwrap();
            let base = if path.ends_with("/search/facilities") {
                format!("{path}?q=tenis&")
            } else if path.ends_with("/availability") {
                continue;
            } else {
                format!("{path}?")
            };
            let over = app
                .get(&format!("{base}{name}={}", max + 1), Some(&admin.token))
                .await;
            assert_eq!(over.status(), 422, "{path}?{name}={} was accepted", max + 1);
            let at = app
                .get(&format!("{base}{name}={max}"), Some(&admin.token))
                .await;
            assert_ne!(at.status(), 422, "{path}?{name}={max} was refused");
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} bounded parameters found");
}
