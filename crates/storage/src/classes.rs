//! Classes and enrolments. A class occupies its facility through a confirmed booking, so it can never
//! overlap a member's booking; its places are counted by a conditional update that PostgreSQL
//! applies atomically, with a check constraint as the last line against overselling.

use chrono::{DateTime, Utc};
use clubpulse_domain::TimeRange;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Result, StorageError, bookings::is_overlap};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Class {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub title: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub capacity: i32,
    pub spots_taken: i32,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, facility_id, title, lower(during) AS start, upper(during) AS end, \
                       capacity, spots_taken, created_at";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Enrollment {
    pub id: Uuid,
    pub class_id: Uuid,
    pub user_id: Uuid,
    pub spots: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

const ENROLLMENT_COLUMNS: &str = "id, class_id, user_id, spots, status, created_at, cancelled_at";

/// Why a class could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateClassError {
    #[error("the facility is already booked at that time")]
    SlotUnavailable,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl crate::Retryable for CreateClassError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Storage(err) if err.is_contention())
    }
}

/// What a class is made of, already validated.
#[derive(Debug, Clone)]
pub struct NewClass {
    pub facility_id: Uuid,
    pub title: String,
    pub range: TimeRange,
    pub capacity: i32,
    /// The facility's buffer, kept free after the class like after any booking.
    pub buffer_minutes: i32,
    pub created_by: Uuid,
    pub currency: String,
}

/// Creates a class and the confirmed booking that reserves its facility, in the caller's transaction.
pub async fn create(
    tx: &mut PgConnection,
    new: &NewClass,
) -> std::result::Result<Class, CreateClassError> {
    let map = |e: sqlx::Error| {
        if is_overlap(&e) {
            CreateClassError::SlotUnavailable
        } else {
            CreateClassError::Storage(StorageError::from_sqlx(e))
        }
    };
    let class: Class = sqlx::query_as(&format!(
        "INSERT INTO classes (id, facility_id, title, during, capacity, created_by)
         VALUES ($1, $2, $3, tstzrange($4, $5, '[)'), $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(new.facility_id)
    .bind(&new.title)
    .bind(new.range.start())
    .bind(new.range.end())
    .bind(new.capacity)
    .bind(new.created_by)
    .fetch_one(&mut *tx)
    .await
    .map_err(map)?;
    sqlx::query(
        "INSERT INTO bookings (id, facility_id, user_id, status, during, blocks, price_cents,
             currency, class_id, confirmed_at)
         VALUES ($1, $2, $3, 'confirmed', tstzrange($4, $5, '[)'),
             tstzrange($4, $5 + make_interval(mins => $6), '[)'), 0, $7, $8, now())",
    )
    .bind(Uuid::now_v7())
    .bind(new.facility_id)
    .bind(new.created_by)
    .bind(new.range.start())
    .bind(new.range.end())
    .bind(new.buffer_minutes)
    .bind(&new.currency)
    .bind(class.id)
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    Ok(class)
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Class>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM classes WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Classes of a facility that have not ended, soonest first.
pub async fn upcoming(db: impl PgExecutor<'_>, facility_id: Option<Uuid>) -> Result<Vec<Class>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM classes
         WHERE ($1::uuid IS NULL OR facility_id = $1) AND upper(during) > now()
         ORDER BY lower(during), id LIMIT 200"
    ))
    .bind(facility_id)
    .fetch_all(db)
    .await?)
}

/// Why an enrolment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("no such class")]
    NotFound,
    #[error("the class has already started")]
    Started,
    #[error("not enough places left")]
    Full,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for EnrollError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::from_sqlx(e))
    }
}

/// Takes `spots` places of a class for a member, in the caller's transaction. The places are taken
/// by one conditional `UPDATE`: under any concurrency PostgreSQL applies it to the current count, so
/// it either fits and is counted or changes nothing.
pub async fn enroll(
    tx: &mut PgConnection,
    class_id: Uuid,
    user_id: Uuid,
    spots: i32,
) -> std::result::Result<Enrollment, EnrollError> {
    let taken: Option<Uuid> = sqlx::query_scalar(
        "UPDATE classes SET spots_taken = spots_taken + $2
         WHERE id = $1 AND spots_taken + $2 <= capacity AND lower(during) > now()
         RETURNING id",
    )
    .bind(class_id)
    .bind(spots)
    .fetch_optional(&mut *tx)
    .await?;
    if taken.is_none() {
        let class = find(&mut *tx, class_id)
            .await?
            .ok_or(EnrollError::NotFound)?;
        return Err(if class.start <= Utc::now() {
            EnrollError::Started
        } else {
            EnrollError::Full
        });
    }
    Ok(sqlx::query_as(&format!(
        "INSERT INTO enrollments (id, class_id, user_id, spots, status)
         VALUES ($1, $2, $3, $4, 'active') RETURNING {ENROLLMENT_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(class_id)
    .bind(user_id)
    .bind(spots)
    .fetch_one(&mut *tx)
    .await?)
}

/// Cancels an active enrolment of `user_id` (any user's when `None`) and frees its places.
pub async fn cancel_enrollment(
    tx: &mut PgConnection,
    id: Uuid,
    user_id: Option<Uuid>,
) -> Result<Option<Enrollment>> {
    let cancelled: Option<Enrollment> = sqlx::query_as(&format!(
        "UPDATE enrollments SET status = 'cancelled', cancelled_at = now()
         WHERE id = $1 AND status = 'active' AND ($2::uuid IS NULL OR user_id = $2)
         RETURNING {ENROLLMENT_COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(enrollment) = &cancelled {
        sqlx::query("UPDATE classes SET spots_taken = spots_taken - $2 WHERE id = $1")
            .bind(enrollment.class_id)
            .bind(enrollment.spots)
            .execute(&mut *tx)
            .await?;
    }
    Ok(cancelled)
}

/// An enrolment visible to `user_id` (any when `None`).
pub async fn find_enrollment(
    db: impl PgExecutor<'_>,
    id: Uuid,
    user_id: Option<Uuid>,
) -> Result<Option<Enrollment>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?)
}

/// Sum of active enrolled places of a class, counted from the enrolment rows (for checking the
/// maintained counter).
pub async fn enrolled_spots(db: impl PgExecutor<'_>, class_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(spots), 0)::bigint FROM enrollments WHERE class_id = $1 AND status = 'active'",
    )
    .bind(class_id)
    .fetch_one(db)
    .await?)
}
