//! The manager's dashboard data: occupancy, utilisation, bookings, revenue and unmet demand
//! ([`clubpulse_storage::stats`], which the dashboard page calls directly).

use axum::{Json, extract::State, http::StatusCode};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use clubpulse_domain::FieldError;
use clubpulse_storage::stats::{self, RangeError, Stats, StatsQuery};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiQuery, Staff},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard_stats))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// The first local date of the range, `YYYY-MM-DD` (each club's own calendar). Default: 28
    /// days before `to`.
    #[param(example = "2026-11-01", format = Date)]
    pub from: Option<String>,
    /// The local date after the last one, `YYYY-MM-DD`: the range is `[from, to)`, 1 to 366 days.
    /// Default: 28 days after `from`, or tomorrow (UTC) when neither is given, so the default range
    /// is the 28 days ending today.
    #[param(example = "2026-12-01", format = Date)]
    pub to: Option<String>,
    /// Only this club; every club when absent.
    pub club_id: Option<Uuid>,
}

/// The dashboard's data over `[from, to)` in local dates, for one club or every club: occupancy
/// by ISO weekday and local hour, utilisation per day, the busiest hours, booking outcomes,
/// revenue per currency, and unmet demand (expired holds, holds refused because the time was
/// taken, searches that found nothing, waitlist depth). *Booked* means confirmed bookings; *open*
/// comes from each facility's opening hours in its club's time zone, DST changes included.
/// Booking counts and revenue are those of the bookings that start in the range.
#[utoipa::path(get, path = "/admin/stats", tag = "admin", params(StatsParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Stats),
        (status = 403, description = "`forbidden`: staff or admins only", content_type = "application/problem+json"),
        (status = 404, description = "`club_not_found`: `club_id` names no club", content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a date that is not `YYYY-MM-DD` between 1970 and 9999), `invalid_range` (`to` not after `from`) or `range_too_long` (more than 366 days)", content_type = "application/problem+json"),
        ProblemResponses))]
async fn dashboard_stats(
    State(app): State<AppState>,
    Staff(staff): Staff,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Json<Stats>, ApiError> {
    let query = parse(&params)?;
    let db = app.bookings.reader(Some(staff.id)).await;
    let found = stats::dashboard(&db, &query).await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found("club_not_found", "no such club"))
}

/// The range asked for, defaults filled in and checked.
pub(crate) fn parse(params: &StatsParams) -> Result<StatsQuery, ApiError> {
    let mut check = clubpulse_domain::Validation::new();
    let from = params
        .from
        .as_deref()
        .map(|raw| check.check("from", date(raw)));
    let to = params.to.as_deref().map(|raw| check.check("to", date(raw)));
    let (from, to) = match (from, to) {
        (Some(Some(from)), Some(Some(to))) => (from, to),
        (Some(Some(from)), None) => (from, from + Duration::days(28)),
        (None, Some(Some(to))) => (to - Duration::days(28), to),
        (None, None) => stats::default_range(Utc::now().date_naive()),
        _ => return Err(ApiError::validation(check.into_errors())),
    };
    // Dates past 9999 cannot be written back as YYYY-MM-DD.
    if to.year() > 9999 {
        return Err(ApiError::invalid_field("to", "must be at most 9999-12-31"));
    }
    StatsQuery::new(from, to, params.club_id).map_err(|err| {
        let code = match err {
            RangeError::Empty => "invalid_range",
            RangeError::TooLong => "range_too_long",
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, err.to_string())
    })
}

/// A local date written exactly `YYYY-MM-DD`, in the years 1970 to 9999.
fn date(raw: &str) -> Result<NaiveDate, FieldError> {
    let bad = || FieldError::new("", "must be a date as YYYY-MM-DD, e.g. 2026-11-01");
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(bad());
    }
    let parsed = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| bad())?;
    if !(1970..=9999).contains(&parsed.year()) {
        return Err(FieldError::new(
            "",
            "must fall between the years 1970 and 9999",
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert!(date("2026-11-01").is_ok());
        for bad in [
            "2026-1-01",
            "2026-11-1",
            "20261101",
            "2026-02-30",
            " 2026-11-01",
            "1969-12-31",
            "2026-11-01T00:00:00Z",
            "٢٠٢٦-١١-٠١",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }
}
