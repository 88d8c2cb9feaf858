//! Outbound webhooks: the endpoints admins register and the deliveries made to them.
//!
//! The outbox relay calls [`record_deliveries`] in its own transaction; the delivery job reads a
//! delivery with [`delivery`] and records each attempt with [`record_success`] and
//! [`record_failure`]. See the `outbound_webhooks` migration for what each column means.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Result, StorageError};

/// A registered endpoint, without its secret (see [`delivery`] for the one reader of it).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
}

const ENDPOINT_COLUMNS: &str =
    "id, url, events, enabled, created_by, created_at, failing_since, disabled_at";

/// Stores a new endpoint.
pub async fn insert_endpoint(
    db: impl PgExecutor<'_>,
    url: &str,
    events: &[String],
    secret: &str,
    created_by: Uuid,
) -> Result<Endpoint> {
    sqlx::query_as(&format!(
        "INSERT INTO webhook_endpoints (url, events, secret, created_by)
         VALUES ($1, $2, $3, $4)
         RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(url)
    .bind(events)
    .bind(secret)
    .bind(created_by)
    .fetch_one(db)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Every endpoint, newest first.
pub async fn list_endpoints(db: impl PgExecutor<'_>) -> Result<Vec<Endpoint>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at DESC, id DESC"
    ))
    .fetch_all(db)
    .await?)
}

pub async fn find_endpoint(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Endpoint>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Deletes an endpoint and its deliveries; `None` when there was no such endpoint.
pub async fn delete_endpoint(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Endpoint>> {
    Ok(sqlx::query_as(&format!(
        "DELETE FROM webhook_endpoints WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// One event to deliver to every endpoint subscribed to its type.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: &'static str,
    pub created_at: DateTime<Utc>,
    pub data: Value,
}

/// Records a delivery of each event for every enabled endpoint subscribed to its type, in the
/// caller's transaction, in one statement; returns the ids of the deliveries that are new (an
/// endpoint and event delivered before record nothing).
pub async fn record_deliveries(tx: &mut PgConnection, events: &[NewEvent]) -> Result<Vec<Uuid>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    let created: Vec<DateTime<Utc>> = events.iter().map(|e| e.created_at).collect();
    let data: Vec<Value> = events.iter().map(|e| e.data.clone()).collect();
    sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, event_created_at, payload)
         SELECT e.id, ev.id, ev.event_type, ev.created_at, ev.data
         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::jsonb[])
              WITH ORDINALITY AS ev (id, event_type, created_at, data, n)
         JOIN webhook_endpoints e ON e.enabled AND e.events @> ARRAY[ev.event_type]
         ORDER BY ev.n, e.created_at, e.id
         ON CONFLICT (endpoint_id, event_id) DO NOTHING
         RETURNING id",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&created)
    .bind(&data)
    .fetch_all(&mut *tx)
    .await
    .map_err(StorageError::from_sqlx)
}

/// How a delivery stands.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `failed`, `succeeded` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, d.event_type, d.status, \
     d.attempts, d.last_status, d.last_error, d.created_at, d.last_attempt_at, d.completed_at";

/// An endpoint's deliveries, newest first.
pub async fn list_deliveries(
    db: impl PgExecutor<'_>,
    endpoint_id: Uuid,
    limit: i64,
) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
         WHERE d.endpoint_id = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT $2"
    ))
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// What a delivery job needs: the delivery, its event and its endpoint (with the secret).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Pending {
    #[sqlx(flatten)]
    pub delivery: Delivery,
    pub payload: Value,
    pub event_created_at: DateTime<Utc>,
    pub url: String,
    pub secret: String,
    pub enabled: bool,
}

/// A delivery with its event and endpoint; `None` when there is no such delivery (its endpoint
/// was deleted, or the transaction that records it has not committed).
pub async fn delivery(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Pending>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS}, d.payload, d.event_created_at, e.url, e.secret, e.enabled
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Waits until no outbox relay is in a transaction, then returns: a delivery recorded by a relay
/// that was still committing is visible after this, and one that is still missing was rolled back
/// or deleted. The wait is bounded (an error after 10 s), so waiting jobs cannot hold their
/// connections for long while a relay needs one to finish.
pub async fn wait_for_relay(db: &sqlx::PgPool) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(crate::outbox::RELAY_LOCK)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A disabled endpoint's notice when it was sent nothing for too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub endpoint_id: Uuid,
    pub url: String,
    pub created_by: Option<Uuid>,
    pub failing_since: DateTime<Utc>,
}

/// Records a successful attempt, and that the endpoint is no longer failing.
pub async fn record_success(
    tx: &mut PgConnection,
    delivery_id: Uuid,
    endpoint_id: Uuid,
    status: i32,
) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'succeeded', attempts = attempts + 1,
             last_status = $2, last_error = NULL, last_attempt_at = now(), completed_at = now()
         WHERE id = $1",
    )
    .bind(delivery_id)
    .bind(status)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<'a> {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    /// The answer's status, when one came.
    pub status: Option<i32>,
    pub error: &'a str,
    /// Whether no attempt is left (the delivery is then `dead`).
    pub last: bool,
    /// An endpoint failing for longer than this is disabled.
    pub disable_after: chrono::Duration,
}

/// Records a failed attempt, marks the endpoint failing (from now, unless it already was), and
/// disables it when it has been failing for longer than `disable_after`; returns the endpoint
/// when this call disabled it (once: a disabled endpoint is not disabled again). A delivery whose
/// endpoint this disables is `dead`, like one with no attempt left.
pub async fn record_failure(
    tx: &mut PgConnection,
    failure: &Failure<'_>,
) -> Result<Option<Disabled>> {
    // Separate statements: one statement cannot see its own change to a row.
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = $1",
    )
    .bind(failure.endpoint_id)
    .execute(&mut *tx)
    .await?;
    let disabled: Option<(Uuid, String, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE webhook_endpoints SET enabled = false, disabled_at = now()
         WHERE id = $1 AND enabled AND failing_since < now() - $2::interval
         RETURNING id, url, created_by, failing_since",
    )
    .bind(failure.endpoint_id)
    .bind(failure.disable_after)
    .fetch_optional(&mut *tx)
    .await?;
    let error: String = failure.error.chars().take(1000).collect();
    sqlx::query(
        "UPDATE webhook_deliveries SET
             status = CASE WHEN $2 THEN 'dead' ELSE 'failed' END, attempts = attempts + 1,
             last_status = $3, last_error = $4, last_attempt_at = now(),
             completed_at = CASE WHEN $2 THEN now() END
         WHERE id = $1",
    )
    .bind(failure.delivery_id)
    .bind(failure.last || disabled.is_some())
    .bind(failure.status)
    .bind(&error)
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(
        disabled.map(|(endpoint_id, url, created_by, failing_since)| Disabled {
            endpoint_id,
            url,
            created_by,
            failing_since,
        }),
    )
}

/// Notes on a delivery why it was not sent (its endpoint is disabled), leaving its status.
pub async fn record_skipped(db: impl PgExecutor<'_>, delivery_id: Uuid, why: &str) -> Result<()> {
    sqlx::query("UPDATE webhook_deliveries SET last_error = $2 WHERE id = $1")
        .bind(delivery_id)
        .bind(why)
        .execute(db)
        .await?;
    Ok(())
}
