//! One Redis connection handle for a single server or a Redis Cluster.
//!
//! Both are multiplexed: one TCP connection per node carries every concurrent request, and cloning
//! the handle is cheap. The single-node form is a `ConnectionManager`, which reconnects on its own
//! with bounded back-off; the cluster form follows slot moves and re-discovers nodes.
//!
//! Pub/Sub does not fit a shared multiplexed connection (a subscription belongs to a connection, and
//! must be renewed when that connection is lost), so the handle also keeps the options it was made
//! from: [`RedisConn::push_connection`] opens a dedicated RESP3 connection to one node, whose
//! server pushes (messages, unsubscriptions, the loss of the connection) go to a sender of the
//! caller's.

use std::time::{Duration, Instant};

use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, FromRedisValue, IntoConnectionInfo,
    ProtocolVersion, RedisResult, Script, ScriptInvocation,
    aio::{AsyncPushSender, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use crate::StateError;

/// How to reach Redis.
#[derive(Clone)]
pub struct RedisOptions {
    /// One URL (`redis://host:port/db`), or several seed nodes of a cluster.
    pub urls: Vec<String>,
    /// Treat the URL(s) as Redis Cluster seed nodes.
    pub cluster: bool,
    /// Prefix of every key; lets deployments (and tests) share a server without colliding.
    pub key_prefix: String,
    /// Longest wait for one reply before the call fails (so a dead Redis costs bounded time).
    pub response_timeout: Duration,
    /// Longest wait for a connection attempt.
    pub connection_timeout: Duration,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("nodes", &self.urls.len())
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisOptions {
    /// Options for `url` (comma-separated for several cluster seed nodes) with default timeouts.
    pub fn new(url: &str, cluster: bool, key_prefix: impl Into<String>) -> Self {
        let urls: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        let cluster = cluster || urls.len() > 1;
        Self {
            urls,
            cluster,
            key_prefix: key_prefix.into(),
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A cheap-to-clone handle on Redis, single node or cluster, with the deployment's key prefix.
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
    prefix: String,
    options: RedisOptions,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.inner {
            Inner::Single(_) => "single",
            Inner::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisConn")
            .field("mode", &mode)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisConn {
    pub async fn connect(options: &RedisOptions) -> Result<Self, StateError> {
        let inner = if options.cluster {
            let client = ClusterClient::builder(options.urls.clone())
                .connection_timeout(options.connection_timeout)
                .response_timeout(options.response_timeout)
                .build()?;
            Inner::Cluster(client.get_async_connection().await?)
        } else {
            let url = options
                .urls
                .first()
                .ok_or_else(|| StateError::Corrupt("REDIS_URL is empty".to_owned()))?;
            let client = redis::Client::open(url.as_str())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.connection_timeout))
                .set_response_timeout(Some(options.response_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            Inner::Single(ConnectionManager::new_with_config(client, config).await?)
        };
        Ok(Self {
            inner,
            prefix: options.key_prefix.clone(),
            options: options.clone(),
        })
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    /// The options this handle was made from.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// Opens a dedicated RESP3 connection, not shared with any other caller, whose server pushes go
    /// to `push`. It goes to the configured server, or on a cluster to `node` (`host`, `port`)
    /// with the credentials of the first seed node. It does not reconnect: once it is lost, `push`
    /// receives a `Disconnection` and the caller opens another.
    pub async fn push_connection(
        &self,
        node: Option<(&str, u16)>,
        push: impl AsyncPushSender,
    ) -> RedisResult<MultiplexedConnection> {
        let url = self.options.urls.first().map(String::as_str).unwrap_or("");
        let mut info = url.into_connection_info()?;
        if let Some((host, port)) = node {
            info = info.set_addr(ConnectionAddr::Tcp(host.to_owned(), port));
        }
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connection_timeout))
            .set_response_timeout(Some(self.options.response_timeout))
            .set_push_sender(push);
        redis::Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Opens a plain connection (no pushes) to one seed node, such as to ask a cluster node for its
    /// view of the slots.
    pub async fn seed_connection(&self, seed: usize) -> RedisResult<MultiplexedConnection> {
        let url = self
            .options
            .urls
            .get(seed)
            .map(String::as_str)
            .unwrap_or("");
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connection_timeout))
            .set_response_timeout(Some(self.options.response_timeout));
        redis::Client::open(url)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// `name` under the deployment's prefix.
    pub fn key(&self, name: impl std::fmt::Display) -> String {
        format!("{}{}", self.prefix, name)
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        let started = Instant::now();
        let reply = match &self.inner {
            Inner::Single(c) => cmd.query_async(&mut c.clone()).await,
            Inner::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        record(command_name(cmd), started, reply.is_ok());
        reply
    }

    /// Sends independent commands in one batch and returns their replies in order: one pipeline on a
    /// single server; on a cluster, concurrent single commands (each routed to its slot's node, since
    /// a cluster pipeline may not cross slots). Never atomic.
    pub async fn batch<T: FromRedisValue>(&self, cmds: Vec<Cmd>) -> RedisResult<Vec<T>> {
        let started = Instant::now();
        let replies = self.batch_unrecorded(cmds).await;
        record("PIPELINE", started, replies.is_ok());
        replies
    }

    async fn batch_unrecorded<T: FromRedisValue>(&self, cmds: Vec<Cmd>) -> RedisResult<Vec<T>> {
        match &self.inner {
            Inner::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                pipe.query_async(&mut c.clone()).await
            }
            Inner::Cluster(c) => {
                futures::future::try_join_all(cmds.iter().map(|cmd| {
                    let mut conn = c.clone();
                    async move { cmd.query_async::<T>(&mut conn).await }
                }))
                .await
            }
        }
    }

    /// Runs a Lua script (EVALSHA, loading it on first use). Every key it touches must be in one
    /// hash slot for cluster mode.
    pub async fn script<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        let started = Instant::now();
        let reply = match &self.inner {
            Inner::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Inner::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        };
        record("EVALSHA", started, reply.is_ok());
        reply
    }

    pub async fn ping(&self) -> Result<(), StateError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StateError::Corrupt(format!("PING answered {pong:?}")))
        }
    }
}

/// The command's name (its first argument), upper-cased. Commands come from this code, never
/// from input, so the label values are a bounded set.
fn command_name(cmd: &Cmd) -> String {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).to_ascii_uppercase(),
        _ => "UNNAMED".to_owned(),
    }
}

/// One round trip in `clubpulse_redis_command_duration_seconds`.
fn record(command: impl Into<String>, started: Instant, ok: bool) {
    metrics::histogram!(
        "clubpulse_redis_command_duration_seconds",
        "command" => command.into(),
        "outcome" => if ok { "ok" } else { "error" },
    )
    .record(started.elapsed().as_secs_f64());
}

/// A script compiled once per process.
pub(crate) fn script(source: &'static str) -> Script {
    Script::new(source)
}
