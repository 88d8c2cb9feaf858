//! The WebSocket protocol's messages: JSON text frames, one message each.
//!
//! Client → server: [`ClientMessage`]. Server → client: [`ServerMessage`] for replies, and event
//! frames built once per event by [`event_frame`] and shared by every socket that receives them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start receiving a channel's events; with `since`, first every event after that offset still
    /// in the channel's history.
    Subscribe {
        /// `facility:<id>` or `user`.
        channel: String,
        #[serde(default)]
        since: Option<u64>,
    },
    /// Stop receiving a channel's events.
    Unsubscribe { channel: String },
    /// Answered with `pong`.
    Ping,
}

/// The server's replies (events are sent as [`event_frame`]s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// A subscription took effect. `offset` is the channel's latest offset; `recovered` is false
    /// when the history no longer reached back to the `since` asked for.
    Subscribed {
        channel: String,
        offset: u64,
        recovered: bool,
        /// On a facility channel: what is held there right now (from the hold mirror), so that a
        /// watcher starts from the present and follows the events after it.
        #[serde(skip_serializing_if = "Option::is_none")]
        holds: Option<Vec<HeldSlot>>,
    },
    /// An unsubscription took effect.
    Unsubscribed {
        channel: String,
    },
    Pong,
    /// A message the server could not act on; the socket stays open.
    Error {
        code: String,
        detail: String,
    },
}

/// A slot held right now, as a `subscribed` message lists it (RFC 3339 instants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldSlot {
    pub start: String,
    pub end: String,
    pub expires_at: String,
}

impl ServerMessage {
    pub fn error(code: &str, detail: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            detail: detail.into(),
        }
    }

    /// The message as a text frame.
    pub fn to_text(&self) -> String {
        // Serialising these plain enums cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"type":"error"}"#))
    }
}

/// A channel as the client names it, resolved for the connection's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `facility:<id>`: slot events of one facility, for any signed-in user.
    Facility(Uuid),
    /// `user`: the connection's own notifications.
    User(Uuid),
}

impl Channel {
    /// Parses a client's channel name for the connection of `user`; `None` when no such channel
    /// exists.
    pub fn parse(name: &str, user: Uuid) -> Option<Self> {
        if name == "user" {
            return Some(Self::User(user));
        }
        let id = name.strip_prefix("facility:")?;
        // Only the canonical hyphenated form, so that one facility has one channel name.
        let parsed = Uuid::parse_str(id).ok()?;
        (parsed.hyphenated().to_string() == id).then_some(Self::Facility(parsed))
    }

    /// The channel's name among every instance (what the relay publishes to).
    pub fn key(&self) -> String {
        match self {
            Self::Facility(id) => facility_channel(*id),
            Self::User(id) => user_channel(*id),
        }
    }

    /// The channel's name as its client sees it.
    pub fn client_name(&self) -> String {
        match self {
            Self::Facility(id) => facility_channel(*id),
            Self::User(_) => "user".to_owned(),
        }
    }
}

/// The shared channel of a facility's slot events.
pub fn facility_channel(facility_id: Uuid) -> String {
    format!("facility:{}", facility_id.hyphenated())
}

/// The shared channel of a user's notifications.
pub fn user_channel(user_id: Uuid) -> String {
    format!("user:{}", user_id.hyphenated())
}

/// The name a client knows a shared channel by: `user` for any user's channel (a socket only ever
/// receives its own), the name itself otherwise.
pub fn client_name(key: &str) -> &str {
    if key.starts_with("user:") {
        "user"
    } else {
        key
    }
}

/// The text frame of one event: `{"type":"event","channel":C,"offset":N, …the payload's fields}`.
/// `payload` is the JSON object the relay published; its fields follow the envelope's.
pub fn event_frame(client_channel: &str, offset: u64, payload: &str) -> String {
    let channel = serde_json::Value::String(client_channel.to_owned()).to_string();
    let fields = payload
        .trim()
        .strip_prefix('{')
        .map(str::trim_start)
        .unwrap_or("}");
    if fields.starts_with('}') {
        format!(r#"{{"type":"event","channel":{channel},"offset":{offset}}}"#)
    } else {
        format!(r#"{{"type":"event","channel":{channel},"offset":{offset},{fields}"#)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_event_frame_is_the_envelope_followed_by_the_payload_fields() {
        let frame = event_frame(
            "facility:x",
            7,
            r#"{"event":"slot.held","start":"2026-12-01T10:00:00Z"}"#,
        );
        let parsed: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(parsed["type"], "event");
        assert_eq!(parsed["channel"], "facility:x");
        assert_eq!(parsed["offset"], 7);
        assert_eq!(parsed["event"], "slot.held");
        assert_eq!(parsed["start"], "2026-12-01T10:00:00Z");
    }

    #[test]
    fn an_empty_payload_still_makes_valid_json() {
        for payload in ["{}", " { } ", "", "not json"] {
            let frame = event_frame("user", 1, payload);
            let parsed: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(parsed["offset"], 1, "{payload:?}");
        }
    }

    #[test]
    fn channel_names_resolve_for_the_connection_user() {
        let user = Uuid::now_v7();
        let facility = Uuid::now_v7();
        assert_eq!(Channel::parse("user", user), Some(Channel::User(user)));
        assert_eq!(
            Channel::parse(&format!("facility:{facility}"), user),
            Some(Channel::Facility(facility))
        );
        for unknown in [
            "facility:",
            "facility:nope",
            "users",
            &format!("user:{user}"),
            &format!("facility:{}", facility.simple()),
            &format!(
                "facility:{}",
                facility.hyphenated().to_string().to_uppercase()
            ),
        ] {
            assert_eq!(Channel::parse(unknown, user), None, "{unknown}");
        }
        assert_eq!(Channel::User(user).client_name(), "user");
        assert_eq!(client_name(&user_channel(user)), "user");
    }

    #[test]
    fn client_messages_parse_strictly() {
        let parsed: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","channel":"user","since":3}"#).unwrap();
        assert_eq!(
            parsed,
            ClientMessage::Subscribe {
                channel: "user".to_owned(),
                since: Some(3)
            }
        );
        for bad in [
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","channel":"user","since":-1}"#,
            r#"{"type":"shout"}"#,
            r#"[]"#,
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
    }
}
