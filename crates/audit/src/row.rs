//! Reading chain rows back from PostgreSQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AuditError, AuditEvent, chain::ChainedEvent, to_hash};

/// The columns of a chain row, in the order [`RawRow`] expects them.
pub(crate) const COLUMNS: &str =
    "seq, event_id, occurred_at, actor_id, action, target, ip, details, prev_hash, hash";

pub(crate) type RawRow = (
    i64,
    Uuid,
    DateTime<Utc>,
    Option<Uuid>,
    String,
    Option<String>,
    Option<String>,
    serde_json::Value,
    Vec<u8>,
    Vec<u8>,
);

pub(crate) fn decode(raw: RawRow) -> Result<ChainedEvent, AuditError> {
    let (seq, id, occurred_at, actor_id, action, target, ip, details, prev, hash) = raw;
    Ok(ChainedEvent {
        seq,
        event: AuditEvent {
            id,
            occurred_at,
            actor_id,
            action,
            target,
            ip,
            // The column's CHECK keeps it an object; anything else would fail the hash check.
            details: match details {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
        },
        prev_hash: to_hash(&prev)?,
        hash: to_hash(&hash)?,
    })
}
