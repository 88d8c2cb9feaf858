//! Bookings: holds, confirmations, cancellations and expiry. The exclusion constraint
//! `bookings_no_overlap` is the authority on double booking; these functions never check for an
//! overlap before inserting, they let PostgreSQL refuse it.

use chrono::{DateTime, Utc};
use clubpulse_domain::{BookingStatus, TimeRange};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Result, StorageError};

/// A booking row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub user_id: Uuid,
    pub status: BookingStatus,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The blocked time: the booking plus the facility's buffer.
    pub blocks_until: DateTime<Utc>,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub price_cents: i64,
    pub currency: String,
    pub cancellation_fee_cents: Option<i64>,
    pub series_id: Option<Uuid>,
    pub class_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    facility_id: Uuid,
    user_id: Uuid,
    status: String,
    start_at: DateTime<Utc>,
    end_at: DateTime<Utc>,
    blocks_until: DateTime<Utc>,
    hold_expires_at: Option<DateTime<Utc>>,
    price_cents: i64,
    currency: String,
    cancellation_fee_cents: Option<i64>,
    series_id: Option<Uuid>,
    class_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    expired_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Booking {
    type Error = StorageError;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            status: r
                .status
                .parse()
                .map_err(|_| StorageError::Corrupt(format!("booking status {:?}", r.status)))?,
            id: r.id,
            facility_id: r.facility_id,
            user_id: r.user_id,
            start: r.start_at,
            end: r.end_at,
            blocks_until: r.blocks_until,
            hold_expires_at: r.hold_expires_at,
            price_cents: r.price_cents,
            currency: r.currency,
            cancellation_fee_cents: r.cancellation_fee_cents,
            series_id: r.series_id,
            class_id: r.class_id,
            created_at: r.created_at,
            confirmed_at: r.confirmed_at,
            cancelled_at: r.cancelled_at,
            expired_at: r.expired_at,
        })
    }
}

/// The columns of [`Row`], for `RETURNING` and `SELECT`.
pub(crate) const COLUMNS: &str = "id, facility_id, user_id, status, lower(during) AS start_at, \
     upper(during) AS end_at, upper(blocks) AS blocks_until, hold_expires_at, price_cents, currency, \
     cancellation_fee_cents, series_id, class_id, created_at, confirmed_at, cancelled_at, expired_at";

fn rows(rows: Vec<Row>) -> Result<Vec<Booking>> {
    rows.into_iter().map(Booking::try_from).collect()
}

/// What a hold request asks for, already checked against the grid and the timing rules.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub facility_id: Uuid,
    pub user_id: Uuid,
    pub range: TimeRange,
    pub buffer_minutes: i32,
    pub hold_seconds: i64,
    pub price_cents: i64,
    pub currency: String,
    /// Set for the occurrences of a weekly series; the series counts once against the limit.
    pub series_id: Option<Uuid>,
    pub max_active_holds: i64,
}

/// Why a hold was refused.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The exclusion constraint refused it: the slot is taken.
    #[error("the slot is not available")]
    SlotUnavailable,
    #[error("the member already has the maximum number of active holds")]
    TooManyHolds,
    /// A deadlock or serialization failure is [`StorageError::Contention`] here, never
    /// `SlotUnavailable`: losing a race for a lock says nothing about the slot.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for HoldError {
    fn from(err: sqlx::Error) -> Self {
        if is_overlap(&err) {
            Self::SlotUnavailable
        } else {
            Self::Storage(StorageError::from_sqlx(err))
        }
    }
}

impl crate::Retryable for HoldError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Storage(err) if err.is_contention())
    }
}

/// Whether an error means "this time is taken": the exclusion constraint (23P01). A deadlock
/// (40P01) is not: it is retried ([`crate::retry_contended`]), and if it persists answered as
/// contention.
pub fn is_overlap(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.code().as_deref() == Some("23P01"),
        _ => false,
    }
}

/// A new hold, and the stale holds it expired on the way, in one round trip (the `hold_slot`
/// function, which runs as its own transaction):
///
/// 1. locks the member's row, so one member's concurrent requests count their holds one at a time;
/// 2. refuses a member at the hold limit (a series counts once);
/// 3. expires holds past their expiry that overlap the requested time, so an expired hold blocks
///    nobody even before the sweeper reaches it;
/// 4. inserts; the exclusion constraint refuses an overlap with any active booking.
pub async fn create_hold(
    db: impl PgExecutor<'_>,
    new: &NewHold,
) -> std::result::Result<(Booking, Vec<Booking>), HoldError> {
    let id = Uuid::now_v7();
    let found: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hold_slot($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(id)
    .bind(new.facility_id)
    .bind(new.user_id)
    .bind(new.range.start())
    .bind(new.range.end())
    .bind(new.buffer_minutes)
    .bind(new.hold_seconds as f64)
    .bind(new.price_cents)
    .bind(&new.currency)
    .bind(new.series_id)
    .bind(new.max_active_holds)
    .fetch_all(db)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("CP001") => {
            HoldError::TooManyHolds
        }
        _ => HoldError::from(err),
    })?;
    let (created, expired): (Vec<Booking>, Vec<Booking>) =
        rows(found)?.into_iter().partition(|b| b.id == id);
    let created = created
        .into_iter()
        .next()
        .ok_or_else(|| StorageError::Corrupt("hold_slot returned no new booking".to_owned()))?;
    Ok((created, expired))
}

/// A booking, visible to its owner, or to anyone when `owner` is `None` (staff).
pub async fn find(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<Option<Booking>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await?;
    row.map(Booking::try_from).transpose()
}

/// Locks a booking for a state change, with the same visibility rule as [`find`].
pub async fn lock(tx: &mut PgConnection, id: Uuid, owner: Option<Uuid>) -> Result<Option<Booking>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) FOR UPDATE"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(Booking::try_from).transpose()
}

/// A member's bookings, newest first.
pub async fn list_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    limit: i64,
) -> Result<Vec<Booking>> {
    let found: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE user_id = $1 AND class_id IS NULL
         ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(user_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows(found)
}

/// What a member's calendar feed shows of their court bookings starting in `[from, to)`: held and
/// confirmed ones, and cancelled ones (so that a calendar that had them removes them), by start.
/// Expired holds never were in anyone's calendar for long, and are left out.
pub async fn for_calendar(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Booking>> {
    let found: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bookings
         WHERE user_id = $1 AND class_id IS NULL AND status IN ('held', 'confirmed', 'cancelled')
           AND lower(during) >= $2 AND lower(during) < $3
         ORDER BY lower(during), id LIMIT $4"
    ))
    .bind(user_id)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows(found)
}

/// Confirms a live hold; `None` when it is no longer a live hold (the caller re-reads to say why).
/// `actor` is who confirmed it (the member, or staff).
pub async fn confirm(tx: &mut PgConnection, id: Uuid, actor: Uuid) -> Result<Option<Booking>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE bookings SET status = 'confirmed', confirmed_at = now(), changed_by = $2
         WHERE id = $1 AND status = 'held' AND hold_expires_at > now()
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(Booking::try_from).transpose()
}

/// Marks a hold found past its expiry as expired (when a confirm arrives too late).
pub async fn expire(tx: &mut PgConnection, id: Uuid) -> Result<Option<Booking>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE bookings SET status = 'expired', expired_at = now(), changed_by = NULL
         WHERE id = $1 AND status = 'held' AND hold_expires_at <= now()
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(Booking::try_from).transpose()
}

/// Cancels an active booking, recording `fee_cents` when the policy charges one; `actor` is who
/// cancelled it.
pub async fn cancel(
    tx: &mut PgConnection,
    id: Uuid,
    fee_cents: Option<i64>,
    actor: Uuid,
) -> Result<Option<Booking>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), cancellation_fee_cents = $2,
             changed_by = $3
         WHERE id = $1 AND status IN ('held', 'confirmed')
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(fee_cents)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(Booking::try_from).transpose()
}

/// Expires every hold past its expiry, if no other instance is doing it right now (a transaction-
/// scoped advisory lock makes the sweep one instance at a time). Returns what it expired.
pub async fn sweep_expired(tx: &mut PgConnection) -> Result<Vec<Booking>> {
    const SWEEPER_LOCK: i64 = 0x636c_7562_7377_6570; // "clubswep"
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SWEEPER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !got {
        return Ok(Vec::new());
    }
    let found: Vec<Row> = sqlx::query_as(&format!(
        "UPDATE bookings SET status = 'expired', expired_at = now(), changed_by = NULL
         WHERE status = 'held' AND hold_expires_at <= now()
         RETURNING {COLUMNS}"
    ))
    .fetch_all(&mut *tx)
    .await?;
    rows(found)
}

/// An active booking's blocked time, for availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Block {
    pub facility_id: Uuid,
    pub confirmed: bool,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The active bookings of these facilities whose blocked time overlaps `[from, to)`, in one query.
/// Holds past their expiry are left out: they block nobody.
pub async fn blocks(
    db: impl PgExecutor<'_>,
    facility_ids: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Block>> {
    Ok(sqlx::query_as(
        "SELECT facility_id, status = 'confirmed' AS confirmed, lower(blocks) AS start, upper(blocks) AS end
         FROM bookings
         WHERE facility_id = ANY($1) AND blocks && tstzrange($2, $3, '[)')
           AND (status = 'confirmed' OR (status = 'held' AND hold_expires_at > now()))",
    )
    .bind(facility_ids)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?)
}

/// Confirms a booking whose hold expired, if its range is still free: re-taken through the
/// exclusion constraint (under a savepoint, so a refusal leaves the caller's transaction usable),
/// never checked first. `None` when the booking is not expired or someone else holds the range.
pub async fn retake_expired(
    tx: &mut PgConnection,
    id: Uuid,
    actor: Uuid,
) -> Result<Option<Booking>> {
    sqlx::query("SAVEPOINT retake_expired")
        .execute(&mut *tx)
        .await?;
    let taken = sqlx::query_as::<_, Row>(&format!(
        "UPDATE bookings SET status = 'confirmed', confirmed_at = now(), changed_by = $2
         WHERE id = $1 AND status = 'expired'
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await;
    match taken {
        Ok(row) => {
            sqlx::query("RELEASE SAVEPOINT retake_expired")
                .execute(&mut *tx)
                .await?;
            row.map(Booking::try_from).transpose()
        }
        Err(err) if is_overlap(&err) => {
            sqlx::query("ROLLBACK TO SAVEPOINT retake_expired")
                .execute(&mut *tx)
                .await?;
            Ok(None)
        }
        Err(err) => Err(StorageError::from_sqlx(err)),
    }
}

/// Which of `ids` are live holds now: held, and not past their expiry.
pub async fn live_holds(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM bookings WHERE id = ANY($1) AND status = 'held' AND hold_expires_at > now()",
    )
    .bind(ids)
    .fetch_all(db)
    .await?)
}
