//! Facilities: listed and read by anyone, created, edited and retired by staff.

use axum::{Json, extract::State, http::StatusCode};
use clubpulse_audit::{AuditEvent, action};
use clubpulse_domain::{FacilityInput, FacilityPatch, NewFacility, Sport};
use clubpulse_storage::facilities::{self, Filter};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiJson, ApiPath, ApiQuery, ReadDb, Staff},
    views::FacilityView,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_facilities, create_facility))
        .routes(routes!(get_facility, update_facility, retire_facility))
}

/// The editable fields of a facility. On create, `name` and `sport` are required and the rest
/// default (opening hours 07:00–23:00 every day, 30-minute slots, no buffer, free, EUR); on update
/// every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacilityFields {
    pub name: Option<String>,
    pub sport: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub specifications: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub opening_hours: Option<Value>,
    /// A multiple of 5 from 5 to 480.
    #[schema(minimum = 5, maximum = 480, multiple_of = 5)]
    pub slot_minutes: Option<i64>,
    /// 0 to 240.
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_minutes: Option<i64>,
    /// 0 to 100000000 (minor units).
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
}

impl From<FacilityFields> for FacilityInput {
    fn from(f: FacilityFields) -> Self {
        Self {
            name: f.name,
            sport: f.sport,
            description: f.description,
            specifications: f.specifications,
            opening_hours: f.opening_hours,
            slot_minutes: f.slot_minutes,
            buffer_minutes: f.buffer_minutes,
            price_cents: f.price_cents,
            currency: f.currency,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFacility {
    pub club_id: Uuid,
    #[serde(flatten)]
    pub fields: FacilityFields,
}

// The schema of [`CreateFacility`], written out flat rather than derived: the derived one is an
// `allOf` of `FacilityFields` (which forbids other properties) and `club_id`, which nothing can
// satisfy.
/// A new facility: its club and the editable fields, `name` and `sport` required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateFacility)]
#[allow(dead_code)]
struct CreateFacilitySchema {
    club_id: Uuid,
    name: String,
    #[schema(example = "padel")]
    sport: String,
    description: Option<String>,
    /// Structured facts: `covered`, `lighting`, `surface`, `capacity`, `amenities`…
    #[schema(value_type = Option<Object>)]
    specifications: Option<Value>,
    /// Per weekday, `[open, close]` pairs in the club's local time (default 07:00–23:00).
    #[schema(value_type = Option<Object>)]
    opening_hours: Option<Value>,
    /// A multiple of 5 from 5 to 480 (default 30).
    #[schema(minimum = 5, maximum = 480, multiple_of = 5)]
    slot_minutes: Option<i64>,
    /// Minutes kept free after each booking, 0 to 240 (default 0).
    #[schema(minimum = 0, maximum = 240)]
    buffer_minutes: Option<i64>,
    /// Price of one slot in the currency's minor unit, 0 to 100000000 (default 0).
    #[schema(minimum = 0, maximum = 100_000_000)]
    price_cents: Option<i64>,
    /// Default `EUR`.
    currency: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this club's facilities.
    pub club_id: Option<Uuid>,
    /// Only this sport.
    pub sport: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Rows to skip, 0 to 100000 (default 0).
    #[param(minimum = 0, maximum = 100_000)]
    pub offset: Option<i64>,
}

/// Live facilities, by club, sport and name.
#[utoipa::path(get, path = "/facilities", tag = "facilities", params(ListQuery),
    responses((status = 200, body = [FacilityView]), ProblemResponses))]
async fn list_facilities(
    ReadDb(db): ReadDb,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<FacilityView>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 200",
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if !(0..=100_000).contains(&offset) {
        return Err(ApiError::invalid_field(
            "offset",
            "must be between 0 and 100000",
        ));
    }
    let sport = query
        .sport
        .map(|s| {
            Sport::try_from(s.as_str()).map_err(|e| ApiError::validation(vec![e.within("sport")]))
        })
        .transpose()?;
    let filter = Filter {
        club_id: query.club_id,
        sport: sport.map(|s| s.as_str().to_owned()),
        limit,
        offset,
    };
    let rows = facilities::list(&db, &filter).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// One facility.
#[utoipa::path(get, path = "/facilities/{id}", tag = "facilities",
    params(("id" = Uuid, Path, description = "Facility id")),
    responses((status = 200, body = FacilityView), ProblemResponses))]
async fn get_facility(
    ReadDb(db): ReadDb,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<FacilityView>, ApiError> {
    facilities::find(&db, id)
        .await?
        .map(|f| Json(f.into()))
        .ok_or_else(facility_not_found)
}

fn facility_not_found() -> ApiError {
    ApiError::not_found("facility_not_found", "no such facility")
}

/// Creates a facility in a club.
#[utoipa::path(post, path = "/facilities", tag = "facilities", request_body = CreateFacilitySchema,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = FacilityView), ProblemResponses))]
async fn create_facility(
    State(app): State<AppState>,
    Staff(staff): Staff,
    ApiJson(body): ApiJson<CreateFacility>,
) -> Result<(StatusCode, Json<FacilityView>), ApiError> {
    let new = NewFacility::parse(body.club_id, body.fields.into()).map_err(ApiError::validation)?;
    let facility = facilities::insert(&app.db, &new).await?;
    tracing::info!(staff.id = %staff.id, facility.id = %facility.id, "facility created");
    queue_indexing(&app, facility.id).await;
    app.audit
        .record(
            AuditEvent::new(action::FACILITY_CREATED)
                .actor(staff.id)
                .target("facility", facility.id)
                .detail("club_id", facility.club_id.to_string())
                .detail("name", facility.name.as_str()),
        )
        .await;
    Ok((StatusCode::CREATED, Json(facility.into())))
}

/// Changes some fields of a facility.
#[utoipa::path(patch, path = "/facilities/{id}", tag = "facilities", request_body = FacilityFields,
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Facility id")),
    responses((status = 200, body = FacilityView), ProblemResponses))]
async fn update_facility(
    State(app): State<AppState>,
    Staff(staff): Staff,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<FacilityFields>,
) -> Result<Json<FacilityView>, ApiError> {
    let patch = FacilityPatch::parse(body.into()).map_err(ApiError::validation)?;
    if patch.is_empty() {
        return Err(ApiError::invalid_field(
            "",
            "name at least one field to change",
        ));
    }
    let facility = facilities::update(&app.db, id, &patch)
        .await?
        .ok_or_else(facility_not_found)?;
    app.bookings.facility_changed(id).await;
    tracing::info!(staff.id = %staff.id, facility.id = %id, "facility updated");
    queue_indexing(&app, id).await;
    app.audit
        .record(
            AuditEvent::new(action::FACILITY_UPDATED)
                .actor(staff.id)
                .target("facility", id),
        )
        .await;
    Ok(Json(facility.into()))
}

/// Retires a facility: it is no longer listed or bookable; its history stays.
#[utoipa::path(delete, path = "/facilities/{id}", tag = "facilities",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Facility id")),
    responses((status = 204, description = "Retired"), ProblemResponses))]
async fn retire_facility(
    State(app): State<AppState>,
    Staff(staff): Staff,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if facilities::retire(&app.db, id).await? {
        app.bookings.facility_changed(id).await;
        tracing::info!(staff.id = %staff.id, facility.id = %id, "facility retired");
        app.audit
            .record(
                AuditEvent::new(action::FACILITY_RETIRED)
                    .actor(staff.id)
                    .target("facility", id),
            )
            .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(facility_not_found())
    }
}

/// Queues (re-)indexing of a facility for search. A failure is logged, not returned: the facility
/// is written, and the periodic sweep of unindexed facilities picks it up.
async fn queue_indexing(app: &AppState, facility_id: Uuid) {
    let job = clubpulse_workers::IndexFacility { facility_id };
    if let Err(err) = app.jobs.push(&job).await {
        tracing::warn!(error = %err, facility.id = %facility_id, "could not queue search indexing");
    }
}
