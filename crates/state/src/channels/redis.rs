//! Channels in Redis: a counter and a stream per channel, delivered through Pub/Sub (sharded Pub/Sub
//! on a cluster).
//!
//! # Key layout
//!
//! Every key of channel `<c>` (under the deployment prefix) carries the hash tag `{<c>}`, so they
//! share one cluster slot:
//!
//! - `ch:{<c>}:seq`: the latest offset, a string integer. Expires [`SEQ_TTL`] (a day) after the
//!   channel's last event, long after its history, so `latest` stays known while a client could
//!   still hold an offset from it.
//! - `ch:{<c>}:log`: the history, a stream with one entry per event (`o` the offset, `p` the
//!   payload) under an ID from the server's clock. Bounded by [`HISTORY_LEN`] entries (`MAXLEN`,
//!   exact) and by [`HISTORY_AGE`] (`XTRIM MINID` at each publish, and reads skip older entries);
//!   it expires [`HISTORY_AGE`] after the channel's last event, by when all of it is too old anyway.
//! - `ch:{<c>}:ids`: the ids of the latest [`HISTORY_LEN`] events published with one
//!   ([`Channels::publish_once`]), a sorted set scored by offset, expiring with the history: a
//!   repeated id is answered with its first offset and published no more.
//! - `ch:{<c>}`: the Pub/Sub channel (a shard channel on a cluster, which lives in the same slot).
//!   A message is `<offset>:<payload>`.
//!
//! # Publishing
//!
//! A publish is one Lua script over those keys, so it is atomic (Redis runs a script alone) and runs
//! on the node that owns the slot. It takes the next offset (`INCR`; when the counter is missing, it
//! seeds it from the server's `TIME` in milliseconds, or one above the newest offset still in the
//! stream if that is higher, the same rule as [`super::seed_offset`]), appends to the stream, trims
//! it, refreshes both expiries and publishes the message from inside the script: `PUBLISH` on a
//! single server, `SPUBLISH` on a cluster (Redis 7 allows it in a script, since the shard channel is
//! in the script's slot). Every instance's listener therefore sees events of a channel in the order
//! of their offsets, and an event is in the history before any listener can see it.
//!
//! # Listening
//!
//! A [`Listener`] gets its own task and its own RESP3 connections, never the shared multiplexed one:
//! one connection on a single server; on a cluster, one per master that owns a subscribed
//! channel's slot, found with `CLUSTER SLOTS` from a seed node (or a node known from before). A
//! listener subscribes once per channel however many sockets watch it, and a subscribe is
//! acknowledged only once the server confirmed it (the `SUBSCRIBE`/`SSUBSCRIBE` reply).
//!
//! The task watches its connections: the loss of any of them (a connection error, a `PING` every
//! [`PING_EVERY`] that fails, or a server-initiated `SUNSUBSCRIBE` when a slot moves away) drops
//! them all. It then connects again with bounded back-off (from [`BACKOFF_MIN`] doubling to
//! [`BACKOFF_MAX`]; a session that lasted [`STABLE_AFTER`] is replaced at once), asks the cluster
//! anew who owns each slot (so after a failover or a slot move it subscribes at the new owner),
//! subscribes to its whole set again and hands the listener a [`RawEvent::Resubscribed`], on which
//! the listener fetches from history whatever was published while it was away. A subscribe while
//! Redis is unreachable fails after one connection attempt rather than waiting. The task ends, closing its connections,
//! once the listener is dropped (a handle left behind then answers that the listener has stopped).
//! Its pushes queue in memory while the listener is slow to take events, so a listener must be
//! drained.
//!
//! # Guarantees
//!
//! Pub/Sub is at most once; the stream makes delivery at least once while history reaches back:
//! an event lost on the way (or published while a listener was reconnecting) is found in the
//! history when the listener resubscribes or when the channel's next event shows the gap. A publish
//! that fails (Redis unreachable, a timeout) may or may not have happened, as with any Redis write;
//! one that happened is in the history and reaches listeners. If a Redis without persistence loses
//! its data, offsets are seeded again from the clock and a client asking for an older offset is
//! told `recovered: false`.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock},
    time::Duration,
};

use async_trait::async_trait;
use redis::{IntoConnectionInfo, PushInfo, PushKind, Script, Value, aio::MultiplexedConnection};
use tokio::{
    sync::mpsc,
    time::{Instant, sleep_until},
};

use super::{
    ChannelEvent, Channels, HISTORY_AGE, HISTORY_LEN, History,
    listener::{Command, Listener, RawEvent},
};
use crate::{RedisConn, StateError, redis_conn::script};

/// How long a channel's counter outlives its last event.
pub const SEQ_TTL: Duration = Duration::from_secs(24 * 3600);

/// How often a listener checks that its connections still answer.
pub const PING_EVERY: Duration = Duration::from_secs(3);

/// First wait before connecting again after a failed attempt.
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest wait between two attempts to connect again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How long a session must have lasted for the back-off to start again from [`BACKOFF_MIN`].
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// How many raw events a listener may have waiting before its task waits for it.
const LISTENER_QUEUE: usize = 4096;

/// One publish.
/// KEYS: the counter, the stream, the Pub/Sub channel, the ids of recent events (a sorted set, id
/// scored by offset). ARGV: payload, history length, history age (ms), stream TTL (ms), counter
/// TTL (ms), `PUBLISH` or `SPUBLISH`, the event's id (empty for none). Returns the offset: the first
/// one's, without publishing, for an id already published and still remembered.
/// Numbers going into commands are formatted with `%d`, as Lua's default conversion would round
/// them to 14 significant digits.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if ARGV[7] ~= '' then
            local first = redis.call('ZSCORE', KEYS[4], ARGV[7])
            if first then return tonumber(first) end
        end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local offset
        if redis.call('EXISTS', KEYS[1]) == 1 then
            offset = redis.call('INCR', KEYS[1])
        else
            offset = now
            local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
            if newest[1] then
                local fields = newest[1][2]
                for i = 1, #fields, 2 do
                    if fields[i] == 'o' then
                        local previous = tonumber(fields[i + 1])
                        if previous and previous >= offset then offset = previous + 1 end
                    end
                end
            end
            redis.call('SET', KEYS[1], string.format('%d', offset))
        end
        local o = string.format('%d', offset)
        redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'o', o, 'p', ARGV[1])
        redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d', now - tonumber(ARGV[3])))
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        redis.call(ARGV[6], KEYS[3], o .. ':' .. ARGV[1])
        if ARGV[7] ~= '' then
            redis.call('ZADD', KEYS[4], o, ARGV[7])
            redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[2]) - 1)
            redis.call('PEXPIRE', KEYS[4], ARGV[4])
        end
        return offset
        ",
    )
});

/// One history read.
/// KEYS: the counter, the stream. ARGV: history age (ms), whether to read events (0/1).
/// Returns `{latest, offset, payload, offset, payload, ...}`, events oldest first and none older
/// than the history age.
static HISTORY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local latest = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
        local out = {string.format('%d', latest)}
        if ARGV[2] == '1' then
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local min = now - tonumber(ARGV[1])
            if min < 0 then min = 0 end
            local entries = redis.call('XRANGE', KEYS[2], string.format('%d', min), '+')
            for _, entry in ipairs(entries) do
                local o, p
                local fields = entry[2]
                for i = 1, #fields, 2 do
                    if fields[i] == 'o' then o = fields[i + 1] end
                    if fields[i] == 'p' then p = fields[i + 1] end
                end
                if o and p then
                    out[#out + 1] = o
                    out[#out + 1] = p
                end
            end
        end
        return out
        ",
    )
});

/// Channels in Redis; see the module docs for the key layout and the guarantees.
#[derive(Debug, Clone)]
pub struct RedisChannels {
    redis: RedisConn,
}

impl RedisChannels {
    /// Channels on `redis`.
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    /// One publish, with an id to remember (empty for none).
    async fn append(&self, channel: &str, id: &str, payload: &str) -> Result<u64, StateError> {
        let command = if self.redis.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let mut invocation = PUBLISH.prepare_invoke();
        invocation
            .key(self.seq_key(channel))
            .key(self.log_key(channel))
            .key(self.pubsub_channel(channel))
            .key(self.ids_key(channel))
            .arg(payload)
            .arg(HISTORY_LEN)
            .arg(millis(HISTORY_AGE))
            .arg(millis(HISTORY_AGE).max(1))
            .arg(millis(SEQ_TTL))
            .arg(command)
            .arg(id);
        let offset: u64 = self.redis.script(&invocation).await?;
        Ok(offset)
    }

    fn seq_key(&self, channel: &str) -> String {
        self.redis.key(format_args!("ch:{{{channel}}}:seq"))
    }

    fn ids_key(&self, channel: &str) -> String {
        self.redis.key(format_args!("ch:{{{channel}}}:ids"))
    }

    fn log_key(&self, channel: &str) -> String {
        self.redis.key(format_args!("ch:{{{channel}}}:log"))
    }

    /// The Pub/Sub channel (shard channel on a cluster) of `channel`.
    pub fn pubsub_channel(&self, channel: &str) -> String {
        self.redis.key(format_args!("ch:{{{channel}}}"))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn corrupt(what: impl std::fmt::Display) -> StateError {
    StateError::Corrupt(what.to_string())
}

#[async_trait]
impl Channels for RedisChannels {
    async fn publish(&self, channel: &str, payload: &str) -> Result<u64, StateError> {
        self.append(channel, "", payload).await
    }

    async fn publish_once(
        &self,
        channel: &str,
        id: &str,
        payload: &str,
    ) -> Result<u64, StateError> {
        self.append(channel, id, payload).await
    }

    async fn history(&self, channel: &str, since: Option<u64>) -> Result<History, StateError> {
        let mut invocation = HISTORY.prepare_invoke();
        invocation
            .key(self.seq_key(channel))
            .key(self.log_key(channel))
            .arg(millis(HISTORY_AGE))
            .arg(if since.is_some() { "1" } else { "0" });
        let reply: Vec<String> = self.redis.script(&invocation).await?;
        let mut reply = reply.into_iter();
        let mut latest: u64 = reply
            .next()
            .ok_or_else(|| corrupt("a channel history without its latest offset"))?
            .parse()
            .map_err(|_| corrupt("a channel's latest offset is not a number"))?;
        let name: Arc<str> = Arc::from(channel);
        let mut events = Vec::new();
        while let (Some(offset), Some(payload)) = (reply.next(), reply.next()) {
            let offset: u64 = offset
                .parse()
                .map_err(|_| corrupt("a channel event's offset is not a number"))?;
            events.push(ChannelEvent {
                channel: name.clone(),
                offset,
                payload: Arc::from(payload),
            });
        }
        // A counter lost while its stream survived: the stream still knows the latest offset.
        if let Some(newest) = events.last() {
            latest = latest.max(newest.offset);
        }
        Ok(super::history_after(latest, events, since))
    }

    async fn listen(&self) -> Result<Listener, StateError> {
        let (raw_tx, raw) = mpsc::channel(LISTENER_QUEUE);
        let (commands, incoming) = mpsc::channel(64);
        let task = Task::new(self.clone(), raw_tx);
        tokio::spawn(task.run(incoming));
        Ok(Listener::new(commands, raw, Arc::new(self.clone())))
    }
}

/// The hash slot of a key (or shard channel), as Redis Cluster computes it.
fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % 16384
}

/// CRC-16/XMODEM, the checksum of Redis Cluster's key slots.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A node of a cluster, as `CLUSTER SLOTS` names it; `None` for the single server.
type Node = Option<(String, u16)>;

/// One generation of a listener's connections, dropped whole when any of them fails.
struct Session {
    generation: u64,
    opened_at: Instant,
    connections: HashMap<Node, MultiplexedConnection>,
    /// Slot ranges and the master that owns each (cluster only).
    slots: Vec<(u16, u16, (String, u16))>,
    /// Channels confirmed subscribed (by their Pub/Sub name) and where.
    subscribed: HashMap<String, Node>,
    /// Unsubscriptions sent and not yet seen pushed back, per channel.
    unsubscribing: HashMap<String, usize>,
}

/// The background task behind one [`Listener`].
struct Task {
    channels: RedisChannels,
    cluster: bool,
    /// Wanted channels: Pub/Sub name to channel name.
    wanted: HashMap<String, Arc<str>>,
    raw: mpsc::Sender<RawEvent>,
    pushes_tx: mpsc::UnboundedSender<(u64, PushInfo)>,
    pushes: Option<mpsc::UnboundedReceiver<(u64, PushInfo)>>,
    session: Option<Session>,
    next_generation: u64,
    /// A session was lost since the last [`RawEvent::Resubscribed`].
    lost: bool,
    backoff: Duration,
    /// When to connect again, while there is no session but channels are wanted.
    retry_at: Option<Instant>,
    /// Masters seen in the last slot map: asked first when discovering again.
    known_nodes: Vec<(String, u16)>,
}

impl Task {
    fn new(channels: RedisChannels, raw: mpsc::Sender<RawEvent>) -> Self {
        let (pushes_tx, pushes) = mpsc::unbounded_channel();
        Self {
            cluster: channels.redis.is_cluster(),
            channels,
            wanted: HashMap::new(),
            raw,
            pushes_tx,
            pushes: Some(pushes),
            session: None,
            next_generation: 0,
            lost: false,
            backoff: BACKOFF_MIN,
            retry_at: None,
            known_nodes: Vec::new(),
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let Some(mut pushes) = self.pushes.take() else {
            return;
        };
        let raw = self.raw.clone();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let retry_at = self.retry_at.unwrap_or_else(Instant::now);
            let retrying = self.session.is_none() && self.retry_at.is_some();
            let pinging = self.session.is_some();
            tokio::select! {
                () = raw.closed() => break,
                command = commands.recv() => match command {
                    Some(command) => self.apply(command).await,
                    None => break,
                },
                Some((generation, push)) = pushes.recv() => self.on_push(generation, push).await,
                () = sleep_until(retry_at), if retrying => {
                    let _ = self.connect().await;
                }
                _ = ping.tick(), if pinging => self.ping().await,
            }
        }
        // Dropping the session closes every connection of this listener.
        self.session = None;
    }

    async fn apply(&mut self, command: Command) {
        match command {
            Command::Subscribe(channel, done) => {
                let result = self.subscribe(channel).await;
                let _ = done.send(result);
            }
            Command::Unsubscribe(channel, done) => {
                self.unsubscribe(&channel).await;
                let _ = done.send(Ok(()));
            }
        }
    }

    async fn subscribe(&mut self, channel: Arc<str>) -> Result<(), StateError> {
        let name = self.channels.pubsub_channel(&channel);
        if self.wanted.contains_key(&name) {
            return Ok(());
        }
        self.wanted.insert(name.clone(), channel);
        let result = match self.session.as_mut() {
            Some(session) => {
                match subscribe_in(
                    &self.channels.redis,
                    &self.pushes_tx,
                    self.cluster,
                    session,
                    &name,
                )
                .await
                {
                    Ok(()) => Ok(()),
                    // The connection or the slot map is stale: start over, which subscribes
                    // this channel with all the others.
                    Err(err) => {
                        tracing::debug!(error = %err, "channel subscription failed; reconnecting");
                        self.drop_session();
                        self.connect().await
                    }
                }
            }
            None => self.connect().await,
        };
        let confirmed = self
            .session
            .as_ref()
            .is_some_and(|s| s.subscribed.contains_key(&name));
        if confirmed {
            Ok(())
        } else {
            self.wanted.remove(&name);
            Err(result
                .err()
                .unwrap_or_else(|| corrupt("the channel subscription was not confirmed")))
        }
    }

    async fn unsubscribe(&mut self, channel: &str) {
        let name = self.channels.pubsub_channel(channel);
        if self.wanted.remove(&name).is_none() {
            return;
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(node) = session.subscribed.remove(&name) else {
            return;
        };
        let Some(connection) = session.connections.get_mut(&node) else {
            return;
        };
        *session.unsubscribing.entry(name.clone()).or_default() += 1;
        let command = if self.cluster {
            "SUNSUBSCRIBE"
        } else {
            "UNSUBSCRIBE"
        };
        let reply: redis::RedisResult<Value> =
            redis::cmd(command).arg(&name).query_async(connection).await;
        if let Err(err) = reply {
            // Dropping the connections ends the subscription as surely.
            tracing::debug!(error = %err, "channel unsubscription failed; reconnecting");
            self.drop_session();
        }
    }

    /// Forgets the current connections; channels still wanted are subscribed again: at once when
    /// the session had lasted, after the back-off when it failed soon after it opened (so that a
    /// connection that keeps failing never makes the task spin).
    fn drop_session(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        self.lost = true;
        if self.wanted.is_empty() {
            self.retry_at = None;
            return;
        }
        if session.opened_at.elapsed() >= STABLE_AFTER {
            self.backoff = BACKOFF_MIN;
            self.retry_at = Some(Instant::now());
        } else {
            self.retry_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Opens a new session subscribed to every wanted channel; on success, tells the listener if
    /// an earlier one was lost. On failure, schedules the next attempt.
    async fn connect(&mut self) -> Result<(), StateError> {
        self.session = None;
        match self.open_session().await {
            Ok(session) => {
                self.session = Some(session);
                self.retry_at = None;
                if self.lost {
                    self.lost = false;
                    let _ = self.raw.send(RawEvent::Resubscribed).await;
                }
                Ok(())
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?self.backoff, "cannot subscribe to channels");
                self.lost = true;
                self.retry_at = (!self.wanted.is_empty()).then(|| Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                Err(err)
            }
        }
    }

    async fn open_session(&mut self) -> Result<Session, StateError> {
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut session = Session {
            generation,
            opened_at: Instant::now(),
            connections: HashMap::new(),
            slots: Vec::new(),
            subscribed: HashMap::new(),
            unsubscribing: HashMap::new(),
        };
        if self.cluster {
            session.slots = self.discover().await?;
            self.known_nodes = session.slots.iter().map(|(_, _, n)| n.clone()).collect();
            self.known_nodes.sort();
            self.known_nodes.dedup();
        }
        let names: Vec<String> = self.wanted.keys().cloned().collect();
        for name in names {
            subscribe_in(
                &self.channels.redis,
                &self.pushes_tx,
                self.cluster,
                &mut session,
                &name,
            )
            .await?;
        }
        Ok(session)
    }

    /// The cluster's slot map, from the first node that answers: known masters first, then the
    /// configured seeds.
    async fn discover(&self) -> Result<Vec<(u16, u16, (String, u16))>, StateError> {
        let redis = &self.channels.redis;
        let mut last_error = None;
        for node in &self.known_nodes {
            let attempt = async {
                let mut conn = redis
                    .push_connection(Some((node.0.as_str(), node.1)), |_: PushInfo| {
                        Ok::<(), ()>(())
                    })
                    .await?;
                cluster_slots(&mut conn, &node.0).await
            };
            match attempt.await {
                Ok(slots) if !slots.is_empty() => return Ok(slots),
                Ok(_) => {}
                Err(err) => last_error = Some(err),
            }
        }
        for seed in 0..redis.options().urls.len() {
            let attempt = async {
                let mut conn = redis.seed_connection(seed).await?;
                let host = match redis.options().urls[seed].as_str().into_connection_info() {
                    Ok(info) => match info.addr() {
                        redis::ConnectionAddr::Tcp(host, _) => host.clone(),
                        _ => String::new(),
                    },
                    Err(_) => String::new(),
                };
                cluster_slots(&mut conn, &host).await
            };
            match attempt.await {
                Ok(slots) if !slots.is_empty() => return Ok(slots),
                Ok(_) => {}
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error
            .map(StateError::from)
            .unwrap_or_else(|| corrupt("no cluster node knows the slot map")))
    }

    async fn on_push(&mut self, generation: u64, push: PushInfo) {
        let current = self.session.as_ref().map(|s| s.generation);
        if current != Some(generation) {
            // From connections already dropped.
            return;
        }
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                let Some(event) = self.parse_message(push) else {
                    return;
                };
                let _ = self.raw.send(RawEvent::Event(event)).await;
            }
            PushKind::Disconnection => {
                tracing::info!("channel listener lost its Redis connection; reconnecting");
                self.drop_session();
            }
            PushKind::Unsubscribe | PushKind::SUnsubscribe => {
                let Some(name) = push.data.first().and_then(text) else {
                    return;
                };
                let Some(session) = self.session.as_mut() else {
                    return;
                };
                if let Some(count) = session.unsubscribing.get_mut(&name) {
                    *count -= 1;
                    if *count == 0 {
                        session.unsubscribing.remove(&name);
                    }
                    return;
                }
                if self.wanted.contains_key(&name) {
                    // The server ended a subscription of ours: its slot moved to another node.
                    tracing::info!("a channel's slot moved; subscribing at its new owner");
                    self.drop_session();
                }
            }
            _ => {}
        }
    }

    fn parse_message(&self, push: PushInfo) -> Option<ChannelEvent> {
        let mut data = push.data.into_iter();
        let name = text(&data.next()?)?;
        let channel = self.wanted.get(&name)?.clone();
        let message = text(&data.next()?)?;
        let (offset, payload) = message.split_once(':')?;
        Some(ChannelEvent {
            channel,
            offset: offset.parse().ok()?,
            payload: Arc::from(payload),
        })
    }

    async fn ping(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        for connection in session.connections.values_mut() {
            let reply: redis::RedisResult<Value> = redis::cmd("PING").query_async(connection).await;
            if let Err(err) = reply {
                tracing::info!(error = %err, "channel listener's Redis connection stopped answering; reconnecting");
                self.drop_session();
                return;
            }
        }
    }
}

/// A bulk or simple string as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Subscribes `session` to the Pub/Sub channel `name` at the node that owns it, connecting to
/// that node first if need be; returns once the server confirmed.
async fn subscribe_in(
    redis: &RedisConn,
    pushes: &mpsc::UnboundedSender<(u64, PushInfo)>,
    cluster: bool,
    session: &mut Session,
    name: &str,
) -> Result<(), StateError> {
    let node: Node = if cluster {
        let slot = key_slot(name.as_bytes());
        let owner = session
            .slots
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, node)| node.clone())
            .ok_or_else(|| corrupt(format_args!("no cluster node owns slot {slot}")))?;
        Some(owner)
    } else {
        None
    };
    if !session.connections.contains_key(&node) {
        let generation = session.generation;
        let pushes = pushes.clone();
        let sender = move |info: PushInfo| pushes.send((generation, info)).map_err(|_| ());
        let address = node.as_ref().map(|(host, port)| (host.as_str(), *port));
        let connection = redis.push_connection(address, sender).await?;
        session.connections.insert(node.clone(), connection);
    }
    let connection = session
        .connections
        .get_mut(&node)
        .ok_or_else(|| corrupt("a listener connection vanished"))?;
    let command = if cluster { "SSUBSCRIBE" } else { "SUBSCRIBE" };
    let reply: Value = redis::cmd(command)
        .arg(name)
        .query_async(connection)
        .await?;
    match reply {
        Value::Push {
            kind: PushKind::Subscribe | PushKind::SSubscribe,
            ..
        } => {
            session.subscribed.insert(name.to_owned(), node);
            Ok(())
        }
        other => Err(corrupt(format_args!(
            "{command} was answered with {other:?}"
        ))),
    }
}

/// Parses `CLUSTER SLOTS` into slot ranges and their masters; an empty host means the node
/// asked, at `asked_host`.
async fn cluster_slots(
    connection: &mut MultiplexedConnection,
    asked_host: &str,
) -> redis::RedisResult<Vec<(u16, u16, (String, u16))>> {
    let reply: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(connection)
        .await?;
    let mut slots = Vec::new();
    let Value::Array(ranges) = reply else {
        return Ok(slots);
    };
    for range in ranges {
        let Value::Array(range) = range else { continue };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
            (range.first(), range.get(1), range.get(2))
        else {
            continue;
        };
        let (Some(host), Some(Value::Int(port))) = (master.first().and_then(text), master.get(1))
        else {
            continue;
        };
        let host = if host.is_empty() || host == "?" {
            asked_host.to_owned()
        } else {
            host
        };
        let (Ok(start), Ok(end), Ok(port)) = (
            u16::try_from(*start),
            u16::try_from(*end),
            u16::try_from(*port),
        ) else {
            continue;
        };
        slots.push((start, end, (host, port)));
    }
    Ok(slots)
}
