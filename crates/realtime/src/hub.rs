//! One instance's hub: which of its sockets watch which channel, and the fan-out of every event to
//! them.
//!
//! The hub holds one [`Listener`] for the whole instance, so a channel costs one backend
//! subscription however many sockets watch it. Every event is turned into its text frame once and
//! offered to each watching socket's bounded queue without waiting: a socket whose queue is full is
//! a slow reader, and is cut off (its [`Connection`] reports [`Outbound::Close`] with
//! [`close::SLOW`]) rather than slowing the others down or buffering without bound.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use clubpulse_state::{ChannelEvent, Channels, Listener, ListenerHandle, StateError};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::protocol::{self, Channel, ServerMessage};

/// Close codes the server ends a socket with (RFC 6455 §7.4.1).
pub mod close {
    /// The server is shutting down, or the socket was idle: reconnect (to another instance).
    pub const GOING_AWAY: u16 = 1001;
    /// The session behind the socket has ended (logged out, revoked or expired).
    pub const POLICY: u16 = 1008;
    /// The client read too slowly and its send queue filled up: reconnect with `since`.
    pub const SLOW: u16 = 1013;
}

/// Most history reads the hub runs at once, so that many clients reconnecting together queue up
/// instead of flooding the backend.
const HISTORY_READS: usize = 64;

/// The per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Frames a socket may have waiting before it counts as a slow reader.
    pub send_queue: usize,
    /// Channels one connection may watch at once (its own `user` channel included).
    pub max_subscriptions: usize,
    /// How often the server pings each socket (and checks its session).
    pub heartbeat: Duration,
    /// How long a socket may stay silent (no frame, not even a pong) before it is closed.
    pub idle_timeout: Duration,
}

/// A frame on its way to one socket.
#[derive(Debug, Clone)]
struct Outgoing {
    channel: Arc<str>,
    offset: u64,
    frame: Arc<str>,
}

/// A socket as the fan-out sees it.
#[derive(Debug, Clone)]
struct SocketTx {
    queue: mpsc::Sender<Outgoing>,
    kill: CancellationToken,
}

#[derive(Debug, Default)]
struct Entry {
    sockets: HashMap<u64, SocketTx>,
    /// Whether the instance's listener is subscribed to the channel.
    subscribed: bool,
}

/// Counters for operators and tests.
#[derive(Debug, Default)]
struct Stats {
    connections: AtomicUsize,
    slow_cut: AtomicU64,
}

struct Inner {
    channels: Arc<dyn Channels>,
    listener: ListenerHandle,
    registry: Mutex<HashMap<Arc<str>, Entry>>,
    /// Serialises the listener's subscribe and unsubscribe calls, so that a channel's last socket
    /// leaving and a new one arriving cannot leave the listener unsubscribed.
    gate: tokio::sync::Mutex<()>,
    history_reads: Semaphore,
    next_id: AtomicU64,
    limits: HubLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    stats: Stats,
}

/// The instance's hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("limits", &self.inner.limits)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("a connection may watch at most {0} channels; unsubscribe from one first")]
    TooMany(usize),
    #[error("real-time delivery is unavailable: {0}")]
    Unavailable(#[from] StateError),
}

impl SubscribeError {
    /// The error message a client receives.
    pub fn to_message(&self) -> ServerMessage {
        let code = match self {
            Self::TooMany(_) => "too_many_subscriptions",
            Self::Unavailable(_) => "realtime_unavailable",
        };
        let detail = match self {
            // The backend's own error text stays in the server's log.
            Self::Unavailable(_) => {
                "real-time delivery is unavailable; try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        ServerMessage::error(code, detail)
    }
}

impl Hub {
    /// Starts the hub on `channels`: one listener, and the task that fans its events out.
    pub async fn start(channels: Arc<dyn Channels>, limits: HubLimits) -> Result<Self, StateError> {
        let listener = channels.listen().await?;
        let hub = Self {
            inner: Arc::new(Inner {
                listener: listener.handle(),
                channels,
                registry: Mutex::default(),
                gate: tokio::sync::Mutex::new(()),
                history_reads: Semaphore::new(HISTORY_READS),
                next_id: AtomicU64::new(1),
                limits,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                stats: Stats::default(),
            }),
        };
        tokio::spawn(hub.clone().fan_out(listener));
        Ok(hub)
    }

    pub fn limits(&self) -> &HubLimits {
        &self.inner.limits
    }

    /// Open connections on this instance.
    pub fn connections(&self) -> usize {
        self.inner.stats.connections.load(Ordering::Relaxed)
    }

    /// Sockets cut off for reading too slowly since start.
    pub fn slow_readers_cut(&self) -> u64 {
        self.inner.stats.slow_cut.load(Ordering::Relaxed)
    }

    /// A new connection. Its session task should run inside [`Hub::track`] so that
    /// [`Hub::shutdown`] can wait for it.
    pub fn connect(&self) -> Connection {
        let (queue, incoming) = mpsc::channel(self.inner.limits.send_queue.max(1));
        self.inner.stats.connections.fetch_add(1, Ordering::Relaxed);
        Connection {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            hub: self.clone(),
            tx: SocketTx {
                queue,
                kill: CancellationToken::new(),
            },
            incoming,
            delivered: HashMap::new(),
        }
    }

    /// Runs a connection's session so that shutdown waits for it.
    pub fn track<F>(&self, session: F) -> tokio_util::task::task_tracker::TrackedFuture<F>
    where
        F: std::future::Future,
    {
        self.inner.tracker.track_future(session)
    }

    /// Tells every connection to close with "going away", and waits up to `grace` for them to
    /// finish; new connections are refused from now on.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.connections(),
                "some WebSocket connections did not close in time"
            );
        }
    }

    /// Whether the hub is shutting down (new connections are refused).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        // Every update is a single map operation, so a poisoned lock is simply taken over.
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Hands every event the listener receives to the sockets watching its channel.
    async fn fan_out(self, mut listener: Listener) {
        loop {
            let event = tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                event = listener.recv() => event,
            };
            let Some(event) = event else {
                tracing::error!("the real-time listener stopped; no more events will be delivered");
                return;
            };
            self.dispatch(&event);
        }
    }

    fn dispatch(&self, event: &ChannelEvent) {
        let frame: Arc<str> = Arc::from(protocol::event_frame(
            protocol::client_name(&event.channel),
            event.offset,
            &event.payload,
        ));
        let registry = self.registry();
        let Some(entry) = registry.get(&event.channel) else {
            return;
        };
        for socket in entry.sockets.values() {
            let outgoing = Outgoing {
                channel: event.channel.clone(),
                offset: event.offset,
                frame: frame.clone(),
            };
            match socket.queue.try_send(outgoing) {
                Ok(()) => metrics::counter!("clubpulse_websocket_messages_total").increment(1),
                Err(mpsc::error::TrySendError::Full(_)) if !socket.kill.is_cancelled() => {
                    socket.kill.cancel();
                    self.inner.stats.slow_cut.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("clubpulse_websocket_slow_readers_cut_total").increment(1);
                }
                Err(_) => {}
            }
        }
    }

    /// Adds a socket to a channel, subscribing the instance's listener when it is the first.
    async fn register(&self, key: &Arc<str>, id: u64, tx: &SocketTx) -> Result<(), StateError> {
        let subscribed = {
            let mut registry = self.registry();
            let entry = registry.entry(key.clone()).or_default();
            entry.sockets.insert(id, tx.clone());
            entry.subscribed
        };
        if subscribed {
            return Ok(());
        }
        let _gate = self.inner.gate.lock().await;
        let pending = self.registry().get(key).is_some_and(|e| !e.subscribed);
        if !pending {
            return Ok(());
        }
        match self.inner.listener.subscribe(key).await {
            Ok(()) => {
                if let Some(entry) = self.registry().get_mut(key) {
                    entry.subscribed = true;
                }
                Ok(())
            }
            Err(err) => {
                self.remove(key, id);
                Err(err)
            }
        }
    }

    /// Removes a socket from a channel; the last one out unsubscribes the instance's listener.
    fn unregister(&self, key: &Arc<str>, id: u64) {
        if !self.remove(key, id) {
            return;
        }
        let hub = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let _gate = hub.inner.gate.lock().await;
            if hub.registry().contains_key(&key) {
                // Someone watches it again: the listener stays subscribed for them.
                return;
            }
            if let Err(err) = hub.inner.listener.unsubscribe(&key).await {
                tracing::warn!(channel = %key, error = %err, "could not unsubscribe from a channel");
            }
        });
    }

    /// Removes a socket; returns whether the channel has no socket left (and was dropped).
    fn remove(&self, key: &Arc<str>, id: u64) -> bool {
        let mut registry = self.registry();
        let Some(entry) = registry.get_mut(key) else {
            return false;
        };
        entry.sockets.remove(&id);
        if entry.sockets.is_empty() {
            registry.remove(key);
            return true;
        }
        false
    }
}

/// What a connection's session should send next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// An event frame, in offset order per channel, never twice.
    Frame(Arc<str>),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// One socket's place in the hub: its subscriptions, its bounded queue, and what it has been sent.
/// Dropping it leaves every channel.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    hub: Hub,
    tx: SocketTx,
    incoming: mpsc::Receiver<Outgoing>,
    /// Subscribed channels and the latest offset sent on each.
    delivered: HashMap<Arc<str>, u64>,
}

/// A subscription's answer: the `subscribed` message, then the missed events to send before
/// anything else.
#[derive(Debug)]
pub struct Subscribed {
    pub message: ServerMessage,
    pub replay: Vec<Arc<str>>,
}

impl Connection {
    /// Subscribes to `channel`; with `since`, also returns every event after it still in history
    /// (to be sent right after the `subscribed` message, before any live event). Subscribing again
    /// to a watched channel only replays.
    pub async fn subscribe(
        &mut self,
        channel: &Channel,
        since: Option<u64>,
    ) -> Result<Subscribed, SubscribeError> {
        let key: Arc<str> = Arc::from(channel.key());
        let watched = self.delivered.contains_key(&key);
        if !watched && self.delivered.len() >= self.hub.inner.limits.max_subscriptions {
            return Err(SubscribeError::TooMany(
                self.hub.inner.limits.max_subscriptions,
            ));
        }
        if !watched {
            // Live events queue up from here on; history is read after, so nothing falls between.
            self.hub.register(&key, self.id, &self.tx).await?;
        }
        let history = {
            let _permit = self.hub.inner.history_reads.acquire().await;
            self.hub.inner.channels.history(&key, since).await
        };
        let history = match history {
            Ok(history) => history,
            Err(err) => {
                if !watched {
                    self.hub.unregister(&key, self.id);
                }
                return Err(err.into());
            }
        };
        let client_name = channel.client_name();
        let mut last = history.latest;
        let replay = history
            .events
            .iter()
            .map(|event| {
                last = last.max(event.offset);
                Arc::from(protocol::event_frame(
                    &client_name,
                    event.offset,
                    &event.payload,
                ))
            })
            .collect();
        let sent = self.delivered.entry(key).or_insert(0);
        *sent = (*sent).max(last);
        Ok(Subscribed {
            message: ServerMessage::Subscribed {
                channel: client_name,
                offset: history.latest,
                recovered: history.recovered,
                holds: None,
            },
            replay,
        })
    }

    /// Stops watching `channel`; returns whether it was watched.
    pub fn unsubscribe(&mut self, channel: &Channel) -> bool {
        let key: Arc<str> = Arc::from(channel.key());
        if self.delivered.remove(&key).is_none() {
            return false;
        }
        self.hub.unregister(&key, self.id);
        true
    }

    /// The next thing to send: an event frame, or a reason to close (cut off as a slow reader, or
    /// the server shutting down). Cancel-safe.
    pub async fn next(&mut self) -> Outbound {
        loop {
            let outgoing = tokio::select! {
                biased;
                () = self.tx.kill.cancelled() => {
                    return Outbound::Close(close::SLOW, "too slow: the send queue filled up; reconnect with since");
                }
                () = self.hub.inner.shutdown.cancelled() => {
                    return Outbound::Close(close::GOING_AWAY, "server shutting down; reconnect");
                }
                outgoing = self.incoming.recv() => outgoing,
            };
            // The connection holds a sender itself, so the queue never closes under it.
            let Some(outgoing) = outgoing else {
                return Outbound::Close(close::GOING_AWAY, "server shutting down; reconnect");
            };
            let Some(sent) = self.delivered.get_mut(&outgoing.channel) else {
                // Unsubscribed since it was queued.
                continue;
            };
            if outgoing.offset <= *sent {
                // Already sent from history.
                continue;
            }
            *sent = outgoing.offset;
            return Outbound::Frame(outgoing.frame);
        }
    }

    /// The reason to close right away, when there is one (checked while a send is in progress, so
    /// that a blocked send to a slow reader is abandoned).
    pub async fn closing(&self) -> Outbound {
        tokio::select! {
            biased;
            () = self.tx.kill.cancelled() => Outbound::Close(close::SLOW, "too slow: the send queue filled up; reconnect with since"),
            () = self.hub.inner.shutdown.cancelled() => Outbound::Close(close::GOING_AWAY, "server shutting down; reconnect"),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for key in self.delivered.keys() {
            self.hub.unregister(key, self.id);
        }
        self.hub
            .inner
            .stats
            .connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}
