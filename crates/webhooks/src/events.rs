//! The webhook event types, and the webhook events an outbox event makes.
//!
//! A webhook event is `{id, type, created, data}`: `id` is the outbox event's id (the same at every
//! attempt and every redelivery, so a receiver drops repeats by it), `created` the outbox event's
//! time in RFC 3339 (UTC), like every instant of the API, and `data` the outbox event's payload as
//! its trigger wrote it (a booking's id, facility, member, range, status, price...; a payment's
//! id, booking and amounts).
//!
//! Class bookings (the hold a class keeps on its facility, `data.class_id` set) are delivered like
//! court bookings: a receiver that wants only court bookings filters on `class_id`.

use std::{fmt, str::FromStr};

use chrono::{DateTime, SecondsFormat, Utc};
use clubpulse_storage::{outbox::OutboxEvent, webhooks::NewEvent};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    BookingHeld,
    BookingConfirmed,
    BookingCancelled,
    BookingExpired,
    PaymentSucceeded,
    PaymentRefunded,
    WaitlistOffered,
}

impl EventType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [EventType; 7] = [
        Self::BookingHeld,
        Self::BookingConfirmed,
        Self::BookingCancelled,
        Self::BookingExpired,
        Self::PaymentSucceeded,
        Self::PaymentRefunded,
        Self::WaitlistOffered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BookingHeld => "booking.held",
            Self::BookingConfirmed => "booking.confirmed",
            Self::BookingCancelled => "booking.cancelled",
            Self::BookingExpired => "booking.expired",
            Self::PaymentSucceeded => "payment.succeeded",
            Self::PaymentRefunded => "payment.refunded",
            Self::WaitlistOffered => "waitlist.offered",
        }
    }

    /// The type an outbox topic is delivered as, if any: booking and payment topics are named as
    /// their webhook types are. `waitlist.offered` is not a topic: see [`from_outbox`].
    fn of_topic(topic: &str) -> Option<Self> {
        match topic.parse() {
            Ok(Self::WaitlistOffered) | Err(_) => None,
            Ok(kind) => Some(kind),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a webhook event type")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

/// The webhook events one outbox event makes: none for a topic no webhook carries, one for a
/// booking or payment event, and two for the hold of a waitlist offer (`booking.held` and
/// `waitlist.offered`, the second under an id derived from the first, so it is as stable).
pub fn from_outbox(event: &OutboxEvent) -> Vec<NewEvent> {
    let Some(kind) = EventType::of_topic(&event.topic) else {
        return Vec::new();
    };
    let mut made = vec![NewEvent {
        id: event.event_id,
        event_type: kind.as_str(),
        created_at: event.created_at,
        data: event.payload.clone(),
    }];
    let offer = event.payload.get("waitlist_offer") == Some(&Value::Bool(true));
    if kind == EventType::BookingHeld && offer {
        made.push(NewEvent {
            id: derived_id(event.event_id, EventType::WaitlistOffered),
            event_type: EventType::WaitlistOffered.as_str(),
            created_at: event.created_at,
            data: event.payload.clone(),
        });
    }
    made
}

/// A stable id for a second event made from one outbox event: a UUIDv8 from the SHA-256 of the
/// outbox event's id and the type (a name-based UUID, as v5 is, with a stronger hash).
pub fn derived_id(event_id: Uuid, kind: EventType) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"clubpulse-webhook-event:")
        .chain_update(event_id.as_bytes())
        .chain_update(kind.as_str().as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The body of a delivery, exactly as it is signed and sent.
pub fn body(id: Uuid, kind: &str, created: DateTime<Utc>, data: &Value) -> Vec<u8> {
    let body = serde_json::json!({
        "id": id,
        "type": kind,
        "created": created.to_rfc3339_opts(SecondsFormat::Micros, true),
        "data": data,
    });
    // Serializing a JSON value cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn outbox(topic: &str, payload: Value) -> OutboxEvent {
        OutboxEvent {
            seq: 1,
            event_id: Uuid::new_v4(),
            topic: topic.to_owned(),
            aggregate_id: Uuid::new_v4(),
            actor_id: None,
            payload,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn every_type_reads_back_from_its_name() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>(), Ok(kind));
        }
        assert!("booking.created".parse::<EventType>().is_err());
        assert!("Booking.Held".parse::<EventType>().is_err());
    }

    #[test]
    fn a_booking_or_payment_topic_is_one_event_with_the_outbox_id() {
        for topic in [
            "booking.held",
            "booking.confirmed",
            "booking.cancelled",
            "booking.expired",
            "payment.succeeded",
            "payment.refunded",
        ] {
            let event = outbox(topic, serde_json::json!({"booking_id": "x"}));
            let made = from_outbox(&event);
            assert_eq!(made.len(), 1, "{topic}");
            assert_eq!(made[0].id, event.event_id);
            assert_eq!(made[0].event_type, topic);
            assert_eq!(made[0].data, event.payload);
        }
    }

    #[test]
    fn other_topics_make_nothing() {
        for topic in [
            "audit.recorded",
            "waitlist.offered",
            "payment.failed",
            "booking",
        ] {
            assert!(from_outbox(&outbox(topic, serde_json::json!({}))).is_empty());
        }
    }

    #[test]
    fn an_offer_hold_is_also_a_waitlist_offer_with_a_stable_id_of_its_own() {
        let event = outbox("booking.held", serde_json::json!({"waitlist_offer": true}));
        let made = from_outbox(&event);
        let types: Vec<&str> = made.iter().map(|e| e.event_type).collect();
        assert_eq!(types, ["booking.held", "waitlist.offered"]);
        assert_ne!(made[1].id, event.event_id);
        assert_eq!(made[1].id, from_outbox(&event)[1].id);
        assert_eq!(made[1].id.get_version_num(), 8);
        let plain = outbox("booking.held", serde_json::json!({"waitlist_offer": false}));
        assert_eq!(from_outbox(&plain).len(), 1);
    }

    #[test]
    fn the_body_carries_id_type_created_and_data() {
        let id = Uuid::new_v4();
        let created = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let body: Value = serde_json::from_slice(&body(
            id,
            "booking.held",
            created,
            &serde_json::json!({"a": 1}),
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": id, "type": "booking.held",
                "created": "2026-12-01T10:00:00.000000Z", "data": {"a": 1}})
        );
    }
}
