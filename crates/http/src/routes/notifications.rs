//! A member's notifications: stored as the relay delivers booking events and waitlist offers, and
//! pushed live on the member's `user` channel as well.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_storage::notifications::Notification;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiPath, ApiQuery, CurrentUser},
    parse,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(read_notification))
}

/// A notification, as listed here and as pushed on the `user` channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: Uuid,
    /// `booking.confirmed`, `booking.cancelled`, `booking.expired`, `waitlist.offer`, ... (more
    /// kinds may be added).
    #[schema(example = "waitlist.offer")]
    pub kind: String,
    pub title: String,
    pub body: String,
    /// What it is about: `booking_id`, `facility_id`, `facility_name`, `start`, `end`, and for an
    /// offer `expires_at` and `waitlist_entry_id`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            title: n.title,
            body: n.body,
            data: n.data,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only those not read yet.
    pub unread: Option<bool>,
    /// At most this many, newest first (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// My notifications, newest first.
#[utoipa::path(get, path = "/me/notifications", tag = "notifications", params(ListQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [NotificationView]), ProblemResponses))]
async fn list_notifications(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let limit = parse::limit("limit", query.limit, 50, 200)?;
    let unread = query.unread.unwrap_or(false);
    let found = app
        .bookings
        .notifications((&user).into(), unread, limit)
        .await?;
    Ok(Json(found.into_iter().map(Into::into).collect()))
}

/// Marks one of my notifications read; reading it again changes nothing.
#[utoipa::path(post, path = "/me/notifications/{id}/read", tag = "notifications",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Notification id")),
    responses((status = 204, description = "Read"),
        (status = 404, description = "`notification_not_found`: unknown, or not yours", content_type = "application/problem+json"),
        ProblemResponses))]
async fn read_notification(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    app.bookings
        .mark_notification_read((&user).into(), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
