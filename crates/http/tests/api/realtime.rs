//! The WebSocket route with real clients: authentication before the upgrade, the protocol's
//! replies, replay from history, fan-out across instances, slow readers cut off, idle and revoked
//! sockets closed, and "going away" at shutdown. Each behaviour runs on Redis and on the
//! in-process twin.
//!
//! Events here are published straight to the state layer's channels, as the outbox relay does, so
//! that these tests are about delivery; the relay's own events are tested with the booking flows.

use std::time::Duration;

use clubpulse_domain::Role;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue};
use uuid::Uuid;

use crate::{
    helpers::{Backend, Setup, TestApp, local},
    ws_client::{WsClient, request},
};

/// Generates one test per backend for each check.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_redis {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Redis).await; })*
        }
        mod in_process {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::InProcess).await; })*
        }
    };
}

both_backends!(
    a_subscriber_receives_published_events_in_order_with_growing_offsets,
    bad_messages_and_unknown_channels_get_errors_and_the_socket_stays_open,
    the_subscription_cap_is_enforced_per_connection,
    a_reconnect_with_since_replays_exactly_the_missed_events_in_order,
    since_beyond_the_history_says_not_recovered,
    the_user_channel_carries_only_the_connection_users_events,
    a_slow_reader_is_cut_off_while_others_keep_receiving,
    an_idle_socket_is_closed,
    a_socket_whose_session_ends_is_closed_at_the_next_heartbeat,
    shutdown_closes_every_socket_with_going_away,
    many_clients_reconnecting_at_once_all_recover,
    a_new_watcher_starts_from_what_is_held_now,
);

async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Setup)) -> TestApp {
    let mut setup = Setup {
        backend,
        ..Setup::default()
    };
    configure(&mut setup);
    TestApp::spawn_with(setup).await
}

/// A facility to watch, and a member to watch it.
async fn watched(app: &TestApp) -> (String, crate::helpers::TestUser) {
    let admin = app.user(Role::Admin).await;
    let facility = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let id = facility["id"].as_str().unwrap().to_owned();
    (format!("facility:{id}"), app.user(Role::Member).await)
}

/// Publishes a slot event on `channel` the way the relay does; returns its offset.
async fn publish(app: &TestApp, channel: &str, n: usize) -> u64 {
    let payload = json!({"event": "slot.held", "n": n}).to_string();
    app.state
        .state
        .channels
        .publish(channel, &payload)
        .await
        .expect("publish")
}

#[tokio::test]
async fn without_a_session_the_upgrade_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let plain = format!("ws://{}/api/v1/ws", app.addr)
        .into_client_request()
        .unwrap();
    let refused = WsClient::open(plain).await.err().expect("refused");
    let tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status(), 401);

    let ended = WsClient::open(request(app.addr, "not-a-session"))
        .await
        .err()
        .expect("refused");
    let tungstenite::Error::Http(response) = ended else {
        panic!("expected an HTTP refusal, got {ended:?}");
    };
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_plain_get_is_told_to_upgrade() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;
    let response = app.get("/api/v1/ws", Some(&member.token)).await;
    assert_eq!(response.headers()["upgrade"], "websocket");
    crate::helpers::assert_problem(response, 426, "websocket_required").await;
}

#[tokio::test]
async fn a_cookie_session_needs_this_sites_origin() {
    let app = TestApp::spawn().await;
    let member = app.user(Role::Member).await;
    let with_origin = |origin: &str| {
        let mut request = format!("ws://{}/api/v1/ws", app.addr)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("clubpulse_session={}", member.token)).unwrap(),
        );
        headers.insert("origin", HeaderValue::from_str(origin).unwrap());
        request
    };

    let foreign = WsClient::open(with_origin("http://evil.example"))
        .await
        .err()
        .expect("refused");
    let tungstenite::Error::Http(response) = foreign else {
        panic!("expected an HTTP refusal, got {foreign:?}");
    };
    assert_eq!(response.status(), 403);

    let own = format!("http://{}", app.addr);
    let mut socket = WsClient::open(with_origin(&own)).await.expect("accepted");
    assert_eq!(socket.next_message().await["type"], "subscribed");
}

async fn a_subscriber_receives_published_events_in_order_with_growing_offsets(backend: Backend) {
    let app = spawn(backend).await;
    let (channel, member) = watched(&app).await;
    let mut socket = WsClient::connect(app.addr, &member.token).await;
    let subscribed = socket.subscribe(&channel, None).await;
    assert_eq!(subscribed["channel"], channel.as_str());
    assert_eq!(subscribed["recovered"], true);
    let start = subscribed["offset"].as_u64().unwrap();

    let mut offsets = Vec::new();
    for n in 0..5 {
        offsets.push(publish(&app, &channel, n).await);
    }
    for (n, offset) in offsets.iter().enumerate() {
        let event = socket.next_event(&channel).await;
        assert_eq!(event["offset"], *offset);
        assert_eq!(event["event"], "slot.held");
        assert_eq!(event["n"], n);
    }
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
    assert!(offsets[0] > start);

    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.next_message().await, json!({"type": "pong"}));
}

async fn bad_messages_and_unknown_channels_get_errors_and_the_socket_stays_open(backend: Backend) {
    let app = spawn(backend).await;
    let (channel, member) = watched(&app).await;
    let mut socket = WsClient::connect(app.addr, &member.token).await;

    let cases = [
        ("not json", "invalid_message"),
        (r#"{"type":"shout"}"#, "invalid_message"),
        (r#"{"type":"subscribe"}"#, "invalid_message"),
        (
            r#"{"type":"subscribe","channel":"lobby"}"#,
            "unknown_channel",
        ),
        (
            r#"{"type":"subscribe","channel":"facility:nope"}"#,
            "unknown_channel",
        ),
        (
            r#"{"type":"subscribe","channel":"user:00000000-0000-0000-0000-000000000000"}"#,
            "unknown_channel",
        ),
    ];
    for (body, code) in cases {
        socket.send_raw(Message::Text(body.into())).await;
        let reply = socket.next_message().await;
        assert_eq!(reply["type"], "error", "{body}: {reply}");
        assert_eq!(reply["code"], code, "{body}: {reply}");
        assert!(reply["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let unknown_facility = format!("facility:{}", Uuid::new_v4());
    socket
        .send(json!({"type": "subscribe", "channel": unknown_facility}))
        .await;
    assert_eq!(socket.next_message().await["code"], "unknown_channel");
    socket.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    assert_eq!(socket.next_message().await["code"], "unsupported_frame");

    // Still open, and still subscribing.
    socket.subscribe(&channel, None).await;
    let offset = publish(&app, &channel, 1).await;
    assert_eq!(socket.next_event(&channel).await["offset"], offset);
    socket
        .send(json!({"type": "unsubscribe", "channel": channel}))
        .await;
    assert_eq!(socket.next_message().await["type"], "unsubscribed");
    publish(&app, &channel, 2).await;
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(
        socket.next_message().await,
        json!({"type": "pong"}),
        "no event after unsubscribing"
    );
}

async fn the_subscription_cap_is_enforced_per_connection(backend: Backend) {
    let app = spawn_with(backend, |s| s.config.realtime.max_subscriptions = 3).await;
    let admin = app.user(Role::Admin).await;
    let member = app.user(Role::Member).await;
    let mut channels = Vec::new();
    for _ in 0..3 {
        let facility = app.facility(&admin, "Europe/Madrid", json!({})).await;
        channels.push(format!("facility:{}", facility["id"].as_str().unwrap()));
    }
    let mut socket = WsClient::connect(app.addr, &member.token).await;
    // The user channel is one of the three.
    socket.subscribe(&channels[0], None).await;
    socket.subscribe(&channels[1], None).await;
    socket
        .send(json!({"type": "subscribe", "channel": channels[2]}))
        .await;
    let refused = socket.next_message().await;
    assert_eq!(refused["code"], "too_many_subscriptions", "{refused}");
    // Subscribing again to a watched channel is not a new subscription.
    socket.subscribe(&channels[0], None).await;
    socket
        .send(json!({"type": "unsubscribe", "channel": channels[1]}))
        .await;
    assert_eq!(socket.next_message().await["type"], "unsubscribed");
    socket.subscribe(&channels[2], None).await;
}

async fn a_reconnect_with_since_replays_exactly_the_missed_events_in_order(backend: Backend) {
    let app = spawn(backend).await;
    let (channel, member) = watched(&app).await;
    let mut socket = WsClient::connect(app.addr, &member.token).await;
    socket.subscribe(&channel, None).await;
    publish(&app, &channel, 0).await;
    let seen = socket.next_event(&channel).await["offset"]
        .as_u64()
        .unwrap();
    drop(socket);

    let mut missed = Vec::new();
    for n in 1..=4 {
        missed.push(publish(&app, &channel, n).await);
    }
    let mut again = WsClient::connect(app.addr, &member.token).await;
    let subscribed = again.subscribe(&channel, Some(seen)).await;
    assert_eq!(subscribed["recovered"], true);
    assert_eq!(subscribed["offset"], *missed.last().unwrap());
    for (i, offset) in missed.iter().enumerate() {
        let event = again.next_event(&channel).await;
        assert_eq!(event["offset"], *offset);
        assert_eq!(event["n"], i + 1);
    }
    // Then live, with nothing replayed twice.
    let live = publish(&app, &channel, 5).await;
    assert_eq!(again.next_event(&channel).await["offset"], live);
    again.send(json!({"type": "ping"})).await;
    assert_eq!(again.next_message().await, json!({"type": "pong"}));
}

async fn since_beyond_the_history_says_not_recovered(backend: Backend) {
    let app = spawn(backend).await;
    let (channel, member) = watched(&app).await;
    let first = publish(&app, &channel, 0).await;
    for n in 1..=clubpulse_state::channels::HISTORY_LEN + 2 {
        publish(&app, &channel, n).await;
    }
    let mut socket = WsClient::connect(app.addr, &member.token).await;
    let subscribed = socket.subscribe(&channel, Some(first)).await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    // What history still has is sent, oldest first.
    let oldest = socket.next_event(&channel).await["offset"]
        .as_u64()
        .unwrap();
    assert!(oldest > first + 1);
    let next = socket.next_event(&channel).await["offset"]
        .as_u64()
        .unwrap();
    assert_eq!(next, oldest + 1);
}

async fn the_user_channel_carries_only_the_connection_users_events(backend: Backend) {
    let app = spawn(backend).await;
    let me = app.user(Role::Member).await;
    let other = app.user(Role::Member).await;
    let mut mine = WsClient::connect(app.addr, &me.token).await;
    let mut theirs = WsClient::connect(app.addr, &other.token).await;

    let note = json!({"event": "notification", "notification": {"kind": "booking.confirmed"}});
    let offset = app
        .state
        .state
        .channels
        .publish(&format!("user:{}", me.id), &note.to_string())
        .await
        .unwrap();
    let event = mine.next_event("user").await;
    assert_eq!(event["offset"], offset);
    assert_eq!(event["notification"]["kind"], "booking.confirmed");
    theirs.send(json!({"type": "ping"})).await;
    assert_eq!(
        theirs.next_message().await,
        json!({"type": "pong"}),
        "another member's notification leaked"
    );
}

async fn a_slow_reader_is_cut_off_while_others_keep_receiving(backend: Backend) {
    let app = spawn_with(backend, |s| s.config.realtime.send_queue = 8).await;
    let (channel, member) = watched(&app).await;
    let mut slow = WsClient::connect(app.addr, &member.token).await;
    slow.subscribe(&channel, None).await;
    let mut fast = WsClient::connect(app.addr, &member.token).await;
    fast.subscribe(&channel, None).await;

    // The slow client stops reading; the fast one reads each event before the next is published,
    // so only the slow one's queue can fill (once the kernel's socket buffers are full).
    let bulk = "x".repeat(32 * 1024);
    let payload = json!({"event": "slot.held", "bulk": bulk}).to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app.state.hub.slow_readers_cut() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow reader was never cut off"
        );
        let offset = app
            .state
            .state
            .channels
            .publish(&channel, &payload)
            .await
            .unwrap();
        assert_eq!(fast.next_event(&channel).await["offset"], offset);
    }
    assert_eq!(app.state.hub.slow_readers_cut(), 1);
    for n in 0..3 {
        let offset = publish(&app, &channel, n).await;
        assert_eq!(fast.next_event(&channel).await["offset"], offset);
    }
    let (code, reason) = slow.closed().await;
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("slow"), "{reason}");
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    assert_eq!(
        sample("clubpulse_websocket_slow_readers_cut_total"),
        Some(1.0)
    );
    assert!(
        sample("clubpulse_websocket_messages_total").is_some_and(|n| n >= 4.0),
        "{metrics}"
    );
}

async fn an_idle_socket_is_closed(backend: Backend) {
    let app = spawn_with(backend, |s| {
        s.config.realtime.heartbeat_seconds = 1;
        s.config.realtime.idle_seconds = 2;
    })
    .await;
    let member = app.user(Role::Member).await;
    // Never polled until the server gives up on it: not even a pong goes back.
    let mut silent = WsClient::connect(app.addr, &member.token).await;
    wait_for_connections(&app, 0).await;
    let (code, reason) = silent.closed().await;
    assert_eq!(code, 1001);
    assert_eq!(reason, "idle timeout");
}

async fn a_socket_whose_session_ends_is_closed_at_the_next_heartbeat(backend: Backend) {
    let app = spawn_with(backend, |s| {
        s.config.realtime.heartbeat_seconds = 1;
        s.config.realtime.idle_seconds = 30;
    })
    .await;
    let member = app.user(Role::Member).await;
    let mut socket = WsClient::connect(app.addr, &member.token).await;
    let logout = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(&member.token),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let (code, reason) = socket.closed().await;
    assert_eq!(code, 1008);
    assert_eq!(reason, "the session has ended");
}

async fn shutdown_closes_every_socket_with_going_away(backend: Backend) {
    let app = spawn(backend).await;
    let member = app.user(Role::Member).await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(WsClient::connect(app.addr, &member.token).await);
    }
    let stopping = tokio::spawn(app.stop());
    for socket in &mut sockets {
        let (code, reason) = socket.closed().await;
        assert_eq!(code, 1001);
        assert!(reason.contains("shutting down"), "{reason}");
    }
    stopping.await.unwrap();
}

async fn many_clients_reconnecting_at_once_all_recover(backend: Backend) {
    let app = spawn(backend).await;
    let (channel, member) = watched(&app).await;
    let seen = publish(&app, &channel, 0).await;
    let mut missed = Vec::new();
    for n in 1..=3 {
        missed.push(publish(&app, &channel, n).await);
    }
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let token = member.token.clone();
            let channel = channel.clone();
            let addr = app.addr;
            tokio::spawn(async move {
                let mut socket = WsClient::connect(addr, &token).await;
                let subscribed = socket.subscribe(&channel, Some(seen)).await;
                let mut offsets = Vec::new();
                for _ in 0..3 {
                    offsets.push(
                        socket.next_event(&channel).await["offset"]
                            .as_u64()
                            .unwrap(),
                    );
                }
                (subscribed["recovered"].clone(), offsets)
            })
        })
        .collect();
    for client in clients {
        let (recovered, offsets) = client.await.unwrap();
        assert_eq!(recovered, true);
        assert_eq!(offsets, missed);
    }
}

#[tokio::test]
async fn watchers_on_one_instance_receive_events_published_by_another() {
    let first = TestApp::spawn().await;
    let second = first.another_instance().await;
    let (channel, member) = watched(&first).await;
    let mut on_first = WsClient::connect(first.addr, &member.token).await;
    on_first.subscribe(&channel, None).await;
    let mut on_second = WsClient::connect(second.addr, &member.token).await;
    on_second.subscribe(&channel, None).await;

    for n in 0..3 {
        let offset = publish(&first, &channel, n).await;
        assert_eq!(on_second.next_event(&channel).await["offset"], offset);
        assert_eq!(on_first.next_event(&channel).await["offset"], offset);
    }
}

/// Waits until the server has exactly `n` sockets open.
async fn wait_for_connections(app: &TestApp, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.state.hub.connections() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} sockets open, expected {n}",
            app.state.hub.connections()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn watchers_on_one_instance_see_holds_releases_and_expiries_made_on_another() {
    let mut setup = Setup::default();
    setup.config.booking.hold_seconds = 1;
    setup.config.booking.sweep_interval_ms = 100;
    let first = TestApp::spawn_with(setup.clone()).await;
    let second = TestApp::spawn_with(first.beside(setup)).await;
    let admin = first.user(Role::Admin).await;
    let facility = first.facility(&admin, "Europe/Madrid", json!({})).await;
    let channel = format!("facility:{}", facility["id"].as_str().unwrap());
    let watcher = first.user(Role::Member).await;
    let member = first.user(Role::Member).await;
    let mut socket = WsClient::connect(second.addr, &watcher.token).await;
    socket.subscribe(&channel, None).await;

    let (start, end) = (
        local("Europe/Madrid", 2, 10, 0),
        local("Europe/Madrid", 2, 11, 0),
    );
    let held = first.hold(&member, &facility, &start, &end).await;
    assert_eq!(held.status(), 201);
    let held: serde_json::Value = held.json().await.unwrap();
    let event = socket.next_event(&channel).await;
    assert_eq!(event["event"], "slot.held", "{event}");
    assert_eq!(event["facility_id"], facility["id"]);
    assert_eq!(instant(&event["start"]), instant(&held["start"]));
    assert_eq!(instant(&event["end"]), instant(&held["end"]));
    let mut last = event["offset"].as_u64().unwrap();

    let cancelled = first
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{}/cancel", held["id"].as_str().unwrap()),
            None,
            Some(&member.token),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    let event = socket.next_event(&channel).await;
    assert_eq!(event["event"], "slot.released", "{event}");
    assert_eq!(event["reason"], "cancelled");
    assert!(event["offset"].as_u64().unwrap() > last);
    last = event["offset"].as_u64().unwrap();

    // A hold nobody confirms: the sweeper releases it, and the watchers are told why.
    assert_eq!(
        first.hold(&member, &facility, &start, &end).await.status(),
        201
    );
    let event = socket.next_event(&channel).await;
    assert_eq!(event["event"], "slot.held", "{event}");
    let event = socket.next_event(&channel).await;
    assert_eq!(event["event"], "slot.released", "{event}");
    assert_eq!(event["reason"], "expired");
    assert!(event["offset"].as_u64().unwrap() > last);
}

fn instant(value: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn a_new_watcher_starts_from_what_is_held_now(backend: Backend) {
    let app = spawn(backend).await;
    let admin = app.user(Role::Admin).await;
    let facility = app.facility(&admin, "Europe/Madrid", json!({})).await;
    let channel = format!("facility:{}", facility["id"].as_str().unwrap());
    let member = app.user(Role::Member).await;
    let (start, end) = (
        local("Europe/Madrid", 3, 18, 0),
        local("Europe/Madrid", 3, 19, 0),
    );
    let held = app.hold(&member, &facility, &start, &end).await;
    assert_eq!(held.status(), 201);
    let held: serde_json::Value = held.json().await.unwrap();

    let mut watcher = WsClient::connect(app.addr, &member.token).await;
    let subscribed = watcher.subscribe(&channel, None).await;
    let holds = subscribed["holds"].as_array().expect("the holds held now");
    assert_eq!(holds.len(), 1, "{subscribed}");
    assert_eq!(instant(&holds[0]["start"]), instant(&held["start"]));
    assert_eq!(instant(&holds[0]["end"]), instant(&held["end"]));
    assert_eq!(
        instant(&holds[0]["expires_at"]).timestamp_millis(),
        instant(&held["expires_at"]).timestamp_millis()
    );

    let cancelled = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{}/cancel", held["id"].as_str().unwrap()),
            None,
            Some(&member.token),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    let mut later = WsClient::connect(app.addr, &member.token).await;
    let subscribed = subscribed_amid_the_cancellation(&mut later, &channel, &channel).await;
    assert_eq!(
        subscribed["holds"],
        json!([]),
        "a cancelled hold is held no more"
    );
    // The user channel lists no holds.
    let user = subscribed_amid_the_cancellation(&mut later, "user", &channel).await;
    assert_eq!(user["channel"], "user", "{user}");
    assert!(user.get("holds").is_none(), "{user}");
}

/// Subscribes to `channel` and returns the `subscribed` reply, skipping the cancellation's own
/// events that the relay may deliver first, whenever it runs (the release on `facility`, the
/// member's notice on `user`), and nothing else.
async fn subscribed_amid_the_cancellation(
    client: &mut WsClient,
    channel: &str,
    facility: &str,
) -> serde_json::Value {
    client
        .send(json!({"type": "subscribe", "channel": channel}))
        .await;
    loop {
        let message = client.next_message().await;
        if message["type"] == "subscribed" {
            return message;
        }
        let expected = message["type"] == "event"
            && if message["channel"] == "user" {
                message["notification"]["kind"] == "booking.cancelled"
            } else {
                message["channel"] == facility && message["event"] == "slot.released"
            };
        assert!(expected, "{message}");
    }
}
