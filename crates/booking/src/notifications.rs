//! Members' notifications: what they say about a booking event or a waitlist offer, the ids that
//! make them exactly-once, and reading them.
//!
//! The relay writes them (see [`crate::relay`]) in the transaction that delivers the outbox event
//! they tell of. Each id is derived from that event's id, so a redelivered event finds its
//! notification already stored and creates (and publishes) nothing new.

use chrono::{DateTime, Utc};
use clubpulse_domain::{BookingEventKind, RefundReason};
use clubpulse_storage::notifications::{self, NewNotification, Notification};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Actor, BookingError, Bookings, FacilityContext, Result};

/// What a notification is about. New kinds (`payment.refunded`, say) are a variant and a name here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    BookingConfirmed,
    BookingCancelled,
    /// A hold ran out before it was confirmed.
    BookingExpired,
    /// A slot the member waited for is held for them.
    WaitlistOffer,
    /// Money was given back (a cancellation, or a payment that came after the slot was taken).
    PaymentRefunded,
}

impl Kind {
    /// Every kind, in the API's order.
    pub const ALL: [Kind; 5] = [
        Kind::BookingConfirmed,
        Kind::BookingCancelled,
        Kind::BookingExpired,
        Kind::WaitlistOffer,
        Kind::PaymentRefunded,
    ];

    /// The stable name clients branch on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BookingConfirmed => "booking.confirmed",
            Self::BookingCancelled => "booking.cancelled",
            Self::BookingExpired => "booking.expired",
            Self::WaitlistOffer => "waitlist.offer",
            Self::PaymentRefunded => "payment.refunded",
        }
    }
}

/// A stable id for what `event_id` causes, told apart by `purpose` (and `part`, when one event
/// causes several): the same on every delivery of the event.
pub(crate) fn derived_id(event_id: Uuid, purpose: &str, part: Option<Uuid>) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(event_id.as_bytes());
    hash.update(purpose.as_bytes());
    if let Some(part) = part {
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The facts of a booking a notification speaks of.
pub(crate) struct About<'a> {
    pub booking_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub ctx: &'a FacilityContext,
}

impl About<'_> {
    /// `Court 3 on Sat 5 Dec, 18:00–19:00`, in the club's time.
    fn what(&self) -> String {
        let tz = self.ctx.time_zone().tz();
        let (start, end) = (self.start.with_timezone(&tz), self.end.with_timezone(&tz));
        let until = if start.date_naive() == end.date_naive() {
            end.format("%H:%M").to_string()
        } else {
            end.format("%a %-d %b, %H:%M").to_string()
        };
        format!(
            "{} on {}–{until}",
            self.ctx.facility.name,
            start.format("%a %-d %b, %H:%M")
        )
    }

    fn data(&self) -> Value {
        json!({
            "booking_id": self.booking_id,
            "facility_id": self.ctx.facility.id,
            "facility_name": self.ctx.facility.name,
            "start": self.start,
            "end": self.end,
        })
    }
}

/// The notification a booking event gives its member, if any (a new hold says nothing: the member
/// just asked for it).
pub(crate) fn for_booking_event(
    event_id: Uuid,
    user_id: Uuid,
    kind: BookingEventKind,
    offer: bool,
    about: &About<'_>,
) -> Option<NewNotification> {
    let what = about.what();
    let (kind, title, body) = match (kind, offer) {
        (BookingEventKind::Held, _) => return None,
        (BookingEventKind::Confirmed, _) => (
            Kind::BookingConfirmed,
            "Booking confirmed",
            format!("Your booking of {what} is confirmed."),
        ),
        (BookingEventKind::Cancelled, false) => (
            Kind::BookingCancelled,
            "Booking cancelled",
            format!("Your booking of {what} was cancelled."),
        ),
        (BookingEventKind::Cancelled, true) => (
            Kind::BookingCancelled,
            "Waitlist offer withdrawn",
            format!("The slot held for you from the waitlist, {what}, was released."),
        ),
        (BookingEventKind::Expired, false) => (
            Kind::BookingExpired,
            "Hold expired",
            format!("Your hold of {what} expired before it was confirmed; the slot is free again."),
        ),
        (BookingEventKind::Expired, true) => (
            Kind::BookingExpired,
            "Waitlist offer expired",
            format!(
                "The slot held for you from the waitlist, {what}, was not confirmed in time and \
                 has passed to the next member waiting."
            ),
        ),
    };
    Some(NewNotification {
        id: derived_id(event_id, kind.as_str(), None),
        user_id,
        kind: kind.as_str(),
        title: title.to_owned(),
        body,
        data: about.data(),
    })
}

/// The notification of a waitlist offer made because of `event_id`.
pub(crate) fn for_offer(
    event_id: Uuid,
    entry_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    about: &About<'_>,
) -> NewNotification {
    let tz = about.ctx.time_zone().tz();
    let mut data = about.data();
    if let Value::Object(map) = &mut data {
        map.insert("expires_at".to_owned(), json!(expires_at));
        map.insert("waitlist_entry_id".to_owned(), json!(entry_id));
    }
    NewNotification {
        id: derived_id(event_id, Kind::WaitlistOffer.as_str(), Some(entry_id)),
        user_id,
        kind: Kind::WaitlistOffer.as_str(),
        title: "A slot you waited for is free".to_owned(),
        body: format!(
            "{} freed up and is held for you until {}. Confirm it before then, or it passes to the \
             next member waiting.",
            about.what(),
            expires_at.with_timezone(&tz).format("%H:%M")
        ),
        data,
    }
}

/// A refund of `amount_cents` made on a payment, told to the member who paid.
pub(crate) struct Refunded<'a> {
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub reason: Option<RefundReason>,
}

/// The notification of a refund, announced by the payment's `payment.refunded` event `event_id`.
pub(crate) fn for_refund(
    event_id: Uuid,
    user_id: Uuid,
    refund: &Refunded<'_>,
    about: &About<'_>,
) -> NewNotification {
    let amount = money(refund.amount_cents, refund.currency);
    let what = about.what();
    let body = match refund.reason {
        Some(RefundReason::SlotTaken) => format!(
            "Your payment for {what} arrived after your hold had expired and the slot had been \
             taken, so {amount} was refunded. The booking was not made."
        ),
        Some(RefundReason::Cancelled) => {
            format!("{amount} of your payment for {what} was refunded after the cancellation.")
        }
        Some(RefundReason::Duplicate) | None => format!(
            "{amount} of your payment for {what} was refunded: the booking was already paid or no \
             longer active."
        ),
    };
    let mut data = about.data();
    if let Value::Object(map) = &mut data {
        map.insert("payment_id".to_owned(), json!(refund.payment_id));
        map.insert("refunded_cents".to_owned(), json!(refund.amount_cents));
        map.insert("currency".to_owned(), json!(refund.currency));
        map.insert("reason".to_owned(), json!(refund.reason));
    }
    NewNotification {
        id: derived_id(event_id, Kind::PaymentRefunded.as_str(), None),
        user_id,
        kind: Kind::PaymentRefunded.as_str(),
        title: format!("Refund of {amount}"),
        body,
        data,
    }
}

/// `12.50 EUR`.
fn money(cents: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        cents / 100,
        (cents % 100).abs(),
        currency.to_ascii_uppercase()
    )
}

impl Bookings {
    /// The actor's notifications, newest first.
    pub async fn notifications(
        &self,
        actor: Actor,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let db = self.reader(Some(actor.id)).await;
        Ok(notifications::list_for_user(&db, actor.id, unread_only, limit).await?)
    }

    /// Marks one of the actor's notifications read; reading it again changes nothing. Another
    /// member's, or an unknown id, is `notification_not_found`.
    pub async fn mark_notification_read(&self, actor: Actor, id: Uuid) -> Result<()> {
        if notifications::mark_read(self.db(), actor.id, id).await? {
            Ok(())
        } else {
            Err(BookingError::NotFound {
                code: "notification_not_found",
                detail: "no such notification",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_told_apart_by_purpose_and_part() {
        let event = Uuid::now_v7();
        let entry = Uuid::now_v7();
        assert_eq!(
            derived_id(event, "booking.confirmed", None),
            derived_id(event, "booking.confirmed", None)
        );
        assert_ne!(
            derived_id(event, "booking.confirmed", None),
            derived_id(event, "booking.cancelled", None)
        );
        assert_ne!(
            derived_id(event, "waitlist.offer", Some(entry)),
            derived_id(event, "waitlist.offer", None)
        );
        assert_ne!(
            derived_id(event, "x", None),
            derived_id(Uuid::now_v7(), "x", None)
        );
    }

    #[test]
    fn amounts_are_written_with_their_cents_and_currency() {
        assert_eq!(money(1250, "eur"), "12.50 EUR");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
    }

    #[test]
    fn kind_names_are_dotted_and_unique() {
        let names: std::collections::HashSet<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
        assert!(names.iter().all(|n| n.contains('.')));
    }
}
