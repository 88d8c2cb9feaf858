//! Cross-cutting request handling.
//!
//! - [`request_context`]: takes the client's `X-Request-ID` (when it is a sane token) or makes one,
//!   opens the request's span named by its matched route, logs one line per request, logs a 5xx's
//!   cause once, and echoes the id on the response.
//! - [`problem_fallback`]: a safety net turning any error response that is not problem+json yet
//!   (axum's 405, a timeout's 408, a panic's 500) into one. JSON error bodies and the web app's
//!   error pages are left alone.
//! - [`security_headers`]: headers every response carries, with a content security policy.
//! - [`csrf`]: refuses cookie-authenticated writes coming from another site's page.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};
use serde_json::Map;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::error::{InternalCause, PROBLEM_JSON, problem_response};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| text.to_owned())
}

pub async fn request_context(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(acceptable_request_id)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http.request",
        http.method = %method,
        http.route = %route,
        request_id = %id,
    );
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed().as_secs_f64();
    crate::metrics::record_request(method.as_str(), &route, status.as_u16(), elapsed);
    let duration_ms = elapsed * 1000.0;
    span.in_scope(|| {
        if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
            tracing::error!(
                http.status = status.as_u16(),
                duration_ms,
                error = format!("{cause:#}"),
                "request failed"
            );
        } else if status.is_server_error() {
            tracing::error!(http.status = status.as_u16(), duration_ms, "request failed");
        } else {
            tracing::info!(
                http.status = status.as_u16(),
                duration_ms,
                "request handled"
            );
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

pub async fn problem_fallback(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // A JSON error body was written on purpose (a problem, or `/ready`'s report); keep it.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with(PROBLEM_JSON)
                || ct.starts_with("application/json")
                || ct.starts_with("text/html")
        });
    // So was a page's own error page (the web app's, in the reader's language).
    if is_json {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this resource does not support that method",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the server accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send the body as JSON"),
        s if s.is_server_error() => ("internal_error", "the server failed to handle this request"),
        _ => ("bad_request", "the request could not be handled"),
    };
    let mut problem = problem_response(status, code, detail, &[], Map::new());
    // Keep headers such as `Allow` on a 405.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if let Some(cause) = response.extensions().get::<InternalCause>() {
        problem.extensions_mut().insert(cause.clone());
    }
    problem
}

/// Refuses an unsafe request (POST, PUT, PATCH, DELETE) that carries the session cookie but no
/// `Authorization` header, unless its `Origin` (or, without one, its `Referer`) is one of the
/// service's trusted origins. Browsers attach cookies to cross-site requests but always say where
/// they come from, so a page on another site cannot act with a member's session. Requests
/// authenticated by a Bearer token are exempt: another site cannot make a browser send one.
pub async fn csrf(
    axum::extract::State(app): axum::extract::State<crate::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let unsafe_method = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let headers = req.headers();
    let cookie_session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(crate::extract::SESSION_COOKIE));
    if !unsafe_method || !cookie_session || headers.contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let claimed = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let scheme_end = referer.find("://")? + 3;
            let end = referer[scheme_end..]
                .find('/')
                .map_or(referer.len(), |i| scheme_end + i);
            Some(referer[..end].to_ascii_lowercase())
        });
    match claimed {
        Some(origin) if app.config.trusted_origins().contains(&origin) => next.run(req).await,
        _ => axum::response::IntoResponse::into_response(
            crate::ApiError::forbidden(
                "a cookie-authenticated change must come from this site's own pages (Origin check)",
            )
            .with_code("csrf_rejected"),
        ),
    }
}

/// Read-your-writes across instances: when a read replica is configured, a write request (any
/// method but GET, HEAD and OPTIONS) by a known user marks that user as a recent writer before the
/// response leaves, so their next reads, on any instance, go to the primary until the replica is
/// sure to have the write ([`clubpulse_booking::Bookings::wrote`]). The mark is made whether or not
/// the write succeeded: a refused write may still have written something (a refused hold is
/// counted as unmet demand), and one mark too many only costs a read on the primary.
pub async fn read_your_writes(
    axum::extract::State(app): axum::extract::State<crate::AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if safe || app.bookings.reads().max_lag().is_none() {
        return next.run(req).await;
    }
    let writer = crate::extract::Writer::default();
    req.extensions_mut().insert(writer.clone());
    let response = next.run(req).await;
    if let Some(user) = writer.0.get() {
        app.bookings.wrote(*user).await;
    }
    response
}

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let is_api = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    // A page's forms must say where they come from (the CSRF check reads `Origin`, which browsers
    // send as `null` under `no-referrer`); nothing is told to other sites. API answers tell nobody.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(if is_html {
            "same-origin"
        } else {
            "no-referrer"
        }),
    );
    // Pages load only their own scripts and styles and may not be framed; API answers load nothing.
    let policy = if is_html {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    response
}
