//! Bookings: holds, confirmation, cancellation, weekly series, availability and popular times.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_booking::{Actor, availability, holds::Occurrence as Outcome};
use clubpulse_domain::{BookingStatus, Weeks};
use clubpulse_storage::bookings::Booking;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiJson, ApiPath, ApiQuery, CurrentUser},
    limits::{self, Policy},
    parse,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_hold, list_bookings))
        .routes(routes!(get_booking))
        .routes(routes!(confirm_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(create_recurring))
        .routes(routes!(facility_availability))
        .routes(routes!(batch_availability))
        .routes(routes!(popular_times))
}

/// A booking as its owner and staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub user_id: Uuid,
    #[schema(value_type = String, example = "held")]
    pub status: BookingStatus,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// While `held`: when the hold runs out unless confirmed.
    pub expires_at: Option<DateTime<Utc>>,
    pub price_cents: i64,
    pub currency: String,
    /// Recorded when a cancellation came later than the club's policy allows for free.
    pub cancellation_fee_cents: Option<i64>,
    /// Shared by the occurrences of one weekly series.
    pub series_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<Booking> for BookingView {
    fn from(b: Booking) -> Self {
        Self {
            expires_at: (b.status == BookingStatus::Held)
                .then_some(b.hold_expires_at)
                .flatten(),
            id: b.id,
            facility_id: b.facility_id,
            user_id: b.user_id,
            status: b.status,
            start: b.start,
            end: b.end,
            price_cents: b.price_cents,
            currency: b.currency,
            cancellation_fee_cents: b.cancellation_fee_cents,
            series_id: b.series_id,
            created_at: b.created_at,
            confirmed_at: b.confirmed_at,
            cancelled_at: b.cancelled_at,
        }
    }
}

/// A free alternative offered with a 409 `slot_unavailable`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alternative {
    pub facility_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `nearest_time` (same facility) or `similar_facility` (same time, same sport, same club).
    #[schema(example = "nearest_time")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHold {
    pub facility_id: Uuid,
    /// RFC 3339 with an offset, on the facility's slot grid.
    #[schema(example = "2026-12-01T18:00:00+01:00")]
    pub start: String,
    #[schema(example = "2026-12-01T19:00:00+01:00")]
    pub end: String,
}

impl From<&CurrentUser> for Actor {
    fn from(user: &CurrentUser) -> Self {
        Actor {
            id: user.id,
            role: user.role,
        }
    }
}

/// Holds a slot for `CLUBPULSE_HOLD_SECONDS` while the member pays; confirm it before `expires_at`.
#[utoipa::path(post, path = "/bookings", tag = "bookings", request_body = CreateHold,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = BookingView),
        (status = 409, description = "`slot_unavailable` (with `alternatives`: up to five free `{facility_id, start, end, reason}`) or `too_many_holds`", content_type = "application/problem+json"),
        ProblemResponses))]
async fn create_hold(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateHold>,
) -> Result<(StatusCode, Json<BookingView>), ApiError> {
    limits::check(&app, Policy::Booking, &user.id.to_string(), true).await?;
    let range = parse::instant_range(&body.start, &body.end)?;
    let booking = app
        .bookings
        .hold((&user).into(), body.facility_id, range)
        .await?;
    Ok((StatusCode::CREATED, Json(booking.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecurring {
    pub facility_id: Uuid,
    /// The first occurrence; later ones keep its local wall-clock time, whatever the DST changes.
    pub start: String,
    pub end: String,
    /// 1 to 26.
    #[schema(minimum = 1, maximum = 26)]
    pub weeks: i64,
}

/// What happened to one occurrence of a weekly series.
#[derive(Debug, Serialize, ToSchema)]
pub struct Occurrence {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// `held`, or `refused` with a problem `code`.
    #[schema(example = "held")]
    pub status: &'static str,
    pub booking: Option<BookingView>,
    pub code: Option<&'static str>,
    pub detail: Option<String>,
    /// For `slot_unavailable`: free alternatives, as in a single hold's 409.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    #[schema(value_type = Option<Vec<Alternative>>)]
    pub alternatives: serde_json::Value,
}

impl From<Outcome> for Occurrence {
    fn from(occurrence: Outcome) -> Self {
        let (start, end) = match occurrence.range {
            Some(range) => (Some(range.start()), Some(range.end())),
            None => (None, None),
        };
        match occurrence.outcome {
            Ok(booking) => Occurrence {
                start,
                end,
                status: "held",
                booking: Some(booking.into()),
                code: None,
                detail: None,
                alternatives: serde_json::Value::Null,
            },
            Err(err) => {
                let (code, detail, alternatives) = ApiError::from(err).describe();
                Occurrence {
                    start,
                    end,
                    status: "refused",
                    booking: None,
                    code: Some(code),
                    detail: Some(detail),
                    alternatives,
                }
            }
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecurringResult {
    pub series_id: Uuid,
    pub held: usize,
    pub occurrences: Vec<Occurrence>,
}

/// Holds the same local time every week for `weeks` weeks; each occurrence reports its own outcome.
/// The series counts as one hold against the hold limit.
#[utoipa::path(post, path = "/bookings/recurring", tag = "bookings", request_body = CreateRecurring,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = RecurringResult), ProblemResponses))]
async fn create_recurring(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateRecurring>,
) -> Result<(StatusCode, Json<RecurringResult>), ApiError> {
    limits::check(&app, Policy::Booking, &user.id.to_string(), true).await?;
    let weeks =
        Weeks::try_from(body.weeks).map_err(|e| ApiError::validation(vec![e.within("weeks")]))?;
    let first = parse::instant_range(&body.start, &body.end)?;
    let series = app
        .bookings
        .hold_weekly((&user).into(), body.facility_id, first, weeks)
        .await?;
    let occurrences: Vec<Occurrence> = series.occurrences.into_iter().map(Into::into).collect();
    Ok((
        StatusCode::CREATED,
        Json(RecurringResult {
            series_id: series.id,
            held: occurrences.iter().filter(|o| o.status == "held").count(),
            occurrences,
        }),
    ))
}

/// My bookings, newest first.
#[utoipa::path(get, path = "/bookings", tag = "bookings", params(parse::PageQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [BookingView]), ProblemResponses))]
async fn list_bookings(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<parse::PageQuery>,
) -> Result<Json<Vec<BookingView>>, ApiError> {
    let limit = query.limit()?;
    let found = app.bookings.list_mine((&user).into(), limit).await?;
    Ok(Json(found.into_iter().map(Into::into).collect()))
}

/// One booking. Another member's booking is 404.
#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, body = BookingView), ProblemResponses))]
async fn get_booking(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BookingView>, ApiError> {
    let booking = app.bookings.find((&user).into(), id).await?;
    Ok(Json(booking.into()))
}

/// Confirms a hold before it expires (after payment, or where the club takes payment on site).
/// Confirming a confirmed booking changes nothing.
#[utoipa::path(post, path = "/bookings/{id}/confirm", tag = "bookings",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, body = BookingView),
        (status = 409, description = "`hold_expired`, or `booking_not_active` for a cancelled booking", content_type = "application/problem+json"),
        ProblemResponses))]
async fn confirm_booking(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BookingView>, ApiError> {
    limits::check(&app, Policy::Checkout, &user.id.to_string(), true).await?;
    let confirmed = app.bookings.confirm((&user).into(), id).await?;
    Ok(Json(confirmed.into()))
}

/// Cancels a hold or a booking and frees the slot. A confirmed booking cancelled later than the
/// club's policy allows records a fee.
#[utoipa::path(post, path = "/bookings/{id}/cancel", tag = "bookings",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses((status = 200, body = BookingView),
        (status = 409, description = "`booking_not_active`: already cancelled or expired", content_type = "application/problem+json"),
        ProblemResponses))]
async fn cancel_booking(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BookingView>, ApiError> {
    let cancelled = app.bookings.cancel((&user).into(), id).await?;
    Ok(Json(cancelled.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// RFC 3339 with an offset; default now.
    pub from: Option<String>,
    /// RFC 3339 with an offset; default `from` + 7 days; at most 31 days after `from`.
    pub to: Option<String>,
}

/// The state of one stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    Free,
    /// Someone holds it while paying.
    Held,
    Booked,
    /// Outside opening hours, or already started.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SlotView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub state: SlotState,
}

/// The slots of one facility between two instants.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FacilityAvailability {
    pub facility_id: Uuid,
    /// The club's IANA time zone: the grid is laid out in its local time.
    pub timezone: String,
    pub slot_minutes: i32,
    pub slots: Vec<SlotView>,
}

impl From<availability::FacilityAvailability> for FacilityAvailability {
    fn from(a: availability::FacilityAvailability) -> Self {
        use availability::SlotState as S;
        Self {
            facility_id: a.facility_id,
            timezone: a.timezone,
            slot_minutes: a.slot_minutes,
            slots: a
                .slots
                .into_iter()
                .map(|s| SlotView {
                    start: s.start,
                    end: s.end,
                    state: match s.state {
                        S::Free => SlotState::Free,
                        S::Held => SlotState::Held,
                        S::Booked => SlotState::Booked,
                        S::Closed => SlotState::Closed,
                    },
                })
                .collect(),
        }
    }
}

/// A facility's slots between two instants, each `free`, `held`, `booked` or `closed` (outside
/// opening hours or already started), in the club's local grid.
#[utoipa::path(get, path = "/facilities/{id}/availability", tag = "bookings", params(
        ("id" = Uuid, Path, description = "Facility id"), AvailabilityQuery),
    responses((status = 200, body = FacilityAvailability), ProblemResponses))]
async fn facility_availability(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<AvailabilityQuery>,
) -> Result<Json<FacilityAvailability>, ApiError> {
    let (from, to) = parse::span(query.from.as_deref(), query.to.as_deref(), 31)?;
    let answer = app.bookings.availability(id, from, to).await?;
    Ok(Json(answer.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// Comma-separated facility ids, at most 50.
    pub facility_ids: String,
    pub from: Option<String>,
    /// At most 14 days after `from`.
    pub to: Option<String>,
}

/// Availability of many facilities at once (a week grid for a whole club, say).
#[utoipa::path(get, path = "/availability", tag = "bookings", params(BatchQuery),
    responses((status = 200, body = [FacilityAvailability]), ProblemResponses))]
async fn batch_availability(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<BatchQuery>,
) -> Result<Json<Vec<FacilityAvailability>>, ApiError> {
    let ids = parse::id_list("facility_ids", &query.facility_ids, 50)?;
    let (from, to) = parse::span(query.from.as_deref(), query.to.as_deref(), 14)?;
    let answer = app.bookings.availability_of(&ids, from, to).await?;
    Ok(Json(answer.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PopularTime {
    /// 0 = Monday, in the club's local time.
    pub weekday: u8,
    pub hour: u8,
    /// Confirmed bookings that started in this weekday-hour.
    pub bookings: u64,
}

/// The weekday-hours when a facility is booked most, most popular first.
#[utoipa::path(get, path = "/facilities/{id}/popular-times", tag = "bookings",
    params(("id" = Uuid, Path, description = "Facility id")),
    responses((status = 200, body = [PopularTime]), ProblemResponses))]
async fn popular_times(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<PopularTime>>, ApiError> {
    let top = app.bookings.popular_times(id).await?;
    Ok(Json(
        top.into_iter()
            .map(|p| PopularTime {
                weekday: p.weekday,
                hour: p.hour,
                bookings: p.count,
            })
            .collect(),
    ))
}
