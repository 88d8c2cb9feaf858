//! The waitlist: wait for a taken range and be offered it (a hold in your name) when it frees.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_storage::waitlist::Entry;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
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
        .routes(routes!(join_waitlist, list_waitlist))
        .routes(routes!(leave_waitlist))
}

/// A waitlist entry as its member sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitlistEntryView {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `waiting`, `offered` (a hold is yours: confirm `booking_id` before it expires), `fulfilled`
    /// (you confirmed the offer) or `expired` (the offer ran out or was released, or the time
    /// passed).
    #[schema(example = "waiting")]
    pub status: String,
    /// While `waiting`: 1 when you are first in line among those waiting for overlapping times.
    pub position: Option<i64>,
    /// The offer hold, once offered.
    pub booking_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<Entry> for WaitlistEntryView {
    fn from(e: Entry) -> Self {
        Self {
            id: e.id,
            facility_id: e.facility_id,
            start: e.start,
            end: e.end,
            status: e.status,
            position: e.position,
            booking_id: e.booking_id,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinWaitlist {
    pub facility_id: Uuid,
    /// RFC 3339 with an offset, on the facility's slot grid, as for a hold.
    #[schema(example = "2026-12-01T18:00:00+01:00")]
    pub start: String,
    #[schema(example = "2026-12-01T19:00:00+01:00")]
    pub end: String,
}

/// Waits for a taken range. When it frees (a cancellation or an expiry), the first waiter whose
/// whole range is free is offered a hold of it for `CLUBPULSE_WAITLIST_OFFER_SECONDS`, not counted
/// against the hold limit, and told by notification and e-mail.
#[utoipa::path(post, path = "/waitlist", tag = "waitlist", request_body = JoinWaitlist,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = WaitlistEntryView),
        (status = 409, description = "`slot_free` (nothing to wait for: hold it), `already_waiting` (you wait for this range already) or `waitlist_full` (`CLUBPULSE_WAITLIST_MAX_ENTRIES` open entries)", content_type = "application/problem+json"),
        (status = 422, description = "Invalid values (`validation_failed`, `invalid_range`), or the range breaks a hold's rules (off the slot grid, outside opening hours or the booking window)", content_type = "application/problem+json"),
        ProblemResponses))]
async fn join_waitlist(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<JoinWaitlist>,
) -> Result<(StatusCode, Json<WaitlistEntryView>), ApiError> {
    limits::check(&app, Policy::Booking, &user.id.to_string(), true).await?;
    let range = parse::instant_range(&body.start, &body.end)?;
    let entry = app
        .bookings
        .join_waitlist((&user).into(), body.facility_id, range)
        .await?;
    Ok((StatusCode::CREATED, Json(entry.into())))
}

/// My waitlist entries, newest first, with their status, place in line and offer hold.
#[utoipa::path(get, path = "/waitlist", tag = "waitlist", params(parse::PageQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [WaitlistEntryView]), ProblemResponses))]
async fn list_waitlist(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<parse::PageQuery>,
) -> Result<Json<Vec<WaitlistEntryView>>, ApiError> {
    let limit = query.limit()?;
    let found = app.bookings.waitlist_mine((&user).into(), limit).await?;
    Ok(Json(found.into_iter().map(Into::into).collect()))
}

/// Leaves a waitlist. Leaving an offered entry releases its hold, which passes the offer to the
/// next waiter. Another member's entry is 404 `waitlist_entry_not_found`.
#[utoipa::path(delete, path = "/waitlist/{id}", tag = "waitlist",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Waitlist entry id")),
    responses((status = 204, description = "Left the waitlist"),
        (status = 404, description = "`waitlist_entry_not_found`: unknown, or not yours", content_type = "application/problem+json"),
        ProblemResponses))]
async fn leave_waitlist(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    app.bookings.leave_waitlist((&user).into(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
