//! Real-time channels: publish an event to a named channel, and have every instance that listens to
//! it receive it, in order, with a short history to replay from.
//!
//! A channel (`facility:<id>`, `user:<id>`) has offsets that only grow: each published event gets
//! the next one. The channel keeps its recent events (bounded by [`HISTORY_LEN`] and
//! [`HISTORY_AGE`]) so that a client that reconnects can ask for everything after the last offset it
//! saw, and be told when history no longer reaches back that far.
//!
//! Delivery is per instance, not per client: a [`Listener`] is one instance's subscription set, with
//! one backend subscription per channel however many sockets watch it; the instance fans events out
//! to its own sockets. A listener delivers every event published on a channel after its
//! [`ListenerHandle::subscribe`] returned, at least once and in offset order: duplicates are dropped,
//! and a gap (an event missed while the backend reconnected, or lost on the way) is filled from the
//! channel's history before the next event is handed over.
//!
//! Offsets are seeded from the clock (milliseconds since the epoch) the first time a channel
//! publishes, and then count up by one. A backend that loses its data (a Redis restarted without
//! persistence, a restarted process) seeds again from the clock, so offsets keep growing as long as a
//! channel publishes less than one event per millisecond on average, which is far above any facility's
//! or member's rate.

mod listener;
mod memory;
mod redis;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

pub use self::{
    listener::{Listener, ListenerHandle, RawEvent},
    memory::MemoryChannels,
    redis::RedisChannels,
};
use crate::StateError;

/// Most events a channel's history keeps.
pub const HISTORY_LEN: usize = 1000;

/// Oldest event a channel's history keeps.
pub const HISTORY_AGE: Duration = Duration::from_secs(15 * 60);

/// One event of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    pub channel: Arc<str>,
    pub offset: u64,
    /// The event as published: a JSON object, as text.
    pub payload: Arc<str>,
}

/// A channel's latest offset and what it keeps after a given one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The offset of the channel's latest event; 0 when it has none on record.
    pub latest: u64,
    /// Every retained event after the `since` asked for, oldest first.
    pub events: Vec<ChannelEvent>,
    /// Whether `events` is everything published after `since`: false when history no longer
    /// reaches back that far (trimmed by length or age, or lost with the backend's data).
    pub recovered: bool,
}

/// Where channels live: Redis (Pub/Sub, sharded on a cluster, with a stream per channel for history)
/// or this process.
#[async_trait]
pub trait Channels: Send + Sync + 'static {
    /// Appends `payload` to the channel's history under its next offset and delivers it to every
    /// listener subscribed to the channel, on every instance. Returns the offset.
    async fn publish(&self, channel: &str, payload: &str) -> Result<u64, StateError>;

    /// [`Channels::publish`] of an event with an id: publishing the same id again on the channel,
    /// while its first publish is still in history, publishes nothing and returns the first
    /// offset. A publisher that retries (the outbox relay redelivering a batch) therefore never
    /// shows a client one event twice.
    async fn publish_once(&self, channel: &str, id: &str, payload: &str)
    -> Result<u64, StateError>;

    /// The channel's latest offset and, with `since`, every retained event after it. Without
    /// `since`, no events and `recovered` true.
    async fn history(&self, channel: &str, since: Option<u64>) -> Result<History, StateError>;

    /// A new listener: one instance's set of subscriptions, empty at first.
    async fn listen(&self) -> Result<Listener, StateError>;
}

/// The history answer for `since` over `retained` events (oldest first) of a channel whose latest
/// offset is `latest`: shared by every backend so that they agree on `recovered`.
pub(crate) fn history_after(
    latest: u64,
    retained: impl IntoIterator<Item = ChannelEvent>,
    since: Option<u64>,
) -> History {
    let Some(since) = since else {
        return History {
            latest,
            events: Vec::new(),
            recovered: true,
        };
    };
    let retained: Vec<ChannelEvent> = retained.into_iter().collect();
    let oldest = retained.first().map(|e| e.offset);
    // Nothing missed, or the oldest retained event is the very next one (or older). A `since`
    // beyond `latest` comes from before the backend lost its data: anything may have been missed.
    let recovered = since == latest
        || (since < latest && oldest.is_some_and(|oldest| oldest <= since.saturating_add(1)));
    History {
        latest,
        events: retained.into_iter().filter(|e| e.offset > since).collect(),
        recovered,
    }
}

/// The offset a channel's first event gets: the clock in milliseconds (see the module docs).
pub(crate) fn seed_offset() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis())
        .unwrap_or(1)
        .max(1)
}
