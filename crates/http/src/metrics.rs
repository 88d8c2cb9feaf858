//! Metrics in the Prometheus text format at `GET /metrics`.
//!
//! Code records through the `metrics` facade (`counter!`, `histogram!`, `gauge!`); one process-wide
//! Prometheus recorder keeps the values and renders them when scraped. Request durations follow
//! OpenTelemetry's HTTP semantic conventions: `http_server_request_duration_seconds`, labelled
//! `http_request_method`, `http_route` (the matched route template, so the label set stays small)
//! and `http_response_status_code`. Gauges that describe the present (pool connections, open
//! WebSockets) are read at scrape time.

use std::sync::OnceLock;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::{ApiError, AppState};

/// The request-duration histogram's name.
pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";

/// OpenTelemetry's advised boundaries for HTTP server durations, in seconds (used for every
/// duration histogram).
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` when another recorder was installed
/// first (then nothing is exported, and `/metrics` says so).
pub fn handle() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                // Every `*_duration_seconds` is a histogram with these buckets (a summary
                // otherwise), so quantiles can be taken across instances.
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    DURATION_BUCKETS,
                )
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics are not exported: no recorder could be installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Records one answered request.
pub fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    metrics::histogram!(
        REQUEST_DURATION,
        "http_request_method" => method.to_owned(),
        "http_route" => route.to_owned(),
        "http_response_status_code" => status.to_string(),
    )
    .record(seconds);
}

/// Whether the scrape carries the configured token (compared in constant time).
fn authorised(app: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &app.config.server.metrics_token else {
        return true;
    };
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let (a, b) = (offered.as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Gauges of the present, set just before rendering.
fn read_gauges(app: &AppState) {
    let pools = std::iter::once(("primary", &app.db))
        .chain(app.bookings.reads().replica_pool().map(|p| ("replica", p)));
    for (name, pool) in pools {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        metrics::gauge!("db_client_connections_usage", "pool_name" => name, "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("db_client_connections_usage", "pool_name" => name, "state" => "used")
            .set(f64::from(size.saturating_sub(idle)));
        metrics::gauge!("db_client_connections_max", "pool_name" => name)
            .set(f64::from(app.config.database.max_connections));
    }
    if let Some(health) = app.bookings.reads().health() {
        metrics::gauge!("clubpulse_db_replica_healthy").set(if app.bookings.reads().on_replica() {
            1.0
        } else {
            0.0
        });
        if let Some(lag) = health.lag() {
            metrics::gauge!("clubpulse_db_replica_lag_seconds").set(lag.as_secs_f64());
        }
    }
    metrics::gauge!("clubpulse_websocket_connections").set(app.hub.connections() as f64);
}

/// Gauges of the shared queue and audit buffer, asked of their stores when scraped (every
/// instance reports the same cluster-wide figures; a store that does not answer leaves the last
/// values).
async fn read_shared_gauges(app: &AppState) {
    match app.jobs.stats().await {
        Ok(stats) => {
            for (state, n) in [
                ("ready", stats.ready),
                ("scheduled", stats.scheduled),
                ("running", stats.in_flight),
                ("dead", stats.dead),
            ] {
                metrics::gauge!("clubpulse_jobs", "state" => state).set(n as f64);
            }
        }
        Err(err) => tracing::debug!(error = %err, "metrics: the job queue did not answer"),
    }
    match app.audit.flusher(app.db.clone()).backlog().await {
        Ok(buffered) => metrics::gauge!("clubpulse_audit_events_buffered").set(buffered as f64),
        Err(err) => tracing::debug!(error = %err, "metrics: the audit buffer did not answer"),
    }
}

/// `GET /metrics`: every metric in the Prometheus text format (version 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Metrics in the Prometheus text format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "`unauthenticated`: `CLUBPULSE_METRICS_TOKEN` is set and the request did not carry it as a Bearer token", content_type = "application/problem+json"),
        (status = 503, description = "`metrics_unavailable`: this process exports no metrics", content_type = "application/problem+json"),
    ))]
pub async fn scrape(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if !authorised(&app, &headers) {
        return ApiError::unauthenticated("send the metrics token as Authorization: Bearer")
            .into_response();
    }
    let Some(handle) = handle() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "this process exports no metrics",
        )
        .into_response();
    };
    read_gauges(&app);
    read_shared_gauges(&app).await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}
