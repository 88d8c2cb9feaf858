//! Clubs: created by admins, listed by anyone.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_domain::{CancellationPolicy, ClubName, TimeZone, Validation};
use clubpulse_storage::clubs::{self, Club};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{Admin, ApiJson, ApiPath, ReadDb},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_club, list_clubs))
        .routes(routes!(get_club))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClubView {
    pub id: Uuid,
    pub name: String,
    /// IANA time zone; slot grids and opening hours are in this zone.
    #[schema(example = "Europe/Madrid")]
    pub timezone: String,
    /// Cancelling at least this many minutes before the start is free.
    pub free_cancellation_minutes: i32,
    /// A later cancellation records this percentage of the price as a fee.
    pub late_cancellation_fee_percent: i32,
    pub created_at: DateTime<Utc>,
}

impl From<Club> for ClubView {
    fn from(c: Club) -> Self {
        Self {
            id: c.id,
            name: c.name,
            timezone: c.timezone,
            free_cancellation_minutes: c.free_cancellation_minutes,
            late_cancellation_fee_percent: c.late_cancellation_fee_percent,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClub {
    #[schema(example = "Club Deportivo Retiro")]
    pub name: String,
    #[schema(example = "Europe/Madrid")]
    pub timezone: String,
    /// Default 1440 (24 hours), at most 43200.
    #[schema(minimum = 0, maximum = 43_200)]
    pub free_cancellation_minutes: Option<i64>,
    /// Default 50, from 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub late_cancellation_fee_percent: Option<i64>,
}

/// Creates a club.
#[utoipa::path(post, path = "/clubs", tag = "clubs", request_body = CreateClub,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = ClubView), ProblemResponses))]
async fn create_club(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<CreateClub>,
) -> Result<(StatusCode, Json<ClubView>), ApiError> {
    let mut check = Validation::new();
    let name = check.check("name", ClubName::try_from(body.name.as_str()));
    let timezone = check.check("timezone", TimeZone::try_from(body.timezone.as_str()));
    let defaults = CancellationPolicy::default();
    let policy = CancellationPolicy::new(
        body.free_cancellation_minutes
            .unwrap_or(i64::from(defaults.free_minutes)),
        body.late_cancellation_fee_percent
            .unwrap_or(i64::from(defaults.fee_percent)),
    )
    .map_err(|errors| errors.into_iter().for_each(|e| check.push(e)))
    .ok();
    let (Some(name), Some(timezone), Some(policy)) = (name, timezone, policy) else {
        return Err(ApiError::validation(check.into_errors()));
    };
    let club = clubs::insert(&app.db, &name, timezone, policy).await?;
    tracing::info!(admin.id = %admin.id, club.id = %club.id, "club created");
    Ok((StatusCode::CREATED, Json(club.into())))
}

/// Every club.
#[utoipa::path(get, path = "/clubs", tag = "clubs",
    responses((status = 200, body = [ClubView]), ProblemResponses))]
async fn list_clubs(ReadDb(db): ReadDb) -> Result<Json<Vec<ClubView>>, ApiError> {
    let clubs = clubs::list(&db).await?;
    Ok(Json(clubs.into_iter().map(Into::into).collect()))
}

/// One club.
#[utoipa::path(get, path = "/clubs/{id}", tag = "clubs",
    params(("id" = Uuid, Path, description = "Club id")),
    responses((status = 200, body = ClubView), ProblemResponses))]
async fn get_club(
    ReadDb(db): ReadDb,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ClubView>, ApiError> {
    clubs::find(&db, id)
        .await?
        .map(|c| Json(c.into()))
        .ok_or_else(|| ApiError::not_found("club_not_found", "no such club"))
}
