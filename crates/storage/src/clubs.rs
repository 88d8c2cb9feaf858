//! Clubs.

use chrono::{DateTime, Utc};
use clubpulse_domain::{ClubName, TimeZone};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{Result, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Club {
    pub id: Uuid,
    pub name: String,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
}

/// Creates a club; a name already used (in any letter case) is `Conflict(ClubNameTaken)`.
pub async fn insert(db: impl PgExecutor<'_>, name: &ClubName, timezone: TimeZone) -> Result<Club> {
    sqlx::query_as(
        "INSERT INTO clubs (id, name, timezone) VALUES ($1, $2, $3)
         RETURNING id, name, timezone, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(name.as_str())
    .bind(timezone.name())
    .fetch_one(db)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Club>> {
    Ok(
        sqlx::query_as("SELECT id, name, timezone, created_at FROM clubs ORDER BY name, id")
            .fetch_all(db)
            .await?,
    )
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Club>> {
    Ok(
        sqlx::query_as("SELECT id, name, timezone, created_at FROM clubs WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn find_by_name(db: impl PgExecutor<'_>, name: &ClubName) -> Result<Option<Club>> {
    Ok(sqlx::query_as(
        "SELECT id, name, timezone, created_at FROM clubs WHERE lower(name) = lower($1)",
    )
    .bind(name.as_str())
    .fetch_optional(db)
    .await?)
}

pub async fn count(db: impl PgExecutor<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM clubs")
        .fetch_one(db)
        .await?)
}
