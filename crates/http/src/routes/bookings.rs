//! Bookings: holds, confirmation, cancellation, weekly series, availability and popular times.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Datelike, Duration, FixedOffset, Utc};
use clubpulse_domain::{
    BookingEventKind, BookingStatus, BookingWindow, FieldError, TimeRange, Validation, Weeks,
};
use clubpulse_state::PopularSlot;
use clubpulse_storage::{
    bookings::{self, Booking, HoldError, NewHold},
    facilities,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    engine::{
        self, FacilityContext,
        alternatives::{self, Alternative},
        availability::{self, FacilityAvailability},
    },
    error::responses::ProblemResponses,
    extract::{ApiJson, ApiPath, ApiQuery, CurrentUser},
    limits::{self, Policy},
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

/// Parses an RFC 3339 instant; a time without an offset is refused, since it names no instant.
pub fn instant(raw: &str) -> Result<DateTime<Utc>, FieldError> {
    let t = DateTime::<FixedOffset>::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            FieldError::new(
                "",
                "must be an RFC 3339 time with an offset, e.g. 2026-05-01T18:00:00+02:00",
            )
        })?;
    // 0001-01-01T00:00:00+14:00 is year 0 in UTC, 9999-12-31T23:00:00-14:00 year 10000: neither
    // could be written back in RFC 3339.
    if !(1..=9999).contains(&t.year()) {
        return Err(FieldError::new(
            "",
            "must fall between the years 0001 and 9999 in UTC",
        ));
    }
    Ok(t)
}

/// Parses `start` and `end` into a non-empty range; an empty or reversed one is 422 `invalid_range`.
pub fn instant_range(start: &str, end: &str) -> Result<TimeRange, ApiError> {
    let mut check = Validation::new();
    let start = check.check("start", instant(start));
    let end = check.check("end", instant(end));
    let (Some(start), Some(end)) = (start, end) else {
        return Err(ApiError::validation(check.into_errors()));
    };
    TimeRange::new(start, end).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
            "end must be after start",
        )
    })
}

fn window(app: &AppState) -> BookingWindow {
    BookingWindow {
        days: app.config.booking.window_days,
        min_notice_minutes: app.config.booking.min_notice_minutes,
    }
}

/// Checks a request against the facility's grid and the timing rules: each violation has its code.
fn check_rules(app: &AppState, ctx: &FacilityContext, range: &TimeRange) -> Result<(), ApiError> {
    window(app)
        .check(range, Utc::now())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    ctx.grid
        .fit(range)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    Ok(())
}

/// A class must fit the grid and start in the future; the booking window does not limit staff.
pub fn check_rules_for_class(ctx: &FacilityContext, range: &TimeRange) -> Result<(), ApiError> {
    if range.start() < Utc::now() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "in_the_past",
            "the class starts in the past",
        ));
    }
    ctx.grid
        .fit(range)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    Ok(())
}

/// The price of a range: the slot price times the slots it covers.
fn price(ctx: &FacilityContext, range: &TimeRange) -> i64 {
    let slots = range.duration().num_minutes() / i64::from(ctx.facility.slot_minutes.max(1));
    ctx.facility.price_cents.saturating_mul(slots)
}

/// Tries to hold `range`; a taken slot is a 409 carrying free alternatives.
async fn hold(
    app: &AppState,
    ctx: &FacilityContext,
    user: &CurrentUser,
    range: TimeRange,
    series_id: Option<Uuid>,
) -> Result<Booking, ApiError> {
    let new = NewHold {
        facility_id: ctx.facility.id,
        user_id: user.id,
        range,
        buffer_minutes: ctx.facility.buffer_minutes,
        hold_seconds: i64::try_from(app.config.booking.hold_seconds).unwrap_or(i64::MAX),
        price_cents: price(ctx, &range),
        currency: ctx.facility.currency.clone(),
        series_id,
        max_active_holds: i64::from(app.config.booking.max_active_holds),
    };
    // hold_slot is one transaction: a deadlock with a rival is retried, not reported as a clash.
    match clubpulse_storage::retry_contended(|| bookings::create_hold(&app.db, &new)).await {
        Ok((booking, expired)) => {
            if !expired.is_empty() {
                engine::after_commit(app, ctx, &expired, BookingEventKind::Expired, None).await;
            }
            engine::after_commit(
                app,
                ctx,
                std::slice::from_ref(&booking),
                BookingEventKind::Held,
                Some(user.id),
            )
            .await;
            Ok(booking)
        }
        Err(HoldError::SlotUnavailable) => {
            let alternatives = alternatives::find(app, ctx, &range, window(app)).await?;
            Err(slot_unavailable(alternatives))
        }
        Err(HoldError::TooManyHolds) => Err(ApiError::conflict(
            "too_many_holds",
            format!(
                "you already hold {} slots; confirm or cancel one first",
                app.config.booking.max_active_holds
            ),
        )),
        Err(HoldError::Storage(err)) => Err(err.into()),
    }
}

fn slot_unavailable(alternatives: Vec<Alternative>) -> ApiError {
    ApiError::conflict(
        "slot_unavailable",
        "this time is already taken at this facility",
    )
    .with("alternatives", json!(alternatives))
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
    let range = instant_range(&body.start, &body.end)?;
    let ctx = engine::load(&app.db, body.facility_id).await?;
    check_rules(&app, &ctx, &range)?;
    let booking = hold(&app, &ctx, &user, range, None).await?;
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
    let first = instant_range(&body.start, &body.end)?;
    let ctx = engine::load(&app.db, body.facility_id).await?;
    let series_id = Uuid::now_v7();
    let mut occurrences = Vec::new();
    for occurrence in clubpulse_domain::weekly(ctx.time_zone(), &first, u32::from(weeks.get())) {
        let outcome = match occurrence {
            Err(err) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                err.code(),
                err.to_string(),
            )),
            Ok(range) => match check_rules(&app, &ctx, &range) {
                Err(err) => Err(err),
                Ok(()) => hold(&app, &ctx, &user, range, Some(series_id)).await,
            },
        };
        occurrences.push(match outcome {
            Ok(booking) => Occurrence {
                start: Some(booking.start),
                end: Some(booking.end),
                status: "held",
                booking: Some(booking.into()),
                code: None,
                detail: None,
                alternatives: serde_json::Value::Null,
            },
            Err(err) => {
                if err.status().is_server_error() {
                    return Err(err);
                }
                let (code, detail, alternatives) = err.describe();
                Occurrence {
                    start: None,
                    end: None,
                    status: "refused",
                    booking: None,
                    code: Some(code),
                    detail: Some(detail),
                    alternatives,
                }
            }
        });
    }
    Ok((
        StatusCode::CREATED,
        Json(RecurringResult {
            series_id,
            held: occurrences.iter().filter(|o| o.status == "held").count(),
            occurrences,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many, newest first (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// My bookings, newest first.
#[utoipa::path(get, path = "/bookings", tag = "bookings", params(ListQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [BookingView]), ProblemResponses))]
async fn list_bookings(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<BookingView>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 200",
        ));
    }
    let found = bookings::list_for_user(&app.db, user.id, limit).await?;
    Ok(Json(found.into_iter().map(Into::into).collect()))
}

/// Whose bookings a user may see: their own, or everyone's for staff.
fn visible_to(user: &CurrentUser) -> Option<Uuid> {
    (!user.role.includes(clubpulse_domain::Role::Staff)).then_some(user.id)
}

/// Opens a transaction and locks a booking the user may see; another member's is 404.
async fn lock_visible(
    app: &AppState,
    id: Uuid,
    user: &CurrentUser,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Booking), ApiError> {
    let mut tx = app.begin().await?;
    let current = bookings::lock(&mut tx, id, visible_to(user))
        .await?
        .ok_or_else(booking_not_found)?;
    Ok((tx, current))
}

fn booking_not_found() -> ApiError {
    ApiError::not_found("booking_not_found", "no such booking")
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
    bookings::find(&app.db, id, visible_to(&user))
        .await?
        .map(|b| Json(b.into()))
        .ok_or_else(booking_not_found)
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
    let (mut tx, current) = lock_visible(&app, id, &user).await?;
    match current.status {
        BookingStatus::Confirmed => return Ok(Json(current.into())),
        BookingStatus::Cancelled => {
            return Err(ApiError::conflict(
                "booking_not_active",
                "this booking was cancelled",
            ));
        }
        BookingStatus::Expired => return Err(hold_expired()),
        BookingStatus::Held => {}
    }
    let ctx = engine::load_any(&app.db, current.facility_id).await?;
    match bookings::confirm(&mut tx, id).await? {
        Some(confirmed) => {
            tx.commit()
                .await
                .map_err(clubpulse_storage::StorageError::from)?;
            engine::after_commit(
                &app,
                &ctx,
                std::slice::from_ref(&confirmed),
                BookingEventKind::Confirmed,
                Some(user.id),
            )
            .await;
            Ok(Json(confirmed.into()))
        }
        None => {
            // Held, but past its expiry: record that, and say so.
            let expired = bookings::expire(&mut tx, id).await?;
            tx.commit()
                .await
                .map_err(clubpulse_storage::StorageError::from)?;
            if let Some(expired) = expired {
                engine::after_commit(&app, &ctx, &[expired], BookingEventKind::Expired, None).await;
            }
            Err(hold_expired())
        }
    }
}

fn hold_expired() -> ApiError {
    ApiError::conflict(
        "hold_expired",
        "the hold expired before it was confirmed; the slot may have been taken",
    )
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
    let (mut tx, current) = lock_visible(&app, id, &user).await?;
    if !current.status.is_active() || current.class_id.is_some() {
        return Err(ApiError::conflict(
            "booking_not_active",
            format!("this booking is {}", current.status),
        ));
    }
    let ctx = engine::load_any(&app.db, current.facility_id).await?;
    let fee = match current.status {
        BookingStatus::Confirmed => {
            ctx.policy()
                .fee(current.price_cents, current.start, Utc::now())
        }
        _ => None,
    };
    let cancelled = bookings::cancel(&mut tx, id, fee)
        .await?
        .ok_or_else(booking_not_found)?;
    tx.commit()
        .await
        .map_err(clubpulse_storage::StorageError::from)?;
    engine::after_commit(
        &app,
        &ctx,
        std::slice::from_ref(&cancelled),
        BookingEventKind::Cancelled,
        Some(user.id),
    )
    .await;
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

pub(crate) fn span(
    from: Option<&str>,
    to: Option<&str>,
    max_days: i64,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let mut check = Validation::new();
    let from = from
        .map(|f| check.check("from", instant(f)))
        .unwrap_or(Some(Utc::now()));
    let to = match (to, from) {
        (Some(t), _) => check.check("to", instant(t)),
        (None, Some(from)) => Some(from + Duration::days(7)),
        (None, None) => None,
    };
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::validation(check.into_errors()));
    };
    if to <= from {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
            "to must be after from",
        ));
    }
    if to - from > Duration::days(max_days) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "range_too_long",
            format!("ask for at most {max_days} days at a time"),
        ));
    }
    Ok((from, to))
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
    let (from, to) = span(query.from.as_deref(), query.to.as_deref(), 31)?;
    let ctx = engine::load(&app.db, id).await?;
    let mut answer =
        availability::for_facilities(&app, std::slice::from_ref(&ctx), from, to).await?;
    answer
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no availability computed")))
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
    let mut ids = Vec::new();
    for raw in query
        .facility_ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        ids.push(raw.parse::<Uuid>().map_err(|_| {
            ApiError::invalid_field("facility_ids", format!("{raw:?} is not a facility id"))
        })?);
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() > 50 {
        return Err(ApiError::invalid_field(
            "facility_ids",
            "name 1 to 50 facilities",
        ));
    }
    let (from, to) = span(query.from.as_deref(), query.to.as_deref(), 14)?;
    let found = facilities::find_many(&app.db, &ids).await?;
    if found.len() != ids.len() {
        return Err(ApiError::not_found(
            "facility_not_found",
            "one of the facilities does not exist",
        ));
    }
    let mut contexts = Vec::with_capacity(found.len());
    for facility in found {
        let club = clubpulse_storage::clubs::find(&app.db, facility.club_id)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("facility without a club")))?;
        contexts.push(engine::context(facility, club)?);
    }
    Ok(Json(
        availability::for_facilities(&app, &contexts, from, to).await?,
    ))
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
    engine::load(&app.db, id).await?;
    let top: Vec<PopularSlot> = app
        .state
        .popularity
        .top(id, 24)
        .await
        .map_err(|e| ApiError::state(crate::error::StatePart::PopularTimes, e))?;
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
