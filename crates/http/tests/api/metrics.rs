//! `GET /metrics`: the Prometheus text format, request durations under OpenTelemetry's names, the
//! optional token.

use std::time::Duration;

use clubpulse_config::Secret;
use clubpulse_domain::Role;
use reqwest::{StatusCode, header};

use crate::helpers::{Setup, TestApp, assert_problem, eventually, local};

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    app.get("/metrics", token).await
}

#[tokio::test]
async fn requests_are_counted_by_method_route_template_and_status() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        assert_eq!(app.get("/health", None).await.status(), StatusCode::OK);
    }
    let missing = uuid::Uuid::new_v4();
    let response = app
        .get(&format!("/api/v1/facilities/{missing}"), None)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = scrape(&app, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let count = |labels: &[&str]| -> f64 {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("http_server_request_duration_seconds_count{")
                    && labels.iter().all(|label| l.contains(label))
            })
            .unwrap_or_else(|| panic!("no count for {labels:?} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let get = r#"http_request_method="GET""#;
    let ok = r#"http_response_status_code="200""#;
    assert_eq!(count(&[get, ok, r#"http_route="/health""#]), 3.0);
    // The route template, never the id: the label set stays bounded.
    let missing_facility = [
        get,
        r#"http_response_status_code="404""#,
        r#"http_route="/api/v1/facilities/{id}""#,
    ];
    assert_eq!(count(&missing_facility), 1.0);
    assert!(!text.contains(&missing.to_string()));
    assert!(text.contains(r#"http_server_request_duration_seconds_bucket{"#));
    assert!(text.contains(r#"le="0.005""#), "OpenTelemetry's buckets");
    assert!(text.contains("db_client_connections_usage{pool_name=\"primary\",state=\"idle\"}"));
    assert!(text.contains("clubpulse_websocket_connections "));
    app.stop().await;
}

#[tokio::test]
async fn a_configured_token_is_required_as_a_bearer_token() {
    let mut setup = Setup::default();
    setup.config.server.metrics_token = Some(Secret::new("metrics-token-0123456789"));
    let app = TestApp::spawn_with(setup).await;
    assert_problem(scrape(&app, None).await, 401, "unauthenticated").await;
    assert_problem(
        scrape(&app, Some("metrics-token-wrong-1234")).await,
        401,
        "unauthenticated",
    )
    .await;
    let response = scrape(&app, Some("metrics-token-0123456789")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("http_server_request_duration_seconds")
    );
    app.stop().await;
}

/// The value of the sample named exactly `series` (name and labels as rendered), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn booking_changes_and_conflicts_are_counted_once_each() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let facility = app
        .facility(&admin, "Europe/Madrid", serde_json::json!({}))
        .await;
    let (ana, bruno) = (app.user(Role::Member).await, app.user(Role::Member).await);
    let (start, end) = (
        local("Europe/Madrid", 2, 10, 0),
        local("Europe/Madrid", 2, 11, 0),
    );
    assert_eq!(
        app.hold(&ana, &facility, &start, &end).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.hold(&bruno, &facility, &start, &end).await.status(),
        StatusCode::CONFLICT
    );
    app.drain_outbox().await;
    let text = eventually(
        Duration::from_secs(10),
        "the held event counted",
        || async {
            let text = scrape(&app, None).await.text().await.unwrap();
            sample(
                &text,
                r#"clubpulse_booking_events_total{event="booking.held"}"#,
            )
            .map(|_| text)
        },
    )
    .await;
    assert_eq!(
        sample(
            &text,
            r#"clubpulse_booking_events_total{event="booking.held"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "clubpulse_booking_conflicts_total"),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn jobs_audit_redis_and_the_queue_are_measured() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let facility = app
        .facility(&admin, "Europe/Madrid", serde_json::json!({}))
        .await;
    let member = app.user(Role::Member).await;
    let held = app
        .hold(
            &member,
            &facility,
            &local("Europe/Madrid", 2, 10, 0),
            &local("Europe/Madrid", 2, 11, 0),
        )
        .await;
    assert_eq!(held.status(), StatusCode::CREATED);
    let booking: serde_json::Value = held.json().await.unwrap();
    let confirmed = app
        .booking_action(&member, booking["id"].as_str().unwrap(), "confirm")
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    // The confirmation mails the member through a job; the facility was indexed by another.
    app.drain_jobs(Duration::from_secs(20)).await;
    app.flush_audit().await;

    let text = scrape(&app, None).await.text().await.unwrap();
    let done = text
        .lines()
        .filter(|l| {
            l.starts_with("clubpulse_jobs_finished_total{") && l.contains(r#"outcome="done""#)
        })
        .count();
    assert!(done >= 1, "finished jobs by kind:\n{text}");
    assert!(text.contains("clubpulse_job_duration_seconds_bucket{"));
    // A periodic job may be queued at any moment, so only the dead-letter count is known.
    for state in ["ready", "scheduled", "running"] {
        let series = format!(r#"clubpulse_jobs{{state="{state}"}}"#);
        assert!(sample(&text, &series).is_some(), "{series} in\n{text}");
    }
    assert_eq!(sample(&text, r#"clubpulse_jobs{state="dead"}"#), Some(0.0));
    assert_eq!(sample(&text, "clubpulse_audit_events_buffered"), Some(0.0));
    assert!(sample(&text, "clubpulse_audit_events_chained_total").is_some_and(|n| n >= 2.0));
    // Sessions live in Redis: every authenticated request looked one up.
    assert!(
        text.lines().any(
            |l| l.starts_with("clubpulse_redis_command_duration_seconds_count{")
                && l.contains(r#"outcome="ok""#)
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"command="EVALSHA""#),
        "scripts are named:\n{text}"
    );
    app.stop().await;
}
