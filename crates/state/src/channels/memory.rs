//! Channels in this process: one instance, no Redis. History is lost on restart, and offsets are
//! seeded from the clock again (see the module docs of [`super`]).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    ChannelEvent, Channels, HISTORY_AGE, HISTORY_LEN, History,
    listener::{Command, Listener, RawEvent},
};
use crate::StateError;

/// How many raw events a listener may have waiting before a publisher waits for it.
const LISTENER_QUEUE: usize = 4096;

#[derive(Debug, Default)]
struct Channel {
    latest: u64,
    /// Retained events with the instant each was published and its id, oldest first.
    log: VecDeque<(Instant, Option<Arc<str>>, ChannelEvent)>,
}

impl Channel {
    fn trim(&mut self, now: Instant) {
        while self.log.len() > HISTORY_LEN {
            self.log.pop_front();
        }
        while self
            .log
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > HISTORY_AGE)
        {
            self.log.pop_front();
        }
    }
}

#[derive(Debug)]
struct Subscriber {
    channels: HashSet<Arc<str>>,
    events: mpsc::Sender<RawEvent>,
}

#[derive(Debug, Default)]
struct Inner {
    channels: HashMap<Arc<str>, Channel>,
    listeners: HashMap<u64, Subscriber>,
    next_listener: u64,
}

/// Channels in mutex-guarded maps; the lock is never held across an await.
#[derive(Debug, Clone, Default)]
pub struct MemoryChannels {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryChannels {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event (unless `id` is already in the channel's history) and hands it to the
    /// listeners subscribed.
    async fn append(
        &self,
        channel: &str,
        id: Option<&str>,
        payload: &str,
    ) -> Result<u64, StateError> {
        let now = Instant::now();
        let (event, targets) = {
            let mut inner = self.lock();
            let name: Arc<str> = Arc::from(channel);
            let entry = inner.channels.entry(name.clone()).or_default();
            entry.trim(now);
            if let Some(id) = id
                && let Some((_, _, first)) = entry
                    .log
                    .iter()
                    .find(|(_, seen, _)| seen.as_deref() == Some(id))
            {
                return Ok(first.offset);
            }
            entry.latest = if entry.latest == 0 {
                super::seed_offset()
            } else {
                entry.latest + 1
            };
            let event = ChannelEvent {
                channel: name.clone(),
                offset: entry.latest,
                payload: Arc::from(payload),
            };
            entry.log.push_back((now, id.map(Arc::from), event.clone()));
            entry.trim(now);
            inner.listeners.retain(|_, l| !l.events.is_closed());
            let targets: Vec<_> = inner
                .listeners
                .values()
                .filter(|l| l.channels.contains(&name))
                .map(|l| l.events.clone())
                .collect();
            (event, targets)
        };
        // Outside the lock: concurrent publishers may arrive out of order, which the listener
        // repairs from history.
        for target in targets {
            let _ = target.send(RawEvent::Event(event.clone())).await;
        }
        Ok(event.offset)
    }

    /// Applies one listener's subscription command.
    fn apply(&self, id: u64, command: Command) {
        let mut inner = self.lock();
        let (channel, subscribe, done) = match command {
            Command::Subscribe(channel, done) => (channel, true, done),
            Command::Unsubscribe(channel, done) => (channel, false, done),
        };
        if let Some(listener) = inner.listeners.get_mut(&id) {
            if subscribe {
                listener.channels.insert(channel);
            } else {
                listener.channels.remove(&channel);
            }
        }
        let _ = done.send(Ok(()));
    }
}

#[async_trait]
impl Channels for MemoryChannels {
    async fn publish(&self, channel: &str, payload: &str) -> Result<u64, StateError> {
        self.append(channel, None, payload).await
    }

    async fn publish_once(
        &self,
        channel: &str,
        id: &str,
        payload: &str,
    ) -> Result<u64, StateError> {
        self.append(channel, Some(id), payload).await
    }

    async fn history(&self, channel: &str, since: Option<u64>) -> Result<History, StateError> {
        let mut inner = self.lock();
        let Some(entry) = inner.channels.get_mut(channel) else {
            return Ok(super::history_after(0, [], since));
        };
        entry.trim(Instant::now());
        let retained: Vec<ChannelEvent> = entry.log.iter().map(|(_, _, e)| e.clone()).collect();
        Ok(super::history_after(entry.latest, retained, since))
    }

    async fn listen(&self) -> Result<Listener, StateError> {
        let (events, raw) = mpsc::channel(LISTENER_QUEUE);
        let (commands, mut incoming) = mpsc::channel(64);
        let id = {
            let mut inner = self.lock();
            let id = inner.next_listener;
            inner.next_listener += 1;
            inner.listeners.insert(
                id,
                Subscriber {
                    channels: HashSet::new(),
                    events,
                },
            );
            id
        };
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(command) = incoming.recv().await {
                this.apply(id, command);
            }
            this.lock().listeners.remove(&id);
        });
        Ok(Listener::new(commands, raw, Arc::new(self.clone())))
    }
}
