//! What the relay publishes on the real-time channels, in one place: the channel names and the
//! payloads, as serde types.
//!
//! The WebSocket layer splices a payload's members into `{"type":"event","channel":…,"offset":N,
//! …}`, so no payload has a member named `type`, `channel` or `offset`.

use chrono::{DateTime, Utc};
use clubpulse_storage::notifications::Notification;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use clubpulse_realtime::{facility_channel, user_channel};

/// Why a slot was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Cancelled,
    Expired,
}

/// A slot event on `facility:<id>`. `id` is the outbox event's id: the same however often the
/// event is delivered, so a client can drop a repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum FacilityEvent {
    /// Someone holds the range while paying (or a waitlist offer holds it).
    #[serde(rename = "slot.held")]
    Held {
        id: Uuid,
        facility_id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    },
    /// The range is booked (a hold was confirmed).
    #[serde(rename = "slot.booked")]
    Booked {
        id: Uuid,
        facility_id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// The range is free again.
    #[serde(rename = "slot.released")]
    Released {
        id: Uuid,
        facility_id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        reason: ReleaseReason,
    },
}

/// A notification as published on `user:<id>` and listed by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationPayload {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<&Notification> for NotificationPayload {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind.clone(),
            title: n.title.clone(),
            body: n.body.clone(),
            data: n.data.clone(),
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// An event on `user:<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UserEvent {
    /// A new notification.
    Notification { notification: NotificationPayload },
}

/// A payload as the channels carry it: a JSON object, as text.
pub fn encode(payload: &impl Serialize) -> crate::Result<String> {
    serde_json::to_string(payload)
        .map_err(|e| crate::BookingError::Corrupt(format!("encoding a live event: {e}")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde_json::json;

    use super::*;

    const RESERVED: [&str; 3] = ["type", "channel", "offset"];

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, hour, 0, 0).unwrap()
    }

    #[test]
    fn slot_events_are_flat_objects_named_by_event() {
        let (id, facility_id) = (Uuid::now_v7(), Uuid::now_v7());
        let released = FacilityEvent::Released {
            id,
            facility_id,
            start: at(10),
            end: at(11),
            reason: ReleaseReason::Expired,
        };
        let value: Value = serde_json::from_str(&encode(&released).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({"event": "slot.released", "id": id, "facility_id": facility_id,
                   "start": "2026-12-05T10:00:00Z", "end": "2026-12-05T11:00:00Z", "reason": "expired"})
        );
        let held = FacilityEvent::Held {
            id,
            facility_id,
            start: at(10),
            end: at(11),
            expires_at: Some(at(9)),
        };
        let value = serde_json::to_value(&held).unwrap();
        assert_eq!(value["event"], "slot.held");
        assert_eq!(value["expires_at"], "2026-12-05T09:00:00Z");
        for payload in [value, serde_json::to_value(&released).unwrap()] {
            for name in RESERVED {
                assert!(payload.get(name).is_none(), "{name} in {payload}");
            }
        }
    }

    #[test]
    fn a_notification_event_carries_the_whole_notification() {
        let event = UserEvent::Notification {
            notification: NotificationPayload {
                id: Uuid::now_v7(),
                kind: "waitlist.offer".to_owned(),
                title: "t".to_owned(),
                body: "b".to_owned(),
                data: json!({"booking_id": Uuid::nil()}),
                created_at: at(8),
                read_at: None,
            },
        };
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["event"], "notification");
        assert_eq!(value["notification"]["kind"], "waitlist.offer");
        assert!(value["notification"]["read_at"].is_null());
        for name in RESERVED {
            assert!(value.get(name).is_none());
        }
        let back: UserEvent = serde_json::from_value(value).unwrap();
        assert_eq!(back, event);
    }
}
