//! Clubs.

use chrono::{DateTime, Utc};
use clubpulse_domain::{CancellationPolicy, ClubName, TimeZone};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{Result, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Club {
    pub id: Uuid,
    pub name: String,
    pub timezone: String,
    /// Cancelling at least this long before the start is free.
    pub free_cancellation_minutes: i32,
    /// The fee of a later cancellation, as a percentage of the price.
    pub late_cancellation_fee_percent: i32,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, timezone, free_cancellation_minutes, late_cancellation_fee_percent, created_at";

/// Creates a club; a name already used (in any letter case) is `Conflict(ClubNameTaken)`.
pub async fn insert(
    db: impl PgExecutor<'_>,
    name: &ClubName,
    timezone: TimeZone,
    policy: CancellationPolicy,
) -> Result<Club> {
    sqlx::query_as(&format!(
        "INSERT INTO clubs (id, name, timezone, free_cancellation_minutes, late_cancellation_fee_percent)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(name.as_str())
    .bind(timezone.name())
    .bind(i32::try_from(policy.free_minutes).unwrap_or(i32::MAX))
    .bind(i32::from(policy.fee_percent))
    .fetch_one(db)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Club>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM clubs ORDER BY name, id"))
            .fetch_all(db)
            .await?,
    )
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Club>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM clubs WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn find_by_name(db: impl PgExecutor<'_>, name: &ClubName) -> Result<Option<Club>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM clubs WHERE lower(name) = lower($1)"
    ))
    .bind(name.as_str())
    .fetch_optional(db)
    .await?)
}

pub async fn count(db: impl PgExecutor<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM clubs")
        .fetch_one(db)
        .await?)
}

impl Club {
    pub fn policy(&self) -> CancellationPolicy {
        CancellationPolicy {
            free_minutes: u32::try_from(self.free_cancellation_minutes).unwrap_or(0),
            fee_percent: u8::try_from(self.late_cancellation_fee_percent).unwrap_or(100),
        }
    }
}
