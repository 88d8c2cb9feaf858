//! A listener: one instance's subscriptions, delivered in offset order per channel, gaps filled from
//! history. Both backends feed it raw events; the ordering and gap-filling rules live here once.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::{mpsc, oneshot};

use super::{ChannelEvent, Channels};
use crate::StateError;

/// What a backend hands its listener.
#[derive(Debug, Clone)]
pub enum RawEvent {
    /// An event as it arrived: perhaps a duplicate, perhaps after a gap.
    Event(ChannelEvent),
    /// The backend lost its connection and has subscribed to every channel again: anything
    /// published meanwhile may be missing.
    Resubscribed,
}

/// A subscription request from a [`ListenerHandle`] to its backend. A backend applies commands
/// one at a time, in the order they were sent, and answers each before taking the next.
#[derive(Debug)]
pub enum Command {
    Subscribe(Arc<str>, oneshot::Sender<Result<(), StateError>>),
    Unsubscribe(Arc<str>, oneshot::Sender<Result<(), StateError>>),
}

/// Where a listener stands on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    /// Subscribing: the latest offset is not known yet.
    Pending,
    /// Delivered (or skipped, as older than the subscription) up to this offset.
    Active(u64),
}

type Tracks = Arc<Mutex<HashMap<Arc<str>, Track>>>;

fn lock(tracks: &Tracks) -> MutexGuard<'_, HashMap<Arc<str>, Track>> {
    // Every update is a single map operation, so a poisoned lock is simply taken over.
    tracks.lock().unwrap_or_else(|p| p.into_inner())
}

/// Subscribes and unsubscribes a [`Listener`]'s channels; cheap to clone.
#[derive(Clone)]
pub struct ListenerHandle {
    commands: mpsc::Sender<Command>,
    tracks: Tracks,
    channels: Arc<dyn Channels>,
}

impl std::fmt::Debug for ListenerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerHandle").finish_non_exhaustive()
    }
}

impl ListenerHandle {
    /// Subscribes to `channel` (a second call changes nothing). Once it returns, every event
    /// published on the channel reaches [`Listener::recv`].
    pub async fn subscribe(&self, channel: &str) -> Result<(), StateError> {
        let channel: Arc<str> = Arc::from(channel);
        let existing = lock(&self.tracks).get(&channel).copied();
        match existing {
            Some(Track::Active(_)) => return Ok(()),
            // Another call is subscribing: the backend answers commands in order, so once it has
            // answered this one, it has confirmed that one too.
            Some(Track::Pending) => {
                self.subscribe_backend(&channel).await?;
                if lock(&self.tracks).contains_key(&channel) {
                    return Ok(());
                }
                // That call failed meanwhile: carry on as the first.
            }
            None => {}
        }
        lock(&self.tracks).insert(channel.clone(), Track::Pending);
        let result = self.subscribe_backend(&channel).await;
        let latest = match result {
            Ok(()) => self
                .channels
                .history(&channel, None)
                .await
                .map(|h| h.latest),
            Err(err) => Err(err),
        };
        let mut tracks = lock(&self.tracks);
        match latest {
            Ok(latest) => {
                if let Some(track @ Track::Pending) = tracks.get_mut(&channel) {
                    *track = Track::Active(latest);
                }
                Ok(())
            }
            Err(err) => {
                tracks.remove(&channel);
                Err(err)
            }
        }
    }

    async fn subscribe_backend(&self, channel: &Arc<str>) -> Result<(), StateError> {
        let (done, answer) = oneshot::channel();
        self.send(Command::Subscribe(channel.clone(), done)).await?;
        answer.await.map_err(|_| gone())?
    }

    /// Stops delivering `channel`; unknown channels are fine.
    pub async fn unsubscribe(&self, channel: &str) -> Result<(), StateError> {
        let channel: Arc<str> = Arc::from(channel);
        if lock(&self.tracks).remove(&channel).is_none() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.send(Command::Unsubscribe(channel, done)).await?;
        answer.await.map_err(|_| gone())?
    }

    async fn send(&self, command: Command) -> Result<(), StateError> {
        self.commands.send(command).await.map_err(|_| gone())
    }
}

fn gone() -> StateError {
    StateError::Corrupt("the channel listener has stopped".to_owned())
}

/// One instance's subscriptions: receive every event of the subscribed channels, in offset order
/// per channel (see the module docs of [`super`]).
pub struct Listener {
    handle: ListenerHandle,
    raw: mpsc::Receiver<RawEvent>,
    ready: VecDeque<ChannelEvent>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// A listener over a backend's `commands` and `raw` events; `channels` answers history for
    /// gap filling.
    pub fn new(
        commands: mpsc::Sender<Command>,
        raw: mpsc::Receiver<RawEvent>,
        channels: Arc<dyn Channels>,
    ) -> Self {
        Self {
            handle: ListenerHandle {
                commands,
                tracks: Arc::default(),
                channels,
            },
            raw,
            ready: VecDeque::new(),
        }
    }

    /// Subscribes and unsubscribes this listener's channels.
    pub fn handle(&self) -> ListenerHandle {
        self.handle.clone()
    }

    /// The next event; `None` once the backend has stopped for good.
    pub async fn recv(&mut self) -> Option<ChannelEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            match self.raw.recv().await? {
                RawEvent::Event(event) => self.accept(event).await,
                RawEvent::Resubscribed => self.fill_all().await,
            }
        }
    }

    async fn accept(&mut self, event: ChannelEvent) {
        let track = lock(&self.handle.tracks).get(&event.channel).copied();
        match track {
            // Not (or no longer) subscribed.
            None => {}
            // Pending, or subscribed when the channel had no event on record: its first event
            // is seeded from the clock, so there is no gap to fill before it.
            Some(Track::Pending | Track::Active(0)) => self.deliver(event),
            Some(Track::Active(last)) if event.offset <= last => {}
            Some(Track::Active(last)) if event.offset == last + 1 => self.deliver(event),
            Some(Track::Active(last)) => {
                self.fill(&event.channel, last).await;
                self.deliver(event);
            }
        }
    }

    /// Queues `event` unless it is not newer than what was delivered, and records its offset.
    fn deliver(&mut self, event: ChannelEvent) {
        let mut tracks = lock(&self.handle.tracks);
        let Some(track) = tracks.get_mut(&event.channel) else {
            return;
        };
        if let Track::Active(last) = *track
            && event.offset <= last
        {
            return;
        }
        *track = Track::Active(event.offset);
        drop(tracks);
        self.ready.push_back(event);
    }

    /// Queues what the channel's history holds after `last`.
    async fn fill(&mut self, channel: &Arc<str>, last: u64) {
        match self.handle.channels.history(channel, Some(last)).await {
            Ok(history) => {
                if !history.recovered {
                    tracing::warn!(%channel, after = last, "channel history no longer reaches back to a gap");
                }
                for event in history.events {
                    self.deliver(event);
                }
            }
            Err(err) => {
                tracing::warn!(%channel, error = %err, "cannot fill a gap in a channel from its history");
            }
        }
    }

    async fn fill_all(&mut self) {
        let active: Vec<(Arc<str>, u64)> = lock(&self.handle.tracks)
            .iter()
            .filter_map(|(channel, track)| match track {
                Track::Active(last) => Some((channel.clone(), *last)),
                Track::Pending => None,
            })
            .collect();
        for (channel, last) in active {
            self.fill(&channel, last).await;
        }
    }
}
