//! The `ws-fanout` scenario: many WebSocket connections watching one facility, and how long an
//! event takes to reach all of them.
//!
//! Opens `--connections` sockets on `GET /api/v1/ws` (`--connect-concurrency` handshakes at a time,
//! so the server's accept queue is never overrun), each subscribing to one `facility:<id>` channel
//! and waiting for `subscribed`. Then, for `--rounds` rounds, triggers one `slot.released` event and
//! takes, for every socket, the time from the trigger's completion to that socket reading the
//! event frame (the timestamp is taken as the frame is read, before it is parsed). Per round the
//! last socket's delivery is kept; every socket's delivery goes into one HDR histogram.
//!
//! Two targets (`--ws-target`):
//! - `club-pulse`: a watcher and an actor sign up; every socket uses the watcher's session, the
//!   facility is created as the holds scenario does, and each round the actor holds a slot and
//!   cancels it. The clock starts when the cancel's answer has arrived: the release is committed
//!   and the server's outbox relay has yet to publish it.
//! - `reference`: a minimal broadcast server (`bench/ws-reference`). The trigger is
//!   `POST /broadcast` with the event, answered once the server has handed it to every socket, so
//!   most sockets read the event before that answer comes back. The clock therefore starts when the
//!   POST is sent, the moment the event exists for that server, as the committed cancel is the
//!   moment it exists for Club Pulse.
//!
//! Both clocks are reported for both targets: after the trigger's answer (a delivery read before it
//! counts as 0 and as `early_deliveries`) and after the trigger was sent.
//!
//! With `--server-pid`, the server's resident memory (`VmRSS`) is read after a warm-up and before
//! the sockets open, and again once all of them have been open and idle for `--idle-seconds`; the
//! difference divided by the connections is the memory per idle connection.
//!
//! Every wait has a deadline (`--ws-timeout`): a server without the endpoint, or one that never
//! delivers, ends the run with an error rather than a hang.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use chrono::{DateTime, Utc};
use futures::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{
    net::TcpStream,
    sync::{Semaphore, mpsc},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message, client::IntoClientRequest as _, http::HeaderValue, protocol::WebSocketConfig,
    },
};

use crate::Args;

/// Options of the `ws-fanout` scenario.
#[derive(Debug, clap::Args)]
pub struct WsArgs {
    /// The server the `ws-fanout` scenario drives.
    #[arg(long, value_enum, default_value_t = WsTarget::ClubPulse)]
    pub ws_target: WsTarget,
    /// WebSocket connections to open, all on one channel.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Events to measure, one at a time.
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// WebSocket handshakes in flight at once while the connections open.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// The server's process id, to read its memory before and after the connections open.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds the connections stay idle before the server's memory is read.
    #[arg(long, default_value_t = 5)]
    pub idle_seconds: u64,
    /// Seconds any one wait may take: a connection, a subscription, a trigger, a round's deliveries.
    #[arg(long, default_value_t = 15)]
    pub ws_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WsTarget {
    /// Club Pulse: a hold and its cancel produce the event.
    ClubPulse,
    /// The reference broadcast server: `POST /broadcast` produces it.
    Reference,
}

#[derive(Debug, Serialize)]
struct WsReport {
    scenario: &'static str,
    target: WsTarget,
    label: String,
    connections: usize,
    rounds: usize,
    /// When the clock starts for the figures below: `cancel-answered` (Club Pulse) or
    /// `broadcast-sent` (the reference).
    clock: &'static str,
    /// Per round, the last socket's delivery.
    last_p50_ms: f64,
    last_p99_ms: f64,
    last_max_ms: f64,
    /// Every socket's delivery, all rounds together.
    socket_p50_ms: f64,
    socket_p99_ms: f64,
    socket_max_ms: f64,
    /// Per round, the last socket's delivery after the trigger's answer, and after it was sent.
    last_after_answer_p50_ms: f64,
    last_after_answer_p99_ms: f64,
    last_after_request_p50_ms: f64,
    last_after_request_p99_ms: f64,
    /// Deliveries read before the trigger's answer arrived (0 after the answer).
    early_deliveries: u64,
    /// How long the trigger (the cancel, or the broadcast POST) took to answer.
    trigger_p50_ms: f64,
    trigger_p99_ms: f64,
    /// Seconds the connections took to open and subscribe.
    open_seconds: f64,
    server_rss_before_kib: Option<u64>,
    server_rss_after_kib: Option<u64>,
    server_kib_per_connection: Option<f64>,
    loadgen_kib_per_connection: Option<f64>,
    /// Deliveries that never came within `--ws-timeout`.
    missing: u64,
}

/// A frame a socket read: only events matter once subscribed.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    event: Option<String>,
    channel: Option<String>,
    start: Option<String>,
}

/// One socket read the released slot starting at `start` at `at`.
struct Delivery {
    socket: usize,
    start: String,
    at: Instant,
}

/// Where and as whom the sockets connect, and what they subscribe to.
struct Target {
    url: String,
    token: Option<String>,
    channel: String,
}

type Socket = WebSocketStream<TcpStream>;

pub async fn run(client: &reqwest::Client, base: &str, args: &Args) -> anyhow::Result<()> {
    let ws = &args.ws;
    if ws.connections == 0 || ws.rounds == 0 || ws.connect_concurrency == 0 {
        bail!("--connections, --rounds and --connect-concurrency must be positive");
    }
    let timeout = Duration::from_secs(ws.ws_timeout);
    let ws_url = format!(
        "{}/api/v1/ws",
        base.replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    );
    let trigger = Trigger::prepare(client, base, args, timeout).await?;
    let target = Arc::new(Target {
        url: ws_url,
        token: trigger.watcher_token(),
        channel: format!("facility:{}", trigger.facility_id()),
    });
    let tomorrow = (Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc();
    let slot = |k: usize| {
        let start = tomorrow + chrono::Duration::minutes(5 * k as i64);
        (start, start + chrono::Duration::minutes(5))
    };

    // Warm-up: a few sockets, one event through them, closed again; this also fails fast, with the
    // server's answer, when the endpoint is missing.
    let warm = ws.connections.min(50);
    let (deliveries_tx, mut deliveries) = mpsc::unbounded_channel();
    {
        let (warm_tx, mut warm_rx) = mpsc::unbounded_channel();
        let stop = Arc::new(tokio::sync::Notify::new());
        let probe = open(&target, timeout).await.with_context(|| {
            format!(
                "the WebSocket endpoint {} did not accept a subscription",
                target.url
            )
        })?;
        drop(probe);
        let sockets = open_all(
            &target,
            warm,
            ws.connect_concurrency,
            timeout,
            &warm_tx,
            &stop,
        )
        .await
        .context("warm-up connections")?;
        let (start, end) = slot(0);
        trigger.fire(client, start, end, timeout).await?;
        let got = collect(&mut warm_rx, warm, start, timeout).await;
        if got.iter().any(Option::is_none) {
            bail!(
                "warm-up: {} of {warm} sockets saw no slot.released for {start} within {timeout:?} of the trigger's answer",
                got.iter().filter(|d| d.is_none()).count()
            );
        }
        stop.notify_waiters();
        for socket in sockets {
            socket.abort();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let server_before = ws.server_pid.map(rss_kib).transpose()?;
    let own_before = rss_kib_self().ok();
    let stop = Arc::new(tokio::sync::Notify::new());
    let opened_at = Instant::now();
    let _sockets = open_all(
        &target,
        ws.connections,
        ws.connect_concurrency,
        timeout,
        &deliveries_tx,
        &stop,
    )
    .await?;
    let open_seconds = opened_at.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(ws.idle_seconds)).await;
    let server_after = ws.server_pid.map(rss_kib).transpose()?;
    let own_after = rss_kib_self().ok();
    let per_connection = |before: Option<u64>, after: Option<u64>| {
        Some((after? as f64 - before? as f64) / ws.connections as f64)
    };

    let new_histogram = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3);
    let mut last_after_answer = new_histogram()?;
    let mut last_after_request = new_histogram()?;
    let mut per_socket_after_answer = new_histogram()?;
    let mut per_socket_after_request = new_histogram()?;
    let mut triggers = new_histogram()?;
    let (mut early, mut missing) = (0u64, 0u64);
    for round in 1..=ws.rounds {
        let (start, end) = slot(round);
        let fired = trigger.fire(client, start, end, timeout).await?;
        triggers.saturating_record(micros(fired.answered - fired.sent));
        let got = collect(&mut deliveries, ws.connections, start, timeout).await;
        let mut slowest = Duration::ZERO;
        let mut slowest_after_request = Duration::ZERO;
        for at in &got {
            let Some(at) = *at else {
                missing += 1;
                continue;
            };
            let after = match at.checked_duration_since(fired.answered) {
                Some(after) => after,
                None => {
                    early += 1;
                    Duration::ZERO
                }
            };
            let after_request = at.saturating_duration_since(fired.sent);
            per_socket_after_answer.saturating_record(micros(after));
            per_socket_after_request.saturating_record(micros(after_request));
            slowest = slowest.max(after);
            slowest_after_request = slowest_after_request.max(after_request);
        }
        last_after_answer.saturating_record(micros(slowest));
        last_after_request.saturating_record(micros(slowest_after_request));
        // Let the previous event's traffic settle before the next.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.notify_waiters();

    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let (clock, last, per_socket) = match ws.ws_target {
        WsTarget::ClubPulse => (
            "cancel-answered",
            &last_after_answer,
            &per_socket_after_answer,
        ),
        WsTarget::Reference => (
            "broadcast-sent",
            &last_after_request,
            &per_socket_after_request,
        ),
    };
    let report = WsReport {
        scenario: "ws-fanout",
        target: ws.ws_target,
        label: args.label.clone(),
        connections: ws.connections,
        rounds: ws.rounds,
        clock,
        last_p50_ms: ms(last, 0.5),
        last_p99_ms: ms(last, 0.99),
        last_max_ms: last.max() as f64 / 1000.0,
        socket_p50_ms: ms(per_socket, 0.5),
        socket_p99_ms: ms(per_socket, 0.99),
        socket_max_ms: per_socket.max() as f64 / 1000.0,
        last_after_answer_p50_ms: ms(&last_after_answer, 0.5),
        last_after_answer_p99_ms: ms(&last_after_answer, 0.99),
        last_after_request_p50_ms: ms(&last_after_request, 0.5),
        last_after_request_p99_ms: ms(&last_after_request, 0.99),
        early_deliveries: early,
        trigger_p50_ms: ms(&triggers, 0.5),
        trigger_p99_ms: ms(&triggers, 0.99),
        open_seconds,
        server_rss_before_kib: server_before,
        server_rss_after_kib: server_after,
        server_kib_per_connection: per_connection(server_before, server_after),
        loadgen_kib_per_connection: per_connection(own_before, own_after),
        missing,
    };
    println!("{}", serde_json::to_string(&report)?);
    if args.markdown {
        let kib = report
            .server_kib_per_connection
            .map_or_else(|| "n/a".to_owned(), |k| format!("{k:.1}"));
        println!(
            "| ws-fanout | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            report.label,
            report.connections,
            report.rounds,
            report.clock,
            report.last_p50_ms,
            report.last_p99_ms,
            report.last_max_ms,
            report.socket_p50_ms,
            report.socket_p99_ms,
            kib,
            report.missing
        );
    }
    if missing > 0 {
        bail!("{missing} deliveries did not arrive within {timeout:?} of their trigger's answer");
    }
    Ok(())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Waits for `sockets` deliveries of the slot starting at `start`, one per socket, each entry
/// the moment that socket read it (`None` when it did not within `timeout` of the last one seen).
async fn collect(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    sockets: usize,
    start: DateTime<Utc>,
    timeout: Duration,
) -> Vec<Option<Instant>> {
    let mut got = vec![None; sockets];
    let mut count = 0;
    while count < sockets {
        let delivery = match tokio::time::timeout(timeout, deliveries.recv()).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) | Err(_) => break,
        };
        let same = DateTime::parse_from_rfc3339(&delivery.start)
            .is_ok_and(|s| s.with_timezone(&Utc) == start);
        if !same {
            continue;
        }
        if let Some(slot @ None) = got.get_mut(delivery.socket) {
            *slot = Some(delivery.at);
            count += 1;
        }
    }
    got
}

/// Opens `count` sockets, at most `concurrency` handshakes at a time, each then reading in its own
/// task and reporting its deliveries to `deliveries` until `stop`. Fails when any fails to open.
async fn open_all(
    target: &Arc<Target>,
    count: usize,
    concurrency: usize,
    timeout: Duration,
    deliveries: &mpsc::UnboundedSender<Delivery>,
    stop: &Arc<tokio::sync::Notify>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let (opened_tx, mut opened) = mpsc::unbounded_channel::<anyhow::Result<()>>();
    let mut tasks = Vec::with_capacity(count);
    for socket in 0..count {
        let target = target.clone();
        let permits = permits.clone();
        let opened_tx = opened_tx.clone();
        let deliveries = deliveries.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let ws = {
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                match open(&target, timeout).await {
                    Ok(ws) => {
                        let _ = opened_tx.send(Ok(()));
                        ws
                    }
                    Err(error) => {
                        let _ = opened_tx.send(Err(error));
                        return;
                    }
                }
            };
            read(ws, socket, &deliveries, &stop).await;
        }));
    }
    drop(opened_tx);
    let (mut ok, mut failed, mut first_error) = (0usize, 0usize, None);
    while ok + failed < count {
        // Handshakes are queued behind the semaphore: allow each wave its own timeout.
        match tokio::time::timeout(timeout * 2, opened.recv()).await {
            Ok(Some(Ok(()))) => ok += 1,
            Ok(Some(Err(error))) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
            Ok(None) => break,
            Err(_) => {
                for task in &tasks {
                    task.abort();
                }
                bail!(
                    "opening {count} WebSocket connections to {} stalled after {ok} ({failed} failed)",
                    target.url
                );
            }
        }
    }
    if let Some(error) = first_error {
        for task in &tasks {
            task.abort();
        }
        return Err(error.context(format!(
            "{failed} of {count} WebSocket connections to {} failed",
            target.url
        )));
    }
    Ok(tasks)
}

/// One socket: TCP connect, the upgrade (with the session, if any), `subscribe`, and `subscribed`
/// back, each within `timeout`.
async fn open(target: &Target, timeout: Duration) -> anyhow::Result<Socket> {
    let mut request = target.url.as_str().into_client_request()?;
    if let Some(token) = &target.token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let authority = request
        .uri()
        .authority()
        .context("the WebSocket URL has no host")?
        .to_string();
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&authority))
        .await
        .map_err(|_| anyhow!("TCP connect to {authority} timed out"))?
        .with_context(|| format!("TCP connect to {authority}"))?;
    stream.set_nodelay(true)?;
    // Small buffers: the sockets read one short frame at a time, and there are thousands of them.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        timeout,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .map_err(|_| anyhow!("WebSocket upgrade at {} timed out", target.url))?
    .map_err(|error| match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => anyhow!(
            "WebSocket upgrade at {} refused: HTTP {} (does this server serve GET /api/v1/ws?)",
            target.url,
            response.status()
        ),
        other => anyhow!("WebSocket upgrade at {}: {other}", target.url),
    })?;
    let subscribe = json!({"type": "subscribe", "channel": target.channel}).to_string();
    tokio::time::timeout(timeout, ws.send(Message::text(subscribe)))
        .await
        .map_err(|_| anyhow!("sending subscribe timed out"))??;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| anyhow!("no `subscribed` for {} within {timeout:?}", target.channel))?
            .context("the server closed the socket before `subscribed`")??;
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Frame = serde_json::from_str(text.as_str())
            .with_context(|| format!("a frame that is not a message: {}", text.as_str()))?;
        match frame.kind.as_str() {
            "subscribed" if frame.channel.as_deref() == Some(target.channel.as_str()) => {
                return Ok(ws);
            }
            "error" => bail!("subscribe refused: {}", text.as_str()),
            _ => {}
        }
    }
}

/// Reads until `stop` or the socket ends; every `slot.released` becomes a delivery stamped as the
/// frame was read. Pings are answered by the reading itself.
async fn read(
    mut ws: Socket,
    socket: usize,
    deliveries: &mpsc::UnboundedSender<Delivery>,
    stop: &tokio::sync::Notify,
) {
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let message = tokio::select! {
            () = &mut stopped => break,
            message = ws.next() => message,
        };
        let at = Instant::now();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        };
        let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
            continue;
        };
        if frame.kind == "event"
            && frame.event.as_deref() == Some("slot.released")
            && let Some(start) = frame.start
        {
            let _ = deliveries.send(Delivery { socket, start, at });
        }
    }
    let _ = ws.close(None).await;
}

/// What produces an event each round.
enum Trigger {
    ClubPulse {
        base: String,
        watcher: String,
        actor: String,
        facility_id: String,
    },
    Reference {
        base: String,
        facility_id: String,
    },
}

/// When the trigger was sent and when its answer arrived.
struct Fired {
    sent: Instant,
    answered: Instant,
}

impl Trigger {
    async fn prepare(
        client: &reqwest::Client,
        base: &str,
        args: &Args,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        match args.ws.ws_target {
            WsTarget::Reference => Ok(Self::Reference {
                base: base.to_owned(),
                facility_id: uuid::Uuid::new_v4().to_string(),
            }),
            WsTarget::ClubPulse => {
                if args.admin_email.is_empty() {
                    bail!("the club-pulse target needs --admin-email and --admin-password");
                }
                let setup = async {
                    let watcher = crate::member(client, base, "ws-watcher").await?;
                    let actor = crate::member(client, base, "ws-actor").await?;
                    let facility_id = crate::facilities(client, base, args, 1)
                        .await?
                        .pop()
                        .context("no facility")?;
                    anyhow::Ok(Self::ClubPulse {
                        base: base.to_owned(),
                        watcher,
                        actor,
                        facility_id,
                    })
                };
                tokio::time::timeout(timeout * 4, setup)
                    .await
                    .map_err(|_| {
                        anyhow!("signing up and creating a facility at {base} timed out")
                    })?
            }
        }
    }

    fn watcher_token(&self) -> Option<String> {
        match self {
            Self::ClubPulse { watcher, .. } => Some(watcher.clone()),
            Self::Reference { .. } => None,
        }
    }

    fn facility_id(&self) -> &str {
        match self {
            Self::ClubPulse { facility_id, .. } | Self::Reference { facility_id, .. } => {
                facility_id
            }
        }
    }

    /// Club Pulse: hold `[start, end)` and cancel it (the clock starts at the cancel). Reference:
    /// broadcast a `slot.released` of `[start, end)`.
    async fn fire(
        &self,
        client: &reqwest::Client,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        timeout: Duration,
    ) -> anyhow::Result<Fired> {
        let (start, end) = (start.to_rfc3339(), end.to_rfc3339());
        match self {
            Self::ClubPulse {
                base,
                actor,
                facility_id,
                ..
            } => {
                let held = client
                    .post(format!("{base}/api/v1/bookings"))
                    .bearer_auth(actor)
                    .json(&json!({"facility_id": facility_id, "start": start, "end": end}))
                    .timeout(timeout)
                    .send()
                    .await
                    .context("holding a slot")?;
                if held.status() != 201 {
                    bail!(
                        "holding {start} answered {}: {}",
                        held.status(),
                        held.text().await.unwrap_or_default()
                    );
                }
                let booking: Value = held.json().await?;
                let id = booking["id"].as_str().context("the hold has no id")?;
                let sent = Instant::now();
                let cancelled = client
                    .post(format!("{base}/api/v1/bookings/{id}/cancel"))
                    .bearer_auth(actor)
                    .timeout(timeout)
                    .send()
                    .await
                    .context("cancelling the hold")?;
                let answered = Instant::now();
                if !cancelled.status().is_success() {
                    bail!("cancelling {id} answered {}", cancelled.status());
                }
                Ok(Fired { sent, answered })
            }
            Self::Reference { base, facility_id } => {
                let event = json!({
                    "channel": format!("facility:{facility_id}"),
                    "event": "slot.released",
                    "facility_id": facility_id,
                    "start": start,
                    "end": end,
                    "reason": "cancelled",
                    "id": uuid::Uuid::new_v4().to_string(),
                });
                let sent = Instant::now();
                let answer = client
                    .post(format!("{base}/broadcast"))
                    .json(&event)
                    .timeout(timeout)
                    .send()
                    .await
                    .context("POST /broadcast to the reference server")?;
                let answered = Instant::now();
                if !answer.status().is_success() {
                    bail!("POST /broadcast answered {}", answer.status());
                }
                Ok(Fired { sent, answered })
            }
        }
    }
}

/// A process's resident memory in KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    rss_from(&format!("/proc/{pid}/status"))
}

fn rss_kib_self() -> anyhow::Result<u64> {
    rss_from("/proc/self/status")
}

fn rss_from(path: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}
