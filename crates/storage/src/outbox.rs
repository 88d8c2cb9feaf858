//! The transactional outbox: side effects owed by committed writes.
//!
//! Booking status changes write their events through a trigger (see the `outbox` migration); other
//! writers call [`record`] inside their own transaction. A relay takes the oldest events with
//! [`claim`], carries out their effects, and [`remove`]s them in the same transaction, so a relay
//! that dies half-way leaves its batch to the next one.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Result, StorageError};

/// The topic of a notification stored outside the relay (a webhook endpoint disabled, say): the
/// relay publishes it on its member's `user` channel. Payload: `{notification_id, user_id}`.
pub const NOTIFICATION_CREATED: &str = "notification.created";

/// The channel on which writers notify relays that events are waiting.
pub const CHANNEL: &str = "clubpulse_outbox";

/// The advisory lock that makes one relay at a time deliver, in order ("outbox" in ASCII).
pub(crate) const RELAY_LOCK: i64 = 0x6f75_7462_6f78;

/// One owed side effect.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxEvent {
    pub seq: i64,
    /// The same for every delivery of this event.
    pub event_id: Uuid,
    pub topic: String,
    pub aggregate_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// Records an event in the caller's transaction; it is delivered only if that transaction commits.
pub async fn record(
    tx: &mut PgConnection,
    topic: &str,
    aggregate_id: Uuid,
    actor_id: Option<Uuid>,
    payload: &Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (topic, aggregate_id, actor_id, payload) VALUES ($1, $2, $3, $4)",
    )
    .bind(topic)
    .bind(aggregate_id)
    .bind(actor_id)
    .bind(payload)
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from_sqlx)?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Takes the relay's lock for the rest of the transaction and returns the oldest `limit` events;
/// `None` when another relay holds the lock (it is delivering; this one need not).
pub async fn claim(tx: &mut PgConnection, limit: i64) -> Result<Option<Vec<OutboxEvent>>> {
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !got {
        return Ok(None);
    }
    let events = sqlx::query_as(
        "SELECT seq, event_id, topic, aggregate_id, actor_id, payload, created_at
         FROM outbox ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    Ok(Some(events))
}

/// Removes delivered events (in the transaction that claimed them).
pub async fn remove(tx: &mut PgConnection, seqs: &[i64]) -> Result<()> {
    sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
        .bind(seqs)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// How many events are still owed.
pub async fn pending(db: impl PgExecutor<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(db)
        .await?)
}
