//! Request parsing shared by the routes: instants, ranges, spans and page sizes, each failure a
//! 422 naming its field.

use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Duration, FixedOffset, Utc};
use clubpulse_domain::{FieldError, TimeRange, Validation};

use crate::ApiError;

/// Parses an RFC 3339 instant; a time without an offset is refused, since it names no instant. The
/// error names no field: the caller's `Validation::check` adds it.
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

/// A span of at most `max_days` from optional `from` (default now) and `to` (default `from` + 7
/// days).
pub fn span(
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
        (None, Some(from)) => from.checked_add_signed(Duration::days(7)),
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

/// A page size: `default` when absent, otherwise within `1..=max`.
pub fn limit(field: &str, raw: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = raw.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid_field(
            field,
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

/// The query of a member's own listing: `?limit=` only.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many, newest first (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The page size asked for, checked.
    pub fn limit(&self) -> Result<i64, ApiError> {
        limit("limit", self.limit, 50, 200)
    }
}

/// Comma-separated ids, deduplicated, `1..=max` of them.
pub fn id_list(field: &str, raw: &str, max: usize) -> Result<Vec<uuid::Uuid>, ApiError> {
    let mut ids = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        ids.push(
            part.parse::<uuid::Uuid>()
                .map_err(|_| ApiError::invalid_field(field, format!("{part:?} is not an id")))?,
        );
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("name 1 to {max} ids"),
        ));
    }
    Ok(ids)
}
