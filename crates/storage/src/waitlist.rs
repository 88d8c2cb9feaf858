//! The waitlist: members waiting for a taken range of a facility, and the offer holds made for
//! them. The partial unique index `waitlist_one_per_member` refuses a second open entry for the same
//! range; the exclusion constraint on bookings decides whether an offer hold fits, as for any hold.

use chrono::{DateTime, Utc};
use clubpulse_domain::TimeRange;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{
    Result, StorageError,
    bookings::{Booking, COLUMNS as BOOKING_COLUMNS, HoldError, Row as BookingRow},
};

/// A waitlist entry, with its place in the queue while it waits.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub user_id: Uuid,
    #[sqlx(rename = "start_at")]
    pub start: DateTime<Utc>,
    #[sqlx(rename = "end_at")]
    pub end: DateTime<Utc>,
    /// `waiting`, `offered`, `fulfilled` or `expired`.
    pub status: String,
    /// The offer hold, once offered.
    pub booking_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// 1 for the first in line among the waiting entries whose ranges overlap this one; `None`
    /// unless waiting.
    pub position: Option<i64>,
}

/// The entry columns with the queue position, for `SELECT ... FROM waitlist_entries w`.
const COLUMNS: &str = "w.id, w.facility_id, w.user_id, lower(w.during) AS start_at, \
     upper(w.during) AS end_at, w.status, w.booking_id, w.created_at, \
     CASE WHEN w.status = 'waiting' THEN (SELECT count(*) + 1 FROM waitlist_entries o \
         WHERE o.facility_id = w.facility_id AND o.status = 'waiting' AND o.during && w.during \
           AND (o.created_at, o.id) < (w.created_at, w.id)) END AS position";

/// Why a member could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// `waitlist_one_per_member`: the member already waits for this range.
    #[error("already waiting for this range")]
    AlreadyWaiting,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Serialises joining a facility's waitlist with the relay's offers for it, for the rest of the
/// transaction: a join either sees the range taken and is seen by the relay when it frees, or sees
/// it free. Taken before any row lock, in every transaction that takes it.
pub async fn lock_facility(tx: &mut PgConnection, facility_id: Uuid) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('waitlist:' || $1::text, 0))")
        .bind(facility_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Locks the member's row, so that one member's joins count their entries one at a time.
pub async fn lock_member(tx: &mut PgConnection, user_id: Uuid) -> Result<()> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Whether an active booking (confirmed, or held and unexpired) blocks any of `[start, until)`.
pub async fn is_taken(
    db: impl PgExecutor<'_>,
    facility_id: Uuid,
    start: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM bookings
           WHERE facility_id = $1 AND blocks && tstzrange($2, $3, '[)')
             AND (status = 'confirmed' OR (status = 'held' AND hold_expires_at > now())))",
    )
    .bind(facility_id)
    .bind(start)
    .bind(until)
    .fetch_one(db)
    .await?)
}

/// Adds a waiting entry.
pub async fn insert(
    tx: &mut PgConnection,
    facility_id: Uuid,
    user_id: Uuid,
    range: &TimeRange,
) -> std::result::Result<Uuid, JoinError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO waitlist_entries (id, facility_id, user_id, during, status)
         VALUES ($1, $2, $3, tstzrange($4, $5, '[)'), 'waiting')",
    )
    .bind(id)
    .bind(facility_id)
    .bind(user_id)
    .bind(range.start())
    .bind(range.end())
    .execute(&mut *tx)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("waitlist_one_per_member") => {
            JoinError::AlreadyWaiting
        }
        _ => JoinError::Storage(StorageError::from_sqlx(err)),
    })?;
    Ok(id)
}

/// How many entries of a member are waiting or offered.
pub async fn open_count(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM waitlist_entries WHERE user_id = $1 AND status IN ('waiting', 'offered')",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?)
}

/// One entry of a member.
pub async fn find(db: impl PgExecutor<'_>, id: Uuid, user_id: Uuid) -> Result<Option<Entry>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM waitlist_entries w WHERE w.id = $1 AND w.user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?)
}

/// The entry an offer hold was made for.
pub async fn by_booking(db: impl PgExecutor<'_>, booking_id: Uuid) -> Result<Option<Entry>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM waitlist_entries w WHERE w.booking_id = $1"
    ))
    .bind(booking_id)
    .fetch_optional(db)
    .await?)
}

/// A member's entries, newest first.
pub async fn list_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    limit: i64,
) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM waitlist_entries w WHERE w.user_id = $1
         ORDER BY w.created_at DESC, w.id DESC LIMIT $2"
    ))
    .bind(user_id)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Removes a member's entry and returns it; `None` when the member has no such entry.
pub async fn delete(tx: &mut PgConnection, id: Uuid, user_id: Uuid) -> Result<Option<Entry>> {
    let found: Option<Entry> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM waitlist_entries w WHERE w.id = $1 AND w.user_id = $2 FOR UPDATE OF w"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if found.is_some() {
        sqlx::query("DELETE FROM waitlist_entries WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(found)
}

/// The waiting entries of a live facility whose range overlaps `[from, until)`, first come first
/// served, locked against a concurrent removal.
pub async fn candidates(
    tx: &mut PgConnection,
    facility_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM waitlist_entries w
         JOIN facilities f ON f.id = w.facility_id AND f.retired_at IS NULL
         WHERE w.facility_id = $1 AND w.status = 'waiting' AND w.during && tstzrange($2, $3, '[)')
         ORDER BY w.created_at, w.id LIMIT $4
         FOR UPDATE OF w"
    ))
    .bind(facility_id)
    .bind(from)
    .bind(until)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Closes a waiting entry that can no longer be offered (its time has started, or it no longer
/// fits the facility's grid).
pub async fn close_waiting(tx: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE waitlist_entries SET status = 'expired', closed_at = now()
         WHERE id = $1 AND status = 'waiting'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An offer hold to make for a waiting entry.
#[derive(Debug, Clone)]
pub struct NewOffer {
    /// Derived from the outbox event that freed the range and the entry, so a repeated delivery
    /// would make the same hold.
    pub booking_id: Uuid,
    pub entry_id: Uuid,
    pub facility_id: Uuid,
    pub user_id: Uuid,
    pub range: TimeRange,
    pub buffer_minutes: i32,
    pub offer_seconds: i64,
    pub price_cents: i64,
    pub currency: String,
}

/// Makes an offer: expires stale holds in the way (as `hold_slot` does), inserts a held booking
/// marked as an offer, and turns the entry `offered`, all or nothing. Run it in a savepoint: a
/// [`HoldError::SlotUnavailable`] (the exclusion constraint refused the hold) leaves the
/// transaction aborted until the savepoint is rolled back. `Ok(None)` when the entry was no longer
/// waiting (the caller rolls the savepoint back too).
pub async fn offer(
    tx: &mut PgConnection,
    new: &NewOffer,
) -> std::result::Result<Option<Booking>, HoldError> {
    let until = new.range.end() + chrono::Duration::minutes(i64::from(new.buffer_minutes));
    sqlx::query(
        "UPDATE bookings SET status = 'expired', expired_at = now(), changed_by = NULL
         WHERE facility_id = $1 AND status = 'held' AND hold_expires_at <= now()
           AND blocks && tstzrange($2, $3, '[)')",
    )
    .bind(new.facility_id)
    .bind(new.range.start())
    .bind(until)
    .execute(&mut *tx)
    .await?;
    let row: BookingRow = sqlx::query_as(&format!(
        "INSERT INTO bookings (id, facility_id, user_id, status, during, blocks, hold_expires_at,
             price_cents, currency, waitlist_offer)
         VALUES ($1, $2, $3, 'held', tstzrange($4, $5, '[)'), tstzrange($4, $6, '[)'),
             now() + make_interval(secs => $7), $8, $9, true)
         RETURNING {BOOKING_COLUMNS}"
    ))
    .bind(new.booking_id)
    .bind(new.facility_id)
    .bind(new.user_id)
    .bind(new.range.start())
    .bind(new.range.end())
    .bind(until)
    .bind(new.offer_seconds as f64)
    .bind(new.price_cents)
    .bind(&new.currency)
    .fetch_one(&mut *tx)
    .await?;
    let marked = sqlx::query(
        "UPDATE waitlist_entries SET status = 'offered', booking_id = $2, offered_at = now()
         WHERE id = $1 AND status = 'waiting'",
    )
    .bind(new.entry_id)
    .bind(new.booking_id)
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from_sqlx)?;
    if marked.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(Booking::try_from(row)?))
}
