//! A member's calendar feed: a URL a calendar app subscribes to, listing the member's bookings.
//!
//! Calendar apps cannot send headers, so the credential is a token in the URL: random, shown once
//! (`POST /me/calendar-feed`), stored only as its SHA-256, replaced by asking again (the old URL
//! stops working at once) and revoked by `DELETE /me/calendar-feed`. It opens nothing but the feed.
//!
//! The feed lists the member's held (`TENTATIVE`) and confirmed court bookings, and the cancelled
//! ones (`STATUS:CANCELLED`, so a calendar that had them removes them), starting from
//! [`PAST_DAYS`] days ago to the end of the booking window. Times are UTC: see
//! [`clubpulse_calendar`] for why that is right across DST changes. The iCalendar text is written
//! by that crate, the same writer as the booking page's download ([`booking_entries`] makes the
//! events for both).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Utc};
use clubpulse_calendar::{Calendar, Event, Status};
use clubpulse_domain::BookingStatus;
use clubpulse_state::SessionToken;
use clubpulse_storage::{bookings::Booking, calendar_feeds, facilities};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiQuery, CurrentUser},
};

/// How far back the feed reaches, in days: long enough for a calendar to see a recent
/// cancellation, short enough to keep the feed small.
pub const PAST_DAYS: i64 = 30;

/// Most events in one feed.
const MAX_EVENTS: i64 = 1000;

/// How long a calendar app (or a cache on its way) may keep the feed, in seconds; also the refresh
/// interval the feed suggests. A new booking shows up within this.
const MAX_AGE_SECONDS: u32 = 900;

/// The prefix of every feed token, so one is recognised when it leaks.
const FEED_TOKEN_PREFIX: &str = "cpf_";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_feed, revoke_feed))
        .routes(routes!(feed))
}

/// A new feed URL: the only time its token is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewFeedView {
    /// Subscribe to this in a calendar app. It cannot be shown again.
    #[schema(example = "https://club.example/api/v1/me/calendar.ics?token=cpf_...")]
    pub url: String,
    /// The token in `url`.
    pub token: String,
}

/// Makes (or replaces) my calendar feed; any earlier feed URL stops working.
#[utoipa::path(post, path = "/me/calendar-feed", tag = "bookings",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = NewFeedView), ProblemResponses))]
async fn create_feed(
    State(app): State<AppState>,
    user: CurrentUser,
) -> Result<(StatusCode, Json<NewFeedView>), ApiError> {
    user.session()?;
    let token = format!("{FEED_TOKEN_PREFIX}{}", SessionToken::generate().expose());
    let hash = SessionToken::from_client(&token).hash();
    calendar_feeds::replace(&app.db, user.id, hash.as_str()).await?;
    tracing::info!(user.id = %user.id, "calendar feed issued");
    let base = app.config.server.public_url.as_deref().unwrap_or("");
    Ok((
        StatusCode::CREATED,
        Json(NewFeedView {
            url: format!(
                "{}/api/v1/me/calendar.ics?token={token}",
                base.trim_end_matches('/')
            ),
            token,
        }),
    ))
}

/// Revokes my calendar feed: its URL stops working.
#[utoipa::path(delete, path = "/me/calendar-feed", tag = "bookings",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Revoked"), ProblemResponses))]
async fn revoke_feed(
    State(app): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    user.session()?;
    if !calendar_feeds::delete(&app.db, user.id).await? {
        return Err(feed_not_found());
    }
    tracing::info!(user.id = %user.id, "calendar feed revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The feed token, from `POST /me/calendar-feed`.
    pub token: Option<String>,
}

fn feed_not_found() -> ApiError {
    ApiError::not_found(
        "calendar_feed_not_found",
        "no calendar feed has this token (it was revoked or replaced)",
    )
}

/// My bookings as an iCalendar (RFC 5545) feed, for calendar apps: authenticated by the token in
/// the URL, not by a session.
#[utoipa::path(get, path = "/me/calendar.ics", tag = "bookings", params(FeedQuery),
    responses(
        (status = 200, description = "The feed", content_type = "text/calendar", body = String),
        (status = 401, description = "No token (`calendar_token_required`)",
            content_type = "application/problem+json", body = crate::error::Problem),
        (status = 404, description = "No feed has this token: wrong, revoked or replaced \
            (`calendar_feed_not_found`)",
            content_type = "application/problem+json", body = crate::error::Problem),
        (status = 400, description = "Unreadable query (`invalid_query`)",
            content_type = "application/problem+json", body = crate::error::Problem),
    ))]
async fn feed(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    let token = query.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "calendar_token_required",
            "add the feed's token: ?token=...",
        )
    })?;
    let hash = SessionToken::from_client(&token).hash();
    let user = calendar_feeds::owner(&app.db, hash.as_str())
        .await?
        .ok_or_else(feed_not_found)?;
    let now = Utc::now();
    let ahead = i64::from(app.config.booking.window_days) + 1;
    // The token is looked up on the primary (it may have just been made); the bookings are read
    // where the member's reads go, so their latest booking is in the feed.
    let db = app.bookings.reader(Some(user)).await;
    let bookings = clubpulse_storage::bookings::for_calendar(
        &db,
        user,
        now - Duration::days(PAST_DAYS),
        now + Duration::days(ahead),
        MAX_EVENTS,
    )
    .await?;
    let entries = booking_entries(&app, &bookings).await?;
    let body = Calendar {
        method: None,
        name: Some("Club Pulse bookings"),
        refresh_minutes: Some(MAX_AGE_SECONDS / 60),
        events: entries.iter().map(BookingEntry::event).collect(),
    }
    .to_ics();
    // Private: the feed is one member's. Short enough that a new booking shows up soon.
    let cache = HeaderValue::try_from(format!("private, max-age={MAX_AGE_SECONDS}"))
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/calendar; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response())
}

/// What a booking's calendar event says, owned, so that [`Event`]s can borrow it.
#[derive(Debug, Clone)]
pub struct BookingEntry {
    uid: String,
    stamp: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    summary: String,
    location: String,
    description: String,
    url: Option<String>,
    status: Status,
}

impl BookingEntry {
    pub fn event(&self) -> Event<'_> {
        Event {
            uid: &self.uid,
            stamp: self.stamp,
            start: self.start,
            end: self.end,
            summary: &self.summary,
            location: &self.location,
            description: Some(&self.description),
            url: self.url.as_deref(),
            status: self.status,
            // A cancellation is a later revision of the event, so a calendar applies it.
            sequence: u32::from(self.status == Status::Cancelled),
        }
    }
}

/// The calendar events of `bookings`, with their facilities' and clubs' names: the UID is the
/// booking's id (stable across fetches and changes), the stamp its last change.
pub async fn booking_entries(
    app: &AppState,
    bookings: &[Booking],
) -> Result<Vec<BookingEntry>, ApiError> {
    let mut ids: Vec<_> = bookings.iter().map(|b| b.facility_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let places: std::collections::HashMap<_, _> = facilities::with_clubs(&app.db, &ids, true)
        .await?
        .into_iter()
        .map(|(f, club)| (f.id, (f.name, club.name)))
        .collect();
    let base = app.config.server.public_url.as_deref().unwrap_or("");
    Ok(bookings
        .iter()
        .map(|b| {
            let (facility, club) = places.get(&b.facility_id).cloned().unwrap_or_default();
            let status = match b.status {
                BookingStatus::Held => Status::Tentative,
                BookingStatus::Cancelled | BookingStatus::Expired => Status::Cancelled,
                BookingStatus::Confirmed => Status::Confirmed,
            };
            let stamp = [
                Some(b.created_at),
                b.confirmed_at,
                b.cancelled_at,
                b.expired_at,
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(b.created_at);
            let url = (!base.is_empty())
                .then(|| format!("{}/bookings/{}", base.trim_end_matches('/'), b.id));
            BookingEntry {
                uid: format!("{}@clubpulse", b.id),
                stamp,
                start: b.start,
                end: b.end,
                summary: facility,
                location: club,
                description: format!("Club Pulse booking {}", b.id),
                url,
                status,
            }
        })
        .collect())
}
