//! Outbound webhooks: admins register endpoints that receive booking, payment and waitlist events,
//! and follow their deliveries. Deliveries themselves are made by the `webhook.deliver` job (see
//! `clubpulse_webhooks`).

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_audit::{AuditEvent, action};
use clubpulse_domain::FieldError;
use clubpulse_storage::webhooks::{self, Delivery, Endpoint};
use clubpulse_webhooks::{
    events::EventType,
    target::{self, TargetError},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{Admin, ApiJson, ApiPath, ApiQuery},
    parse,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
}

/// A registered endpoint, as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    pub id: Uuid,
    #[schema(example = "https://hooks.example.com/clubpulse")]
    pub url: String,
    #[schema(example = json!(["booking.confirmed", "booking.cancelled"]))]
    pub events: Vec<String>,
    /// False once the service disabled it for failing too long (its admin is notified).
    pub enabled: bool,
    /// The first failed delivery since the last successful one; null while deliveries succeed.
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookEndpointView {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            events: e.events,
            enabled: e.enabled,
            failing_since: e.failing_since,
            disabled_at: e.disabled_at,
            created_at: e.created_at,
        }
    }
}

/// A new endpoint: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewWebhookEndpointView {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointView,
    /// The key every delivery to this endpoint is signed with (`ClubPulse-Signature`). It cannot
    /// be shown again.
    #[schema(example = "whsec_5f0c8e3b…")]
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An absolute `http` or `https` URL without user name or password, whose host is (or
    /// resolves only to) public addresses unless `CLUBPULSE_WEBHOOK_ALLOW_PRIVATE_TARGETS=on`.
    #[schema(example = "https://hooks.example.com/clubpulse")]
    pub url: String,
    /// One or more of `booking.held`, `booking.confirmed`, `booking.cancelled`,
    /// `booking.expired`, `payment.succeeded`, `payment.refunded`, `waitlist.offered`.
    #[schema(example = json!(["booking.confirmed", "booking.cancelled"]))]
    pub events: Vec<String>,
}

/// What every delivery's body is (`POST` to the endpoint, `Content-Type: application/json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    /// The event's id: the same at every retry, so a receiver can drop repeats.
    pub id: Uuid,
    /// The event type, e.g. `booking.confirmed`.
    #[serde(rename = "type")]
    #[schema(example = "booking.confirmed")]
    pub kind: String,
    /// When the event happened, RFC 3339 in UTC.
    pub created: DateTime<Utc>,
    /// What it is about: for booking events and `waitlist.offered`, the booking (`booking_id`,
    /// `facility_id`, `user_id`, `status`, `start`, `end`, `hold_expires_at`, `price_cents`,
    /// `currency`, `class_id` for a class's hold, `waitlist_offer`...); for payment events, the
    /// payment (`payment_id`, `booking_id`, amounts).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    pub id: Uuid,
    /// The delivered event's `id`.
    pub event_id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "booking.confirmed")]
    pub kind: String,
    /// `pending` (not attempted yet, or not sent because the endpoint is disabled), `failed`
    /// (the last attempt failed; it is retried with back-off), `succeeded` (a 2xx answer) or
    /// `dead` (no attempt left).
    #[schema(example = "succeeded")]
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// The HTTP status of the last answer; null when none came (a timeout, a refused connection).
    pub last_response_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When it succeeded or died.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for WebhookDeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            kind: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_response_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            last_attempt_at: d.last_attempt_at,
            completed_at: d.completed_at,
        }
    }
}

fn webhook_not_found() -> ApiError {
    ApiError::not_found("webhook_not_found", "no such webhook endpoint")
}

/// Registers an endpoint for some event types. Every matching event is then `POST`ed to it as a
/// `WebhookEvent`, signed in `ClubPulse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "{t}.{body}" with the secret>`; failures are retried with back-off and dead-lettered at the
/// end, and an endpoint failing for over `CLUBPULSE_WEBHOOK_DISABLE_AFTER_HOURS` is disabled.
#[utoipa::path(post, path = "/admin/webhooks", tag = "webhooks", request_body = CreateWebhook,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = NewWebhookEndpointView),
        (status = 422, description = "Invalid values (`validation_failed`: the URL's form, an unknown or missing event type, a host that does not resolve), or `webhook_target_forbidden`: the host is or resolves to a private, loopback, link-local or otherwise non-public address", content_type = "application/problem+json"),
        ProblemResponses))]
async fn create_webhook(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<NewWebhookEndpointView>), ApiError> {
    let (url, events) = registration(&body)?;
    target::check(&url, app.config.webhooks.allow_private_targets)
        .await
        .map_err(target_error)?;
    let secret = clubpulse_webhooks::new_secret();
    let endpoint =
        webhooks::insert_endpoint(&app.db, url.as_str(), &events, &secret, admin.id).await?;
    tracing::info!(admin.id = %admin.id, webhook.endpoint = %endpoint.id, "webhook endpoint registered");
    app.audit
        .record(
            AuditEvent::new(action::WEBHOOK_CREATED)
                .actor(admin.id)
                .target("webhook", endpoint.id)
                // The host only: a URL's path or query often carries a token.
                .detail("host", url.host_str().unwrap_or_default())
                .detail("events", events.join(",")),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(NewWebhookEndpointView {
            endpoint: endpoint.into(),
            secret,
        }),
    ))
}

/// The URL and the event types (deduplicated, in the documented order) of a registration, every
/// invalid field named at once.
fn registration(body: &CreateWebhook) -> Result<(target::Url, Vec<String>), ApiError> {
    let mut errors = Vec::new();
    let url = target::parse(&body.url)
        .map_err(|err| errors.push(FieldError::new("url", err.to_string())))
        .ok();
    let mut kinds = Vec::new();
    for (i, name) in body.events.iter().enumerate() {
        match name.parse::<EventType>() {
            Ok(kind) => kinds.push(kind),
            Err(_) => errors.push(FieldError::new(
                format!("events[{i}]"),
                format!(
                    "is not an event type; use {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )),
        }
    }
    if body.events.is_empty() {
        errors.push(FieldError::new(
            "events",
            "must name at least one event type",
        ));
    }
    match url {
        Some(url) if errors.is_empty() => {
            kinds.sort_unstable();
            kinds.dedup();
            Ok((url, kinds.iter().map(|k| k.as_str().to_owned()).collect()))
        }
        _ => Err(ApiError::validation(errors)),
    }
}

fn target_error(err: TargetError) -> ApiError {
    match err {
        TargetError::Forbidden => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook_target_forbidden",
            "the URL's host is, or resolves to, an address that is not public (private, \
             loopback, link-local or reserved)",
        ),
        TargetError::Invalid(_) | TargetError::Unresolvable => {
            ApiError::invalid_field("url", err.to_string())
        }
    }
}

/// Every endpoint, newest first, without secrets.
#[utoipa::path(get, path = "/admin/webhooks", tag = "webhooks",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [WebhookEndpointView]), ProblemResponses))]
async fn list_webhooks(
    State(app): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<WebhookEndpointView>>, ApiError> {
    let endpoints = webhooks::list_endpoints(&app.db).await?;
    Ok(Json(endpoints.into_iter().map(Into::into).collect()))
}

/// Deletes an endpoint and its deliveries: nothing more is sent to it, retries included.
#[utoipa::path(delete, path = "/admin/webhooks/{id}", tag = "webhooks",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "`webhook_not_found`", content_type = "application/problem+json"),
        ProblemResponses))]
async fn delete_webhook(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    webhooks::delete_endpoint(&app.db, id)
        .await?
        .ok_or_else(webhook_not_found)?;
    tracing::info!(admin.id = %admin.id, webhook.endpoint = %id, "webhook endpoint deleted");
    app.audit
        .record(
            AuditEvent::new(action::WEBHOOK_DELETED)
                .actor(admin.id)
                .target("webhook", id),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, newest first, with their attempts and the last answer or error.
#[utoipa::path(get, path = "/admin/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Webhook endpoint id"), parse::PageQuery),
    responses((status = 200, body = [WebhookDeliveryView]),
        (status = 404, description = "`webhook_not_found`", content_type = "application/problem+json"),
        ProblemResponses))]
async fn list_deliveries(
    State(app): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<parse::PageQuery>,
) -> Result<Json<Vec<WebhookDeliveryView>>, ApiError> {
    let limit = query.limit()?;
    webhooks::find_endpoint(&app.db, id)
        .await?
        .ok_or_else(webhook_not_found)?;
    let deliveries = webhooks::list_deliveries(&app.db, id, limit).await?;
    Ok(Json(deliveries.into_iter().map(Into::into).collect()))
}
