//! Channels on Redis when Redis goes away: a single server restarted, a cluster master failing
//! over to its replica, a cluster master restarted in place. Each test starts its own `redis-server`
//! processes on free loopback ports (no persistence, in a temporary directory) and kills only
//! those; a guard stops them even when the test fails. Every wait polls against a deadline.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use clubpulse_state::{
    Channels, RedisConn, RedisOptions,
    channels::{ChannelEvent, Listener, RedisChannels},
};
use tokio::time::{Instant, sleep};
use uuid::Uuid;

/// Longest wait for anything in these tests.
const DEADLINE: Duration = Duration::from_secs(30);

/// A free loopback port whose cluster bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// `redis-server` processes of one test; killed (and their directory removed) on drop.
struct Servers {
    dir: tempfile::TempDir,
    /// Port and process of each server; `None` while it is down.
    nodes: Vec<(u16, Option<Child>)>,
    cluster: bool,
}

impl Servers {
    fn new(count: usize, cluster: bool) -> Self {
        let mut servers = Self {
            dir: tempfile::tempdir().unwrap(),
            nodes: Vec::new(),
            cluster,
        };
        for _ in 0..count {
            let port = free_port();
            servers.nodes.push((port, None));
            servers.start(servers.nodes.len() - 1);
        }
        servers
    }

    fn node_dir(&self, index: usize) -> PathBuf {
        let dir = self.dir.path().join(format!("node-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts server `index` on its port (again).
    fn start(&mut self, index: usize) {
        let port = self.nodes[index].0;
        let dir = self.node_dir(index);
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        if self.cluster {
            command.args([
                // Replicas sync at once, rather than after the default five-second wait.
                "--repl-diskless-sync-delay",
                "0",
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "1000",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.nodes[index].1 = Some(child);
    }

    /// Kills server `index` at once (`SIGKILL`), as a crash would.
    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].1.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn port(&self, index: usize) -> u16 {
        self.nodes[index].0
    }

    fn url(&self, index: usize) -> String {
        format!("redis://127.0.0.1:{}", self.port(index))
    }

    fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes.iter().position(|(p, _)| *p == port).unwrap()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}

/// Polls `check` until it gives a value, failing the test after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Runs one command on the server at `port`, on a fresh connection.
async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    cmd.query_async(&mut conn).await
}

async fn await_up(port: u16) {
    eventually("a Redis server to answer", || async move {
        query::<String>(port, &redis::cmd("PING")).await.ok()
    })
    .await;
}

/// Creates the cluster over every server, `replicas` per master, and waits until every node sees
/// it whole.
async fn create_cluster(servers: &Servers, replicas: usize) {
    for index in 0..servers.nodes.len() {
        await_up(servers.port(index)).await;
    }
    let nodes: Vec<String> = (0..servers.nodes.len())
        .map(|i| format!("127.0.0.1:{}", servers.port(i)))
        .collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "redis-cli --cluster create failed");
    let ports: Vec<u16> = (0..servers.nodes.len()).map(|i| servers.port(i)).collect();
    await_cluster_ok(&ports, servers.nodes.len()).await;
    // A replica can take over only once it has synced with its master.
    let want = servers.nodes.len() / (replicas + 1) * replicas;
    eventually("every replica to sync", || {
        let ports = ports.clone();
        async move {
            let mut synced = 0;
            for port in ports {
                let info: String = query(port, redis::cmd("INFO").arg("replication"))
                    .await
                    .ok()?;
                if info.contains("role:slave") && info.contains("master_link_status:up") {
                    synced += 1;
                }
            }
            (synced == want).then_some(())
        }
    })
    .await;
}

/// Waits until every node at `ports` says the cluster is ok with `known` nodes.
async fn await_cluster_ok(ports: &[u16], known: usize) {
    for &port in ports {
        eventually("the cluster to agree", || async move {
            let info: String = query(port, redis::cmd("CLUSTER").arg("INFO")).await.ok()?;
            (info.contains("cluster_state:ok")
                && info.contains(&format!("cluster_known_nodes:{known}")))
            .then_some(())
        })
        .await;
    }
}

/// The port of the master that `port`'s node says owns `slot`.
async fn owner_of(port: u16, slot: u16) -> Option<u16> {
    let slots: Vec<redis::Value> = query(port, redis::cmd("CLUSTER").arg("SLOTS")).await.ok()?;
    for range in slots {
        let redis::Value::Array(range) = range else {
            continue;
        };
        let (Some(redis::Value::Int(start)), Some(redis::Value::Int(end))) =
            (range.first(), range.get(1))
        else {
            continue;
        };
        if (*start..=*end).contains(&i64::from(slot)) {
            let Some(redis::Value::Array(master)) = range.get(2) else {
                return None;
            };
            let Some(redis::Value::Int(owner)) = master.get(1) else {
                return None;
            };
            return u16::try_from(*owner).ok();
        }
    }
    None
}

async fn connect(urls: &str, cluster: bool) -> RedisChannels {
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let conn = RedisConn::connect(&RedisOptions::new(urls, cluster, prefix))
        .await
        .unwrap();
    RedisChannels::new(conn)
}

/// Publishes, retrying while Redis is unreachable (the publish of a retried call may have
/// happened; the tests look for payloads, not counts).
async fn publish(channels: &RedisChannels, channel: &str, payload: &str) -> u64 {
    eventually("a publish to succeed", || async move {
        channels.publish(channel, payload).await.ok()
    })
    .await
}

/// Receives until an event with `payload` arrives; every event must belong to `channel`.
async fn receive(listener: &mut Listener, channel: &str, payload: &str) -> ChannelEvent {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, listener.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {payload}"))
            .expect("the listener is still running");
        assert_eq!(&*event.channel, channel);
        if &*event.payload == payload {
            return event;
        }
    }
}

/// How many subscriptions the node at `port` counts for `name` (shard channels on a cluster).
async fn subscriptions(port: u16, name: &str, cluster: bool) -> Option<i64> {
    let sub = if cluster { "SHARDNUMSUB" } else { "NUMSUB" };
    let counts: (String, i64) = query(port, redis::cmd("PUBSUB").arg(sub).arg(name))
        .await
        .ok()?;
    Some(counts.1)
}

#[tokio::test]
async fn a_listener_survives_a_restarted_single_server() {
    let mut servers = Servers::new(1, false);
    let port = servers.port(0);
    await_up(port).await;
    let channels = connect(&servers.url(0), false).await;
    let channel = format!("facility:{}", Uuid::new_v4());
    let mut listener = channels.listen().await.unwrap();
    listener.handle().subscribe(&channel).await.unwrap();
    let before = publish(&channels, &channel, r#"{"n":"before"}"#).await;
    assert_eq!(
        receive(&mut listener, &channel, r#"{"n":"before"}"#)
            .await
            .offset,
        before
    );

    servers.kill(0);
    servers.start(0);
    await_up(port).await;
    // At once, perhaps before the listener is back: found in history when it resubscribes.
    let during = publish(&channels, &channel, r#"{"n":"during"}"#).await;
    assert!(during > before, "offsets keep growing across the data loss");
    let name = channels.pubsub_channel(&channel);
    eventually("the listener to subscribe again", || {
        let name = name.clone();
        async move { (subscriptions(port, &name, false).await? == 1).then_some(()) }
    })
    .await;
    let after = publish(&channels, &channel, r#"{"n":"after"}"#).await;

    let got_during = receive(&mut listener, &channel, r#"{"n":"during"}"#).await;
    assert_eq!(got_during.offset, during);
    let got_after = receive(&mut listener, &channel, r#"{"n":"after"}"#).await;
    assert_eq!(got_after.offset, after);

    // Once dropped, the listener's connection closes.
    drop(listener);
    eventually("the dropped listener to unsubscribe", || {
        let name = name.clone();
        async move { (subscriptions(port, &name, false).await? == 0).then_some(()) }
    })
    .await;
}

/// The slot of `channel`'s keys, as the node at `port` computes it.
async fn slot_of(channels: &RedisChannels, port: u16, channel: &str) -> u16 {
    let name = channels.pubsub_channel(channel);
    query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(name))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_listener_follows_a_cluster_failover() {
    let mut servers = Servers::new(6, true);
    create_cluster(&servers, 1).await;
    let channels = connect(&servers.urls(), true).await;
    let channel = format!("facility:{}", Uuid::new_v4());
    let name = channels.pubsub_channel(&channel);
    let mut listener = channels.listen().await.unwrap();
    listener.handle().subscribe(&channel).await.unwrap();
    publish(&channels, &channel, r#"{"n":"before"}"#).await;
    receive(&mut listener, &channel, r#"{"n":"before"}"#).await;

    let slot = slot_of(&channels, servers.port(0), &channel).await;
    let old_owner = owner_of(servers.port(0), slot).await.unwrap();
    assert_eq!(subscriptions(old_owner, &name, true).await, Some(1));
    servers.kill(servers.index_of(old_owner));
    let survivors: Vec<u16> = (0..servers.nodes.len())
        .map(|i| servers.port(i))
        .filter(|&p| p != old_owner)
        .collect();
    let any = survivors[0];
    let new_owner = eventually("the replica to be promoted", || async move {
        let owner = owner_of(any, slot).await?;
        let info: String = query(any, redis::cmd("CLUSTER").arg("INFO")).await.ok()?;
        (owner != old_owner && info.contains("cluster_state:ok")).then_some(owner)
    })
    .await;

    publish(&channels, &channel, r#"{"n":"after"}"#).await;
    receive(&mut listener, &channel, r#"{"n":"after"}"#).await;
    assert_eq!(subscriptions(new_owner, &name, true).await, Some(1));

    // The old master comes back as a replica of the new one; the listener stays where it is.
    let old_index = servers.index_of(old_owner);
    servers.start(old_index);
    await_up(old_owner).await;
    publish(&channels, &channel, r#"{"n":"rejoined"}"#).await;
    receive(&mut listener, &channel, r#"{"n":"rejoined"}"#).await;
}

#[tokio::test]
async fn a_listener_survives_a_restarted_cluster_master() {
    let mut servers = Servers::new(3, true);
    create_cluster(&servers, 0).await;
    let channels = connect(&servers.urls(), true).await;
    let channel = format!("user:{}", Uuid::new_v4());
    let name = channels.pubsub_channel(&channel);
    let mut listener = channels.listen().await.unwrap();
    listener.handle().subscribe(&channel).await.unwrap();
    publish(&channels, &channel, r#"{"n":"before"}"#).await;
    receive(&mut listener, &channel, r#"{"n":"before"}"#).await;

    let slot = slot_of(&channels, servers.port(0), &channel).await;
    let owner = owner_of(servers.port(0), slot).await.unwrap();
    let index = servers.index_of(owner);
    servers.kill(index);
    servers.start(index);
    // It keeps its slots (its cluster configuration survives), but not its data.
    let ports: Vec<u16> = (0..servers.nodes.len()).map(|i| servers.port(i)).collect();
    await_cluster_ok(&ports, 3).await;

    publish(&channels, &channel, r#"{"n":"after"}"#).await;
    receive(&mut listener, &channel, r#"{"n":"after"}"#).await;
    eventually("the listener to subscribe again", || {
        let name = name.clone();
        async move { (subscriptions(owner, &name, true).await? == 1).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_listener_follows_a_slot_moved_to_another_master() {
    let servers = Servers::new(3, true);
    create_cluster(&servers, 0).await;
    let channels = connect(&servers.urls(), true).await;
    let channel = format!("facility:{}", Uuid::new_v4());
    let name = channels.pubsub_channel(&channel);
    let mut listener = channels.listen().await.unwrap();
    listener.handle().subscribe(&channel).await.unwrap();
    let before = publish(&channels, &channel, r#"{"n":"before"}"#).await;
    receive(&mut listener, &channel, r#"{"n":"before"}"#).await;

    // Move the channel's slot, keys and all, as a resharding would.
    let ports: Vec<u16> = (0..servers.nodes.len()).map(|i| servers.port(i)).collect();
    let slot = slot_of(&channels, ports[0], &channel).await;
    let source = owner_of(ports[0], slot).await.unwrap();
    let target = ports.iter().copied().find(|&p| p != source).unwrap();
    let id = |port: u16| async move {
        query::<String>(port, redis::cmd("CLUSTER").arg("MYID"))
            .await
            .unwrap()
    };
    let (source_id, target_id) = (id(source).await, id(target).await);
    let setslot = |port: u16, state: &'static str, node: String| async move {
        query::<String>(
            port,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(state)
                .arg(node),
        )
        .await
        .unwrap();
    };
    setslot(target, "IMPORTING", source_id.clone()).await;
    setslot(source, "MIGRATING", target_id.clone()).await;
    let keys: Vec<String> = query(
        source,
        redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100),
    )
    .await
    .unwrap();
    assert!(!keys.is_empty(), "the channel's keys are in its slot");
    let _: String = query(
        source,
        redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(target)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&keys),
    )
    .await
    .unwrap();
    for &port in &ports {
        setslot(port, "NODE", target_id.clone()).await;
    }

    eventually("the listener to subscribe at the slot's new owner", || {
        let name = name.clone();
        async move { (subscriptions(target, &name, true).await? == 1).then_some(()) }
    })
    .await;
    assert_eq!(subscriptions(source, &name, true).await, Some(0));
    let after = publish(&channels, &channel, r#"{"n":"after"}"#).await;
    assert_eq!(after, before + 1, "the counter moved with its slot");
    let event = receive(&mut listener, &channel, r#"{"n":"after"}"#).await;
    assert_eq!(event.offset, after);
}
