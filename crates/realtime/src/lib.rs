//! Club Pulse real-time delivery.
//!
//! The outbox relay publishes every booking event to a shared channel (`facility:<id>`, and a
//! member's `user:<id>` for their notifications) through the state crate's [`Channels`]: Redis
//! Pub/Sub across instances, sharded on a cluster, or the in-process twin. Each instance runs one
//! [`Hub`]: one subscription per channel, whatever the number of sockets, and a fan-out that turns
//! every event into a text frame once and offers it to each watching socket's bounded queue.
//!
//! The WebSocket route itself (authentication, the upgrade, the read and write loop) is in the HTTP
//! crate; this crate knows nothing of HTTP.
//!
//! # Layout
//!
//! - [`protocol`]: the messages, channel names and event frames.
//! - [`hub`]: the instance's hub and each socket's [`Connection`].
//!
//! [`Channels`]: clubpulse_state::Channels

pub mod hub;
pub mod protocol;

pub use hub::{Connection, Hub, HubLimits, Outbound, SubscribeError, Subscribed, close};
pub use protocol::{
    Channel, ClientMessage, HeldSlot, ServerMessage, facility_channel, user_channel,
};
