//! The waitlist: wait for a taken range, and be offered it when it frees.
//!
//! Joining and leaving are requests; offering is the relay's work, in the transaction that delivers
//! a `booking.cancelled` or `booking.expired` event (`Bookings::offer_freed`). The member hears of
//! the offer when the relay delivers the offer hold's own `booking.held` event. An offer is a real
//! hold in the waiter's name, inserted in a savepoint so that the exclusion constraint, not this
//! code, decides whether the range is free: a refusal moves on to the next waiter. The relay's
//! advisory lock, a per-facility advisory lock shared with joins and removals, the exclusion
//! constraint and the conditional `waiting -> offered` update together make one offer per waited
//! range, however many relays and sweepers race.
//!
//! An offered entry follows its hold in the database (the `bookings_waitlist` trigger): confirmed
//! is `fulfilled`, cancelled or expired is `expired`, and that cancellation or expiry is itself a
//! freed range for the relay, so the offer passes to the next waiter.

use chrono::{DateTime, Duration, Utc};
use clubpulse_domain::{BookingStatus, TimeRange};
use clubpulse_storage::{
    bookings::{self, Booking, HoldError},
    waitlist::{self, Entry, JoinError, NewOffer},
};
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

use crate::{Actor, BookingError, Bookings, FacilityContext, Result, context, holds};

/// Waiting entries looked at per freed range.
const CANDIDATES: i64 = 100;

/// An offer the relay made: the entry and its hold.
#[derive(Debug, Clone)]
pub struct Offer {
    pub entry: Entry,
    pub booking: Booking,
}

impl Bookings {
    /// Puts the actor on the waitlist of a taken range. The range follows the rules of a hold
    /// (grid, booking window); a free range is `slot_free`, a second entry for it `already_waiting`,
    /// and more than `CLUBPULSE_WAITLIST_MAX_ENTRIES` open entries `waitlist_full`.
    pub async fn join_waitlist(
        &self,
        actor: Actor,
        facility_id: Uuid,
        range: TimeRange,
    ) -> Result<Entry> {
        let ctx = self.contexts().get(facility_id).await?;
        self.check_rules(&ctx, &range)?;
        let mut tx = self.db().begin().await?;
        waitlist::lock_facility(&mut tx, facility_id).await?;
        waitlist::lock_member(&mut tx, actor.id).await?;
        if !waitlist::is_taken(
            &mut *tx,
            facility_id,
            range.start(),
            blocks_until(&ctx, &range),
        )
        .await?
        {
            return Err(BookingError::conflict(
                "slot_free",
                "this time is free: hold it instead of waiting for it",
            ));
        }
        let id = waitlist::insert(&mut tx, facility_id, actor.id, &range)
            .await
            .map_err(|err| match err {
                JoinError::AlreadyWaiting => BookingError::conflict(
                    "already_waiting",
                    "you are already on the waitlist for this time",
                ),
                JoinError::Storage(err) => err.into(),
            })?;
        let max = self.rules().waitlist_max_entries;
        if waitlist::open_count(&mut *tx, actor.id).await? > i64::from(max) {
            return Err(BookingError::conflict(
                "waitlist_full",
                format!("you are already waiting for {max} slots; leave one first"),
            ));
        }
        let entry = waitlist::find(&mut *tx, id, actor.id)
            .await?
            .ok_or_else(|| BookingError::Corrupt("the new waitlist entry went missing".into()))?;
        tx.commit().await?;
        Ok(entry)
    }

    /// The actor's waitlist entries, newest first.
    pub async fn waitlist_mine(&self, actor: Actor, limit: i64) -> Result<Vec<Entry>> {
        let db = self.reader(Some(actor.id)).await;
        Ok(waitlist::list_for_user(&db, actor.id, limit).await?)
    }

    /// Takes the actor off a waitlist. Leaving an offered entry cancels its offer hold, which
    /// passes the offer on. Another member's entry is `waitlist_entry_not_found`.
    pub async fn leave_waitlist(&self, actor: Actor, id: Uuid) -> Result<()> {
        let not_found = || BookingError::NotFound {
            code: "waitlist_entry_not_found",
            detail: "no such waitlist entry",
        };
        let seen = waitlist::find(self.db(), id, actor.id)
            .await?
            .ok_or_else(not_found)?;
        let mut tx = self.db().begin().await?;
        // Lock order as everywhere: the facility, then the hold, then the entry (a confirmation
        // locks the hold, then its trigger the entry). Under the facility lock no relay can turn
        // the entry into an offer, so what is read next stays true but for the offer closing.
        waitlist::lock_facility(&mut tx, seen.facility_id).await?;
        let entry = waitlist::find(&mut *tx, id, actor.id)
            .await?
            .ok_or_else(not_found)?;
        let mut released = None;
        if let (Some(booking_id), "offered") = (entry.booking_id, entry.status.as_str())
            && let Some(hold) = bookings::lock(&mut tx, booking_id, Some(actor.id)).await?
            && hold.status == BookingStatus::Held
        {
            released = bookings::cancel(&mut tx, booking_id, None, actor.id).await?;
        }
        waitlist::delete(&mut tx, id, actor.id)
            .await?
            .ok_or_else(not_found)?;
        tx.commit().await?;
        if let Some(cancelled) = released {
            let ctx = context::load_any(self.db(), cancelled.facility_id).await?;
            self.settle(&ctx, std::slice::from_ref(&cancelled)).await?;
        }
        Ok(())
    }

    /// Offers a freed range `[start, blocks_until)` of `ctx`'s facility to its waiters, first come
    /// first served, in the relay's transaction: each waiter whose whole range the exclusion
    /// constraint accepts gets a hold for `CLUBPULSE_WAITLIST_OFFER_SECONDS`. `event_id` (the
    /// outbox event that freed it) fixes the holds' ids, so a repeated delivery makes the same ones.
    pub(crate) async fn offer_freed(
        &self,
        tx: &mut PgConnection,
        event_id: Uuid,
        ctx: &FacilityContext,
        start: DateTime<Utc>,
        blocks_until: DateTime<Utc>,
    ) -> Result<Vec<Offer>> {
        let facility = &ctx.facility;
        waitlist::lock_facility(tx, facility.id).await?;
        // A waiter's hold blocks its range plus the buffer, so ranges ending up to a buffer before
        // the freed time were blocked by it too.
        let from = start - Duration::minutes(i64::from(facility.buffer_minutes));
        let waiting = waitlist::candidates(tx, facility.id, from, blocks_until, CANDIDATES).await?;
        let buffer = Duration::minutes(i64::from(facility.buffer_minutes));
        // Every waiter is judged against one view of what is taken. A range that frees piece by
        // piece (two halves cancelled at once) must not go to a later waiter because the last
        // piece freed between an earlier waiter's attempt and theirs: the piece's own event
        // offers the range again, first come first served. The exclusion constraint still
        // decides each offer.
        let taken = match (
            waiting.iter().map(|e| e.start).min(),
            waiting.iter().map(|e| e.end).max(),
        ) {
            (Some(first), Some(last)) => {
                bookings::blocks(&mut *tx, &[facility.id], first, last + buffer).await?
            }
            _ => Vec::new(),
        };
        let mut offers = Vec::new();
        for entry in waiting {
            let Ok(range) = TimeRange::new(entry.start, entry.end) else {
                waitlist::close_waiting(tx, entry.id).await?;
                continue;
            };
            let until = entry.end + buffer;
            if taken.iter().any(|b| b.start < until && entry.start < b.end) {
                continue;
            }
            // The range must still be one a member could hold (not started, on the grid).
            if self.check_rules(ctx, &range).is_err() {
                waitlist::close_waiting(tx, entry.id).await?;
                continue;
            }
            let new = NewOffer {
                booking_id: crate::notifications::derived_id(
                    event_id,
                    "waitlist.hold",
                    Some(entry.id),
                ),
                entry_id: entry.id,
                facility_id: facility.id,
                user_id: entry.user_id,
                range,
                buffer_minutes: facility.buffer_minutes,
                offer_seconds: i64::try_from(self.rules().waitlist_offer_seconds)
                    .unwrap_or(i64::MAX),
                price_cents: holds::price(ctx, &range),
                currency: facility.currency.clone(),
            };
            let mut savepoint = tx.begin().await?;
            match waitlist::offer(&mut savepoint, &new).await {
                Ok(Some(booking)) => {
                    savepoint.commit().await?;
                    offers.push(Offer { entry, booking });
                }
                // Taken (by another offer, a hold, a booking), or the entry moved on.
                Ok(None) | Err(HoldError::SlotUnavailable) => savepoint.rollback().await?,
                Err(HoldError::TooManyHolds) => {
                    return Err(BookingError::Corrupt(
                        "an offer hold was counted against the hold limit".to_owned(),
                    ));
                }
                Err(HoldError::Storage(err)) => return Err(err.into()),
            }
        }
        Ok(offers)
    }
}

/// Where a hold of `range` would stop blocking the facility: its end plus the buffer.
fn blocks_until(ctx: &FacilityContext, range: &TimeRange) -> DateTime<Utc> {
    range.end() + Duration::minutes(i64::from(ctx.facility.buffer_minutes))
}
