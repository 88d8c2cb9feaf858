//! Payments, the refunds owed and made on them, and the provider events already applied.
//!
//! Every transition is a conditional update that names the states it may leave, so a late or
//! repeated provider event finds nothing to change; the `payments_outbox` trigger writes an outbox
//! event for each change that happens.

use chrono::{DateTime, Utc};
use clubpulse_domain::{PaymentStatus, RefundReason};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Result, StorageError};

/// A payment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub provider_ref: String,
    pub client_secret: Option<String>,
    pub status: PaymentStatus,
    pub amount_cents: i64,
    pub currency: String,
    pub refunded_cents: i64,
    pub refund_reason: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub succeeded_at: Option<DateTime<Utc>>,
}

impl Payment {
    /// What may still be given back.
    pub fn refundable_cents(&self) -> i64 {
        if self.status.is_paid() {
            self.amount_cents - self.refunded_cents
        } else {
            0
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    booking_id: Uuid,
    user_id: Uuid,
    provider: String,
    provider_ref: String,
    client_secret: Option<String>,
    status: String,
    amount_cents: i64,
    currency: String,
    refunded_cents: i64,
    refund_reason: Option<String>,
    failure_message: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    succeeded_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Payment {
    type Error = StorageError;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            status: r
                .status
                .parse()
                .map_err(|_| StorageError::Corrupt(format!("payment status {:?}", r.status)))?,
            id: r.id,
            booking_id: r.booking_id,
            user_id: r.user_id,
            provider: r.provider,
            provider_ref: r.provider_ref,
            client_secret: r.client_secret,
            amount_cents: r.amount_cents,
            currency: r.currency,
            refunded_cents: r.refunded_cents,
            refund_reason: r.refund_reason,
            failure_message: r.failure_message,
            created_at: r.created_at,
            updated_at: r.updated_at,
            succeeded_at: r.succeeded_at,
        })
    }
}

const COLUMNS: &str = "id, booking_id, user_id, provider, provider_ref, client_secret, status, \
     amount_cents, currency, refunded_cents, refund_reason, failure_message, created_at, updated_at, \
     succeeded_at";

fn one(row: Option<Row>) -> Result<Option<Payment>> {
    row.map(Payment::try_from).transpose()
}

fn many(rows: Vec<Row>) -> Result<Vec<Payment>> {
    rows.into_iter().map(Payment::try_from).collect()
}

/// A payment to record.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub provider: &'static str,
    pub provider_ref: String,
    pub client_secret: Option<String>,
    pub status: PaymentStatus,
    pub amount_cents: i64,
    pub currency: String,
    /// Staff who took it on site.
    pub recorded_by: Option<Uuid>,
}

/// Records a payment; `None` when the booking already has a pending one or the provider reference
/// is known (a checkout racing another: the caller reads the one that won).
pub async fn insert(db: impl PgExecutor<'_>, new: &NewPayment) -> Result<Option<Payment>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "INSERT INTO payments (id, booking_id, user_id, provider, provider_ref, client_secret,
             status, amount_cents, currency, recorded_by, succeeded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
             CASE WHEN $7 = 'succeeded' THEN now() END)
         ON CONFLICT DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.booking_id)
    .bind(new.user_id)
    .bind(new.provider)
    .bind(&new.provider_ref)
    .bind(&new.client_secret)
    .bind(new.status.as_str())
    .bind(new.amount_cents)
    .bind(&new.currency)
    .bind(new.recorded_by)
    .fetch_optional(db)
    .await
    .map_err(StorageError::from_sqlx)?;
    one(row)
}

/// A booking's pending payment, if it has one.
pub async fn pending_for_booking(
    db: impl PgExecutor<'_>,
    booking_id: Uuid,
) -> Result<Option<Payment>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE booking_id = $1 AND status = 'pending'"
    ))
    .bind(booking_id)
    .fetch_optional(db)
    .await?;
    one(row)
}

/// How many payments a booking has had (any state): numbers each new checkout's idempotency key.
pub async fn count_for_booking(db: impl PgExecutor<'_>, booking_id: Uuid) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_one(db)
            .await?,
    )
}

/// A booking's payments, oldest first.
pub async fn list_for_booking(db: impl PgExecutor<'_>, booking_id: Uuid) -> Result<Vec<Payment>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE booking_id = $1 ORDER BY created_at, id"
    ))
    .bind(booking_id)
    .fetch_all(db)
    .await?;
    many(rows)
}

/// Locks a payment by its provider reference.
pub async fn lock_by_ref(
    tx: &mut PgConnection,
    provider: &str,
    provider_ref: &str,
) -> Result<Option<Payment>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE provider = $1 AND provider_ref = $2 FOR UPDATE"
    ))
    .bind(provider)
    .bind(provider_ref)
    .fetch_optional(&mut *tx)
    .await?;
    one(row)
}

/// Locks every paid payment of a booking that still has money to give back.
pub async fn lock_refundable(tx: &mut PgConnection, booking_id: Uuid) -> Result<Vec<Payment>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments
         WHERE booking_id = $1 AND status IN ('succeeded', 'refunded') AND refunded_cents < amount_cents
         ORDER BY created_at, id FOR UPDATE"
    ))
    .bind(booking_id)
    .fetch_all(&mut *tx)
    .await?;
    many(rows)
}

/// `pending` or `failed` → `succeeded` (`recorded_by`: the staff member who took it on site);
/// `None` when it had already succeeded (or been refunded).
pub async fn mark_succeeded(
    tx: &mut PgConnection,
    id: Uuid,
    recorded_by: Option<Uuid>,
) -> Result<Option<Payment>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE payments SET status = 'succeeded', succeeded_at = now(), updated_at = now(),
             failure_message = NULL, recorded_by = coalesce($2, recorded_by)
         WHERE id = $1 AND status IN ('pending', 'failed')
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(recorded_by)
    .fetch_optional(&mut *tx)
    .await?;
    one(row)
}

/// `pending` → `failed`; `None` otherwise (a failure never undoes a success).
pub async fn mark_failed(
    tx: &mut PgConnection,
    id: Uuid,
    message: Option<&str>,
) -> Result<Option<Payment>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE payments SET status = 'failed', failure_message = $2, updated_at = now()
         WHERE id = $1 AND status = 'pending'
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(message)
    .fetch_optional(&mut *tx)
    .await?;
    one(row)
}

/// Pending payments of `provider` created before `before`: the ones a lost webhook may have left.
pub async fn pending_before(
    db: impl PgExecutor<'_>,
    provider: &str,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Payment>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments
         WHERE status = 'pending' AND provider = $1 AND created_at < $2
         ORDER BY created_at LIMIT $3"
    ))
    .bind(provider)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    many(rows)
}

/// Records a provider event as applied; `false` when it was applied before (a repeat).
pub async fn record_event(
    tx: &mut PgConnection,
    event_id: &str,
    provider: &str,
    event_type: &str,
    payment_id: Option<Uuid>,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO payment_events (event_id, provider, type, payment_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(provider)
    .bind(event_type)
    .bind(payment_id)
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(inserted.rows_affected() == 1)
}

/// A refund owed or made.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub reason: String,
    pub status: String,
    pub provider_ref: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const REFUND_COLUMNS: &str = "id, payment_id, amount_cents, reason, status, provider_ref, attempts, \
     last_error, created_at, completed_at";

/// Records that `amount_cents` of a locked payment is owed back, capped at what is still refundable
/// (less refunds already owed); `None` when nothing is left to owe.
pub async fn owe_refund(
    tx: &mut PgConnection,
    payment: &Payment,
    amount_cents: i64,
    reason: RefundReason,
) -> Result<Option<Refund>> {
    let owed: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(amount_cents), 0)::bigint FROM payment_refunds
         WHERE payment_id = $1 AND status = 'pending'",
    )
    .bind(payment.id)
    .fetch_one(&mut *tx)
    .await?;
    let amount = amount_cents.min(payment.refundable_cents() - owed);
    if amount <= 0 {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_as(&format!(
            "INSERT INTO payment_refunds (id, payment_id, amount_cents, reason, status)
             VALUES ($1, $2, $3, $4, 'pending') RETURNING {REFUND_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(payment.id)
        .bind(amount)
        .bind(reason.as_str())
        .fetch_one(&mut *tx)
        .await?,
    ))
}

/// Pending refunds, oldest first: of one payment, or (with `None`) of every payment, created
/// before `before`.
pub async fn pending_refunds(
    db: impl PgExecutor<'_>,
    payment_id: Option<Uuid>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Refund>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM payment_refunds
         WHERE status = 'pending' AND ($1::uuid IS NULL OR payment_id = $1) AND created_at < $2
         ORDER BY created_at LIMIT $3"
    ))
    .bind(payment_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// A payment's refunds, oldest first.
pub async fn refunds_of(db: impl PgExecutor<'_>, payment_id: Uuid) -> Result<Vec<Refund>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE payment_id = $1 ORDER BY created_at, id"
    ))
    .bind(payment_id)
    .fetch_all(db)
    .await?)
}

/// Records a refund the provider made, and adds it to its payment (which turns `refunded`), in
/// one transaction; `None` when it was recorded already (two workers made the same refund, which
/// the provider's idempotency key made once).
pub async fn complete_refund(
    tx: &mut PgConnection,
    refund_id: Uuid,
    provider_ref: &str,
) -> Result<Option<Payment>> {
    let done: Option<(Uuid, i64, String)> = sqlx::query_as(
        "UPDATE payment_refunds SET status = 'succeeded', provider_ref = $2, completed_at = now(),
             attempts = attempts + 1, last_error = NULL
         WHERE id = $1 AND status = 'pending'
         RETURNING payment_id, amount_cents, reason",
    )
    .bind(refund_id)
    .bind(provider_ref)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((payment_id, amount, reason)) = done else {
        return Ok(None);
    };
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE payments SET status = 'refunded', refunded_cents = refunded_cents + $2,
             refund_reason = $3, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(payment_id)
    .bind(amount)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StorageError::from_sqlx)?;
    one(row)
}

/// Records a failed attempt at a refund; `permanent` when the provider refused it outright (it
/// stays `failed` for staff to look at, rather than being retried forever).
pub async fn refund_attempt_failed(
    db: impl PgExecutor<'_>,
    refund_id: Uuid,
    error: &str,
    permanent: bool,
) -> Result<()> {
    sqlx::query(
        "UPDATE payment_refunds SET attempts = attempts + 1, last_error = $2,
             status = CASE WHEN $3 THEN 'failed' ELSE status END,
             completed_at = CASE WHEN $3 THEN now() END
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(refund_id)
    .bind(error)
    .bind(permanent)
    .execute(db)
    .await?;
    Ok(())
}

/// One payment.
pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Payment>> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM payments WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    one(row)
}
