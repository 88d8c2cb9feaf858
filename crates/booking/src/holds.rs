//! Holds, weekly series, confirmation and cancellation.
//!
//! A hold is one round trip (`hold_slot`); confirm and cancel lock the booking and do everything in
//! that one transaction on one connection, facility included. The outbox events are written by the
//! database in the same transactions.

use chrono::Utc;
use clubpulse_domain::{BookingStatus, TimeRange, Weeks};
use clubpulse_storage::bookings::{self, Booking, HoldError, NewHold};
use uuid::Uuid;

use crate::{Actor, BookingError, Bookings, FacilityContext, Result, alternatives, context};

/// The outcome of one occurrence of a weekly series: its range when the calendar has one, and
/// the hold or why it was refused.
#[derive(Debug)]
pub struct Occurrence {
    pub range: Option<TimeRange>,
    pub outcome: Result<Booking>,
}

/// A weekly series: its id and every occurrence's outcome, in order.
#[derive(Debug)]
pub struct Series {
    pub id: Uuid,
    pub occurrences: Vec<Occurrence>,
}

impl Bookings {
    /// Holds `range` at a facility for `CLUBPULSE_HOLD_SECONDS`; a taken slot is
    /// [`BookingError::SlotUnavailable`] with free alternatives.
    pub async fn hold(&self, actor: Actor, facility_id: Uuid, range: TimeRange) -> Result<Booking> {
        let ctx = self.contexts().get(facility_id).await?;
        self.check_rules(&ctx, &range)?;
        self.hold_in(&ctx, actor, range, None).await
    }

    /// Holds the same local time every week for `weeks` weeks, each occurrence on its own; the
    /// series counts once against the hold limit. Only a failure of the service itself fails the
    /// whole call.
    pub async fn hold_weekly(
        &self,
        actor: Actor,
        facility_id: Uuid,
        first: TimeRange,
        weeks: Weeks,
    ) -> Result<Series> {
        let ctx = self.contexts().get(facility_id).await?;
        let id = Uuid::now_v7();
        let mut occurrences = Vec::new();
        for occurrence in clubpulse_domain::weekly(ctx.time_zone(), &first, u32::from(weeks.get()))
        {
            let (range, outcome) = match occurrence {
                Err(err) => (None, Err(BookingError::rule(err.code(), err.to_string()))),
                Ok(range) => {
                    let outcome = match self.check_rules(&ctx, &range) {
                        Err(err) => Err(err),
                        Ok(()) => self.hold_in(&ctx, actor, range, Some(id)).await,
                    };
                    (Some(range), outcome)
                }
            };
            if let Err(
                err @ (BookingError::Storage(_)
                | BookingError::State(_)
                | BookingError::PopularTimes(_)
                | BookingError::Corrupt(_)),
            ) = outcome
            {
                return Err(err);
            }
            occurrences.push(Occurrence { range, outcome });
        }
        Ok(Series { id, occurrences })
    }

    /// Checks a request against the facility's grid and the booking window.
    pub(crate) fn check_rules(&self, ctx: &FacilityContext, range: &TimeRange) -> Result<()> {
        self.window()
            .check(range, Utc::now())
            .map_err(|e| BookingError::rule(e.code(), e.to_string()))?;
        ctx.grid
            .fit(range)
            .map_err(|e| BookingError::rule(e.code(), e.to_string()))?;
        Ok(())
    }

    async fn hold_in(
        &self,
        ctx: &FacilityContext,
        actor: Actor,
        range: TimeRange,
        series_id: Option<Uuid>,
    ) -> Result<Booking> {
        let rules = self.rules();
        let new = NewHold {
            facility_id: ctx.facility.id,
            user_id: actor.id,
            range,
            buffer_minutes: ctx.facility.buffer_minutes,
            hold_seconds: i64::try_from(rules.hold_seconds).unwrap_or(i64::MAX),
            price_cents: price(ctx, &range),
            currency: ctx.facility.currency.clone(),
            series_id,
            max_active_holds: i64::from(rules.max_active_holds),
        };
        // hold_slot is one transaction: a deadlock with a rival is retried, not reported as a clash.
        match clubpulse_storage::retry_contended(|| bookings::create_hold(self.db(), &new)).await {
            Ok((booking, mut expired)) => {
                expired.push(booking);
                self.settle(ctx, &expired).await?;
                expired
                    .pop()
                    .ok_or_else(|| BookingError::Corrupt("the new hold went missing".to_owned()))
            }
            Err(HoldError::SlotUnavailable) => {
                self.record_conflict(ctx, &range).await;
                Err(BookingError::SlotUnavailable {
                    alternatives: alternatives::for_conflict(self, ctx, &range).await?,
                })
            }
            Err(HoldError::TooManyHolds) => Err(BookingError::conflict(
                "too_many_holds",
                format!(
                    "you already hold {} slots; confirm or cancel one first",
                    rules.max_active_holds
                ),
            )),
            Err(HoldError::Storage(err)) => Err(err.into()),
        }
    }

    /// Records a refused hold as unmet demand for the dashboard. `hold_slot` has already rolled
    /// back, so this is one INSERT on its own, after it; recording is best effort: a failure is
    /// logged, and the member still hears that the time is taken. One row per refusal, written
    /// now rather than batched: the refusal path already reads the facility's alternatives, one
    /// more small insert does not show beside them, and a batch held in memory would be lost with
    /// the process.
    async fn record_conflict(&self, ctx: &FacilityContext, range: &TimeRange) {
        metrics::counter!("clubpulse_booking_conflicts_total").increment(1);
        let (_, local_hour) =
            clubpulse_domain::local_weekday_hour(ctx.grid.time_zone(), range.start());
        let conflict = clubpulse_storage::demand::Conflict {
            facility_id: ctx.facility.id,
            club_id: ctx.facility.club_id,
            start: range.start(),
            end: range.end(),
            local_date: ctx.grid.local_date(range.start()),
            local_hour,
        };
        if let Err(err) = clubpulse_storage::demand::record_conflict(self.db(), &conflict).await {
            tracing::warn!(error = %err, facility.id = %ctx.facility.id, "a refused hold could not be recorded as unmet demand");
        }
    }

    /// One booking the actor may see.
    pub async fn find(&self, actor: Actor, id: Uuid) -> Result<Booking> {
        bookings::find(self.db(), id, actor.owner_filter())
            .await?
            .ok_or_else(BookingError::booking_not_found)
    }

    /// The actor's own bookings, newest first.
    pub async fn list_mine(&self, actor: Actor, limit: i64) -> Result<Vec<Booking>> {
        let db = self.reader(Some(actor.id)).await;
        Ok(bookings::list_for_user(&db, actor.id, limit).await?)
    }

    /// Confirms a live hold (after payment, or where the club takes payment on site); confirming a
    /// confirmed booking changes nothing. A hold found past its expiry is recorded as expired and
    /// refused with `hold_expired`.
    pub async fn confirm(&self, actor: Actor, id: Uuid) -> Result<Booking> {
        let mut tx = self.db().begin().await?;
        let current = bookings::lock(&mut tx, id, actor.owner_filter())
            .await?
            .ok_or_else(BookingError::booking_not_found)?;
        match current.status {
            BookingStatus::Confirmed => return Ok(current),
            BookingStatus::Cancelled => {
                return Err(BookingError::conflict(
                    "booking_not_active",
                    "this booking was cancelled",
                ));
            }
            BookingStatus::Expired => return Err(BookingError::hold_expired()),
            BookingStatus::Held => {}
        }
        if self.payment_required(actor, &current) {
            return Err(BookingError::conflict(
                "payment_required",
                "this booking is confirmed by its payment: start a checkout",
            ));
        }
        let ctx = context::load_any(&mut *tx, current.facility_id).await?;
        let confirmed = bookings::confirm(&mut tx, id, actor.id).await?;
        let changed = match &confirmed {
            Some(confirmed) => confirmed.clone(),
            // Held, but past its expiry: record that, and say so.
            None => bookings::expire(&mut tx, id).await?.unwrap_or(current),
        };
        tx.commit().await?;
        self.settle(&ctx, std::slice::from_ref(&changed)).await?;
        confirmed.ok_or_else(BookingError::hold_expired)
    }

    /// Cancels a hold or a booking and frees the slot. A confirmed booking cancelled later than the
    /// club's policy allows records a fee; what its payments took is refunded, less that fee.
    pub async fn cancel(&self, actor: Actor, id: Uuid) -> Result<Booking> {
        let mut tx = self.db().begin().await?;
        let current = bookings::lock(&mut tx, id, actor.owner_filter())
            .await?
            .ok_or_else(BookingError::booking_not_found)?;
        if !current.status.is_active() || current.class_id.is_some() {
            return Err(BookingError::conflict(
                "booking_not_active",
                format!("this booking is {}", current.status),
            ));
        }
        let ctx = context::load_any(&mut *tx, current.facility_id).await?;
        let fee = match current.status {
            BookingStatus::Confirmed => {
                ctx.policy()
                    .fee(current.price_cents, current.start, Utc::now())
            }
            _ => None,
        };
        let cancelled = bookings::cancel(&mut tx, id, fee, actor.id)
            .await?
            .ok_or_else(BookingError::booking_not_found)?;
        let refunding = self.owe_cancellation_refunds(&mut tx, &cancelled).await?;
        tx.commit().await?;
        self.settle(&ctx, std::slice::from_ref(&cancelled)).await?;
        for payment_id in refunding {
            // Owed in the cancellation's transaction: a failure here is retried by reconciliation.
            if let Err(err) = self.make_refunds(Some(payment_id)).await {
                tracing::warn!(error = %err, payment.id = %payment_id, "a cancellation's refund could not be made yet");
            }
        }
        Ok(cancelled)
    }
}

/// The price of a range: the slot price times the slots it covers.
pub(crate) fn price(ctx: &FacilityContext, range: &TimeRange) -> i64 {
    let slots = range.duration().num_minutes() / i64::from(ctx.facility.slot_minutes.max(1));
    ctx.facility.price_cents.saturating_mul(slots)
}
