//! Payments: checkout, a booking's payments, on-site payment, and the provider's webhook.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use clubpulse_booking::payments::Applied;
use clubpulse_domain::PaymentStatus;
use clubpulse_payments::stripe::Event;
use clubpulse_storage::payments::Payment;
use clubpulse_webhooks::signature;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiPath, CurrentUser, Staff},
    limits::{self, Policy},
    routes::bookings::BookingView,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout))
        .routes(routes!(list_payments))
        .routes(routes!(mark_paid))
        .routes(routes!(stripe_webhook))
}

/// A payment for a booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub booking_id: Uuid,
    /// `onsite` or `stripe`.
    #[schema(example = "stripe")]
    pub provider: String,
    /// The provider's id: a Stripe PaymentIntent (`pi_…`), or `onsite_…`.
    pub provider_ref: String,
    /// What Stripe.js confirms the payment with (`stripe.confirmCardPayment`): in the checkout's
    /// answer to the member paying, while the payment is pending; `null` on site, in listings and
    /// once the payment is settled.
    pub client_secret: Option<String>,
    pub amount_cents: i64,
    /// How much of it was given back; with some, the status is `refunded`.
    pub refunded_cents: i64,
    #[schema(example = "eur")]
    pub currency: String,
    #[schema(value_type = String, example = "pending")]
    pub status: PaymentStatus,
    /// Why the last refund was made: `slot_taken`, `cancelled` or `duplicate`.
    pub refund_reason: Option<String>,
    /// Why the last attempt failed, when it did.
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentView {
    fn new(p: Payment, with_secret: bool) -> Self {
        Self {
            client_secret: p
                .client_secret
                .filter(|_| with_secret && p.status == PaymentStatus::Pending),
            id: p.id,
            booking_id: p.booking_id,
            provider: p.provider,
            provider_ref: p.provider_ref,
            amount_cents: p.amount_cents,
            refunded_cents: p.refunded_cents,
            currency: p.currency,
            status: p.status,
            refund_reason: p.refund_reason,
            failure_message: p.failure_message,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Starts paying for the caller's live hold: one pending payment for the booking's price (with
/// Stripe, a PaymentIntent with `metadata[booking_id]`). Asking again returns the same pending
/// payment. The provider's webhook confirms the booking.
#[utoipa::path(post, path = "/bookings/{id}/checkout", tag = "payments",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 201, body = PaymentView),
        (status = 409, description = "`hold_expired`, `already_confirmed`, `booking_not_active` or `nothing_to_pay`", content_type = "application/problem+json"),
        (status = 502, description = "`payment_provider_error`: the provider refused the request", content_type = "application/problem+json"),
        ProblemResponses))]
async fn checkout(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<PaymentView>), ApiError> {
    limits::check(&app, Policy::Checkout, &user.id.to_string(), true).await?;
    let payment = app.bookings.checkout((&user).into(), id).await?;
    Ok((StatusCode::CREATED, Json(PaymentView::new(payment, true))))
}

/// A booking's payments, oldest first (its member or staff).
#[utoipa::path(get, path = "/bookings/{id}/payments", tag = "payments",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, body = Vec<PaymentView>), ProblemResponses))]
async fn list_payments(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<PaymentView>>, ApiError> {
    let payments = app.bookings.payments_of((&user).into(), id).await?;
    Ok(Json(
        payments
            .into_iter()
            .map(|p| PaymentView::new(p, false))
            .collect(),
    ))
}

/// Staff took the payment at the club: records an on-site payment and confirms the hold. Marking
/// a paid booking paid again changes nothing.
#[utoipa::path(post, path = "/bookings/{id}/mark-paid", tag = "payments",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, body = BookingView),
        (status = 409, description = "`hold_expired`, `booking_not_active` or `nothing_to_pay`", content_type = "application/problem+json"),
        ProblemResponses))]
async fn mark_paid(
    State(app): State<AppState>,
    Staff(user): Staff,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BookingView>, ApiError> {
    let booking = app.bookings.mark_paid((&user).into(), id).await?;
    Ok(Json(booking.into()))
}

/// What the webhook answers a valid event with.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// Whether this delivery changed anything: `false` for a repeat, an event superseded by a
    /// newer state, or an event type the service does not act on.
    pub applied: bool,
}

/// Stripe's webhook. The `Stripe-Signature` header (`t=…,v1=…`, HMAC-SHA256 of `"{t}.{raw
/// body}"` with any of `CLUBPULSE_STRIPE_WEBHOOK_SECRETS`, at most 300 s old) is checked before the
/// body is read. `payment_intent.succeeded` confirms the booking (or, past its hold with the slot
/// taken, refunds the payment); `payment_intent.payment_failed` marks the payment failed. Each
/// event takes effect once, whatever the repeats or the order.
#[utoipa::path(post, path = "/payments/stripe/webhook", tag = "payments",
    request_body(content = serde_json::Value, description = "A Stripe event: `{id, type, created, data: {object}}`", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`")),
    responses((status = 200, body = WebhookReceipt),
        (status = 400, description = "`invalid_signature`: missing, malformed, stale or not made with a configured secret; or `invalid_event`", content_type = "application/problem+json"),
        ProblemResponses))]
async fn stripe_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceipt>, ApiError> {
    let secrets: Vec<&str> = app
        .config
        .payments
        .stripe_webhook_secrets
        .iter()
        .map(|s| s.expose())
        .filter(|s| !s.is_empty())
        .collect();
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(err) = signature::verify(
        header,
        &body,
        &secrets,
        Utc::now().timestamp(),
        signature::TOLERANCE_SECONDS,
    ) {
        tracing::warn!(reason = %err, "refused a payment webhook");
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            "the Stripe-Signature header is missing, stale or not made with a configured secret",
        ));
    }
    let event = Event::parse(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            format!("the body is not a Stripe event: {e}"),
        )
    })?;
    let applied = app.bookings.apply_stripe_event(&event).await?;
    Ok(Json(WebhookReceipt {
        applied: applied == Applied::Changed,
    }))
}
