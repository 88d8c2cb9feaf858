//! The audit log, for administrators: filtered by actor, action and time, newest first, paged by
//! seq.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use clubpulse_audit::{ChainedEvent, listing};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{Admin, ApiQuery},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only what this account did.
    pub actor: Option<Uuid>,
    /// An action (`auth.login.failed`), or every action under a prefix ending in a dot (`booking.`).
    #[param(min_length = 1, max_length = 64, pattern = r"^[a-z0-9._]+$")]
    pub action: Option<String>,
    /// From this instant (RFC 3339), inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (RFC 3339), exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Only entries older than this seq: pass the previous page's `next_before`.
    pub before: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One entry of the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Its place in the chain, from 1.
    pub seq: i64,
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    #[schema(example = "auth.login.failed")]
    pub action: String,
    #[schema(example = "booking:0193a0c4-5d1e-7c3a-9f00-2b4d6e8f0a1c")]
    pub target: Option<String>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
    /// SHA-256 of the entry and the previous entry's hash, hexadecimal.
    pub hash: String,
}

impl From<ChainedEvent> for AuditEntry {
    fn from(row: ChainedEvent) -> Self {
        Self {
            seq: row.seq,
            id: row.event.id,
            occurred_at: row.event.occurred_at,
            actor_id: row.event.actor_id,
            action: row.event.action,
            target: row.event.target,
            ip: row.event.ip,
            details: row.event.details,
            hash: hex_encode(&row.hash),
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The audit log, newest first. Entries reach it within the flush interval of being recorded.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = AuditPage), ProblemResponses))]
async fn list_audit(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = crate::parse::limit("limit", query.limit, 50, 200)?;
    let filter = filter(query)?;
    let db = app.bookings.reader(Some(admin.id)).await;
    let rows = listing::list(&db, &filter, limit)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
    let next_before = full.then(|| rows.last().map(|r| r.seq)).flatten();
    Ok(Json(AuditPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

/// The listing's filter from a query, each bad value a 422 naming its field.
fn filter(query: AuditQuery) -> Result<listing::Filter, ApiError> {
    if let Some(action) = &query.action
        && (action.is_empty()
            || action.len() > 64
            || !action
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'))
    {
        return Err(ApiError::invalid_field(
            "action",
            "an action name such as auth.login.failed, or a prefix ending in a dot",
        ));
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(ApiError::invalid_field("to", "must be after from"));
    }
    Ok(listing::Filter {
        actor_id: query.actor,
        action: query.action,
        from: query.from,
        to: query.to,
        before_seq: query.before,
    })
}
