//! Reading the chain for administrators: filtered, newest first, paged by seq.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{AuditError, chain::ChainedEvent, row::COLUMNS};

/// Which rows to list; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor_id: Option<Uuid>,
    /// An exact action, or a prefix ending in `.` (`booking.` lists every booking action).
    pub action: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Only rows older than this seq (the previous page's last seq).
    pub before_seq: Option<i64>,
}

/// Up to `limit` rows matching `filter`, newest first.
pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<ChainedEvent>, AuditError> {
    let (exact, prefix) = match filter.action.as_deref() {
        Some(a) if a.ends_with('.') => (None, Some(format!("{}%", escape_like(a)))),
        Some(a) => (Some(a.to_owned()), None),
        None => (None, None),
    };
    let rows: Vec<crate::row::RawRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE ($1::uuid IS NULL OR actor_id = $1)
           AND ($2::text IS NULL OR action = $2)
           AND ($3::text IS NULL OR action LIKE $3)
           AND ($4::timestamptz IS NULL OR occurred_at >= $4)
           AND ($5::timestamptz IS NULL OR occurred_at < $5)
           AND ($6::bigint IS NULL OR seq < $6)
         ORDER BY seq DESC
         LIMIT $7"
    ))
    .bind(filter.actor_id)
    .bind(exact)
    .bind(prefix)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.before_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(crate::row::decode).collect()
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
