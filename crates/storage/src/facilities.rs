//! Facilities.

use chrono::{DateTime, Utc};
use clubpulse_domain::{FacilityPatch, NewFacility};
use serde_json::Value;
use sqlx::{PgExecutor, QueryBuilder};
use uuid::Uuid;

use crate::{Result, StorageError};

/// A facility row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Facility {
    pub id: Uuid,
    pub club_id: Uuid,
    pub name: String,
    pub sport: String,
    pub description: String,
    pub specifications: Value,
    pub opening_hours: Value,
    pub slot_minutes: i32,
    pub buffer_minutes: i32,
    pub price_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, club_id, name, sport, description, specifications, opening_hours, \
                       slot_minutes, buffer_minutes, price_cents, currency, created_at, updated_at";

/// Which live facilities to list, and which page.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub club_id: Option<Uuid>,
    pub sport: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Creates a facility. An unknown club is `MissingReference("club")`; a name already used by a live
/// facility of the club is `Conflict(FacilityNameTaken)`.
pub async fn insert(db: impl PgExecutor<'_>, new: &NewFacility) -> Result<Facility> {
    sqlx::query_as(&format!(
        "INSERT INTO facilities (id, club_id, name, sport, description, specifications,
             opening_hours, slot_minutes, buffer_minutes, price_cents, currency)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(new.club_id)
    .bind(new.name.as_str())
    .bind(new.sport.as_str())
    .bind(new.description.as_str())
    .bind(new.specifications.clone().into_value())
    .bind(new.opening_hours.to_json())
    .bind(i32::from(new.slot_minutes.get()))
    .bind(i32::from(new.buffer_minutes.get()))
    .bind(new.price_cents.get())
    .bind(new.currency.as_str())
    .fetch_one(db)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A live (not retired) facility.
pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Facility>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM facilities WHERE id = $1 AND retired_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// A live facility and its club, in one query (the booking path's first read).
pub async fn find_with_club(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<(Facility, crate::clubs::Club)>> {
    Ok(with_clubs(db, &[id], false).await?.pop())
}

/// Facilities with their clubs, in one query, in no particular order; unknown ids are left out, and
/// retired facilities too unless `include_retired` (bookings keep pointing at retired ones).
pub async fn with_clubs(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
    include_retired: bool,
) -> Result<Vec<(Facility, crate::clubs::Club)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        facility: Facility,
        club_name: String,
        club_timezone: String,
        club_free_cancellation_minutes: i32,
        club_late_cancellation_fee_percent: i32,
        club_created_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT f.id, f.club_id, f.name, f.sport, f.description, f.specifications, f.opening_hours,
                f.slot_minutes, f.buffer_minutes, f.price_cents, f.currency, f.created_at, f.updated_at,
                c.name AS club_name, c.timezone AS club_timezone,
                c.free_cancellation_minutes AS club_free_cancellation_minutes,
                c.late_cancellation_fee_percent AS club_late_cancellation_fee_percent,
                c.created_at AS club_created_at
         FROM facilities f JOIN clubs c ON c.id = f.club_id
         WHERE f.id = ANY($1) AND ($2 OR f.retired_at IS NULL)",
    )
    .bind(ids)
    .bind(include_retired)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let club = crate::clubs::Club {
                id: r.facility.club_id,
                name: r.club_name,
                timezone: r.club_timezone,
                free_cancellation_minutes: r.club_free_cancellation_minutes,
                late_cancellation_fee_percent: r.club_late_cancellation_fee_percent,
                created_at: r.club_created_at,
            };
            (r.facility, club)
        })
        .collect())
}

/// A facility whether live or retired (bookings keep pointing at retired ones).
pub async fn find_any(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Facility>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM facilities WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Live facilities by id, in one query.
pub async fn find_many(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<Vec<Facility>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM facilities WHERE id = ANY($1) AND retired_at IS NULL ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?)
}

/// Live facilities, by club, sport and name.
pub async fn list(db: impl PgExecutor<'_>, filter: &Filter) -> Result<Vec<Facility>> {
    let mut query = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM facilities WHERE retired_at IS NULL"
    ));
    if let Some(club_id) = filter.club_id {
        query.push(" AND club_id = ").push_bind(club_id);
    }
    if let Some(sport) = &filter.sport {
        query.push(" AND sport = ").push_bind(sport.clone());
    }
    query
        .push(" ORDER BY club_id, sport, name, id LIMIT ")
        .push_bind(filter.limit)
        .push(" OFFSET ")
        .push_bind(filter.offset);
    Ok(query.build_query_as().fetch_all(db).await?)
}

/// Applies a partial update to a live facility; `None` when there is none with that id.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    patch: &FacilityPatch,
) -> Result<Option<Facility>> {
    let mut query = QueryBuilder::new("UPDATE facilities SET updated_at = now()");
    if let Some(v) = &patch.name {
        query.push(", name = ").push_bind(v.as_str().to_owned());
    }
    if let Some(v) = &patch.sport {
        query.push(", sport = ").push_bind(v.as_str().to_owned());
    }
    if let Some(v) = &patch.description {
        query
            .push(", description = ")
            .push_bind(v.as_str().to_owned());
    }
    if let Some(v) = &patch.specifications {
        query
            .push(", specifications = ")
            .push_bind(v.clone().into_value());
    }
    if let Some(v) = &patch.opening_hours {
        query.push(", opening_hours = ").push_bind(v.to_json());
    }
    if let Some(v) = patch.slot_minutes {
        query
            .push(", slot_minutes = ")
            .push_bind(i32::from(v.get()));
    }
    if let Some(v) = patch.buffer_minutes {
        query
            .push(", buffer_minutes = ")
            .push_bind(i32::from(v.get()));
    }
    if let Some(v) = patch.price_cents {
        query.push(", price_cents = ").push_bind(v.get());
    }
    if let Some(v) = &patch.currency {
        query.push(", currency = ").push_bind(v.as_str().to_owned());
    }
    query
        .push(" WHERE id = ")
        .push_bind(id)
        .push(" AND retired_at IS NULL RETURNING ")
        .push(COLUMNS);
    query
        .build_query_as()
        .fetch_optional(db)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Retires a live facility; `false` when there is none with that id.
pub async fn retire(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE facilities SET retired_at = now(), updated_at = now()
         WHERE id = $1 AND retired_at IS NULL",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The ids of up to `limit` live facilities, newest first.
pub async fn live_ids(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM facilities WHERE retired_at IS NULL ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?)
}

pub async fn count(db: impl PgExecutor<'_>) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM facilities WHERE retired_at IS NULL")
            .fetch_one(db)
            .await?,
    )
}
