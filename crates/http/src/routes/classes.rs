//! Classes: staff schedule them on a facility; members enrol for one or more places.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_booking::classes::ClassRequest;
use clubpulse_domain::{Capacity, FacilityName, Spots, Validation};
use clubpulse_storage::classes::{Class, Enrollment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiJson, ApiPath, ApiQuery, CurrentUser, Staff},
    parse,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_class, list_classes))
        .routes(routes!(get_class))
        .routes(routes!(enroll))
        .routes(routes!(cancel_enrollment))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClassView {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub title: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub capacity: i32,
    pub spots_taken: i32,
    pub spots_left: i32,
}

impl From<Class> for ClassView {
    fn from(c: Class) -> Self {
        Self {
            spots_left: c.capacity - c.spots_taken,
            id: c.id,
            facility_id: c.facility_id,
            title: c.title,
            start: c.start,
            end: c.end,
            capacity: c.capacity,
            spots_taken: c.spots_taken,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentView {
    pub id: Uuid,
    pub class_id: Uuid,
    pub user_id: Uuid,
    pub spots: i32,
    #[schema(example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<Enrollment> for EnrollmentView {
    fn from(e: Enrollment) -> Self {
        Self {
            id: e.id,
            class_id: e.class_id,
            user_id: e.user_id,
            spots: e.spots,
            status: e.status,
            created_at: e.created_at,
            cancelled_at: e.cancelled_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClass {
    pub facility_id: Uuid,
    pub title: String,
    pub start: String,
    pub end: String,
    /// 1 to 10000 places.
    #[schema(minimum = 1, maximum = 10_000)]
    pub capacity: i64,
}

/// Schedules a class; it occupies the facility like a confirmed booking.
#[utoipa::path(post, path = "/classes", tag = "classes", request_body = CreateClass,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = ClassView), ProblemResponses))]
async fn create_class(
    State(app): State<AppState>,
    Staff(staff): Staff,
    ApiJson(body): ApiJson<CreateClass>,
) -> Result<(StatusCode, Json<ClassView>), ApiError> {
    let mut check = Validation::new();
    let title = check.check("title", FacilityName::try_from(body.title.as_str()));
    let capacity = check.check("capacity", Capacity::try_from(body.capacity));
    let (Some(title), Some(capacity)) = (title, capacity) else {
        return Err(ApiError::validation(check.into_errors()));
    };
    let request = ClassRequest {
        facility_id: body.facility_id,
        title,
        range: parse::instant_range(&body.start, &body.end)?,
        capacity,
    };
    let class = app
        .bookings
        .schedule_class((&staff).into(), request)
        .await?;
    Ok((StatusCode::CREATED, Json(class.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClassQuery {
    /// Only this facility's classes.
    pub facility_id: Option<Uuid>,
}

/// Classes that have not ended, soonest first.
#[utoipa::path(get, path = "/classes", tag = "classes", params(ClassQuery),
    responses((status = 200, body = [ClassView]), ProblemResponses))]
async fn list_classes(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ClassQuery>,
) -> Result<Json<Vec<ClassView>>, ApiError> {
    let found = app.bookings.upcoming_classes(query.facility_id).await?;
    Ok(Json(found.into_iter().map(Into::into).collect()))
}

/// One class, with its places left.
#[utoipa::path(get, path = "/classes/{id}", tag = "classes",
    params(("id" = Uuid, Path, description = "Class id")),
    responses((status = 200, body = ClassView), ProblemResponses))]
async fn get_class(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ClassView>, ApiError> {
    Ok(Json(app.bookings.class(id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enroll {
    /// 1 to 100 places (default 1).
    #[schema(minimum = 1, maximum = 100)]
    pub spots: Option<i64>,
}

/// Takes places in a class; never more than its capacity, under any concurrency.
#[utoipa::path(post, path = "/classes/{id}/enrollments", tag = "classes", request_body = Enroll,
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Class id")),
    responses((status = 201, body = EnrollmentView),
        (status = 409, description = "`class_full`, or `class_started`", content_type = "application/problem+json"),
        ProblemResponses))]
async fn enroll(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Enroll>,
) -> Result<(StatusCode, Json<EnrollmentView>), ApiError> {
    let spots = Spots::try_from(body.spots.unwrap_or(1))
        .map_err(|e| ApiError::validation(vec![e.within("spots")]))?;
    let enrollment = app.bookings.enroll((&user).into(), id, spots).await?;
    Ok((StatusCode::CREATED, Json(enrollment.into())))
}

/// Cancels my enrolment and frees its places. Another member's enrolment is 404.
#[utoipa::path(post, path = "/enrollments/{id}/cancel", tag = "classes",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Enrolment id")),
    responses((status = 200, body = EnrollmentView), ProblemResponses))]
async fn cancel_enrollment(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EnrollmentView>, ApiError> {
    let cancelled = app.bookings.cancel_enrollment((&user).into(), id).await?;
    Ok(Json(cancelled.into()))
}
