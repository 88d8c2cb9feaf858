//! Members' notifications. The outbox relay inserts them in its own transaction with ids derived
//! from the outbox events they tell of, so [`insert`] of a repeated event inserts nothing.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Result, StorageError};

/// A stored notification.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A notification to store.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    pub data: Value,
}

const COLUMNS: &str = "id, user_id, kind, title, body, data, created_at, read_at";

/// Stores a notification in the caller's transaction; `None` when one with its id exists already
/// (the event it tells of was delivered before).
///
/// Stamped with the clock at the insert, not the transaction's start: the relay stores a batch's
/// notifications in one transaction, in event order, and newest-first must keep that order (a
/// confirmation and its cancellation delivered together would otherwise tie).
pub async fn insert(tx: &mut PgConnection, new: &NewNotification) -> Result<Option<Notification>> {
    sqlx::query_as(&format!(
        "INSERT INTO notifications (id, user_id, kind, title, body, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
         ON CONFLICT (id) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.user_id)
    .bind(new.kind)
    .bind(&new.title)
    .bind(&new.body)
    .bind(&new.data)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A member's notifications, newest first; only unread ones when `unread_only`.
pub async fn list_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<Notification>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(user_id)
    .bind(unread_only)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Marks one of a member's notifications read (keeping the first reading's time); `false` when the
/// member has no such notification.
pub async fn mark_read(db: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> Result<bool> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "UPDATE notifications SET read_at = coalesce(read_at, now())
         WHERE id = $1 AND user_id = $2 RETURNING id",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// Notifications by id, in no particular order (those that exist).
pub async fn by_ids(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<Vec<Notification>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?)
}
