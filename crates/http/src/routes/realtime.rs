//! `GET /api/v1/ws`: live slot events and notifications over a WebSocket.
//!
//! Authentication happens before the upgrade, so a request without a live session (or with a
//! cookie from another site's page) gets a problem document, never a socket. After the upgrade one
//! task serves the socket: it reads the client's messages, sends what the instance's hub queues
//! for it, pings on every heartbeat (and checks the session is still live), and closes with a code
//! and a reason when the client idles, reads too slowly, loses its session, or the server shuts
//! down. A send to a client that stopped reading is abandoned the moment the hub cuts it off.

use std::time::Duration;

use axum::{
    extract::{
        State,
        ws::{
            CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
        },
    },
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use clubpulse_realtime::{
    Channel, ClientMessage, Connection, HeldSlot, Outbound, ServerMessage, close,
};
use clubpulse_state::TokenHash;
use futures::{SinkExt, StreamExt, stream::SplitSink};
use tokio::time::Instant;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{ApiError, AppState, extract::CurrentUser};

/// Largest message a client may send; the protocol's messages are a few dozen bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// How long a closing socket gets to take its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(connect))
}

/// Opens a WebSocket for live updates (JSON text frames).
///
/// Client messages: `{"type":"subscribe","channel":C}` (optionally with `"since":N` to replay
/// what was missed), `{"type":"unsubscribe","channel":C}`, `{"type":"ping"}`. Channels:
/// `facility:<id>` (slot events: `slot.held`, `slot.booked`, `slot.released` with `facility_id`,
/// `start`, `end`, and `reason` `cancelled` or `expired` on a release) and `user` (the
/// connection's own notifications, subscribed at connect). The server answers `subscribed` with
/// the channel's latest `offset` and whether history reached back to `since` (`recovered`), sends
/// events as `{"type":"event","channel":C,"offset":N,"event":E,...}` with offsets that only grow,
/// and reports a bad message as `{"type":"error","code":...,"detail":...}` without closing.
/// Close codes: 1001 (server shutting down, or idle), 1008 (the session ended), 1013 (too slow a
/// reader: reconnect with `since`).
#[utoipa::path(get, path = "/ws", tag = "realtime",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; messages are described above"),
        (status = 401, description = "No live session (`unauthenticated`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A cookie session from another site's page (`csrf_rejected`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 426, description = "Not a WebSocket upgrade request (`websocket_required`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
async fn connect(
    State(app): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    same_origin(&app, &headers)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            format!("open this route as a WebSocket: {}", rejection.body_text()),
        )
        .with_headers([(
            header::UPGRADE,
            header::HeaderValue::from_static("websocket"),
        )])
    })?;
    if app.hub.is_shutting_down() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this instance is shutting down; connect again",
        ));
    }
    let session = user.session.as_ref().map(|s| s.token_hash.clone());
    Ok(upgrade
        .read_buffer_size(MAX_MESSAGE_BYTES)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let hub = app.hub.clone();
            hub.track(serve(socket, app, user, session))
        }))
}

/// A cookie-authenticated socket must come from this site's own pages: browsers send cookies with
/// cross-site WebSocket requests too, but always say where they come from.
fn same_origin(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| o.trim_end_matches('/').to_ascii_lowercase());
    match origin {
        Some(origin) if app.config.trusted_origins().contains(&origin) => Ok(()),
        _ => Err(ApiError::forbidden(
            "a cookie-authenticated WebSocket must be opened from this site's own pages (Origin check)",
        )
        .with_code("csrf_rejected")),
    }
}

/// Why the session loop stopped sending.
struct Stop;

type Sink = SplitSink<WebSocket, Message>;

/// One socket, from the upgrade to its close.
async fn serve(socket: WebSocket, app: AppState, user: CurrentUser, session: Option<TokenHash>) {
    let mut conn = app.hub.connect();
    let (mut sink, mut stream) = socket.split();
    let limits = *app.hub.limits();
    let served = async {
        let own = conn.subscribe(&Channel::User(user.id), None).await;
        let greeting = match own {
            Ok(subscribed) => subscribed.message,
            Err(err) => err.to_message(),
        };
        send(&mut sink, &conn, text(&greeting)).await?;
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + limits.heartbeat, limits.heartbeat);
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                outbound = conn.next() => match outbound {
                    Outbound::Frame(frame) => send(&mut sink, &conn, Message::Text(frame.as_ref().into())).await?,
                    Outbound::Close(code, reason) => return close_with(&mut sink, code, reason).await,
                },
                incoming = stream.next() => {
                    let Some(Ok(message)) = incoming else { return Err(Stop) };
                    heard = Instant::now();
                    match message {
                        Message::Text(body) => {
                            for reply in answer(&app, &user, &mut conn, body.as_str()).await {
                                send(&mut sink, &conn, reply).await?;
                            }
                        }
                        Message::Binary(_) => {
                            let refusal = ServerMessage::error("unsupported_frame", "send JSON text frames");
                            send(&mut sink, &conn, text(&refusal)).await?;
                        }
                        Message::Close(_) => return Err(Stop),
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                _ = heartbeat.tick() => {
                    if heard.elapsed() > limits.idle_timeout {
                        return close_with(&mut sink, close::GOING_AWAY, "idle timeout").await;
                    }
                    if !session_live(&app, session.as_ref()).await {
                        return close_with(&mut sink, close::POLICY, "the session has ended").await;
                    }
                    send(&mut sink, &conn, Message::Ping(Default::default())).await?;
                }
            }
        }
    };
    let _: Result<(), Stop> = served.await;
}

/// The replies to one client message, in order.
async fn answer(
    app: &AppState,
    user: &CurrentUser,
    conn: &mut Connection,
    body: &str,
) -> Vec<Message> {
    let message: ClientMessage = match serde_json::from_str(body) {
        Ok(message) => message,
        Err(err) => {
            let detail = format!("not a message of this protocol: {err}");
            return vec![text(&ServerMessage::error("invalid_message", detail))];
        }
    };
    match message {
        ClientMessage::Ping => vec![text(&ServerMessage::Pong)],
        ClientMessage::Subscribe { channel, since } => {
            let resolved = match resolve(app, user, &channel).await {
                Ok(resolved) => resolved,
                Err(refusal) => return vec![text(&refusal)],
            };
            match conn.subscribe(&resolved, since).await {
                Ok(mut subscribed) => {
                    if let (Channel::Facility(id), ServerMessage::Subscribed { holds, .. }) =
                        (&resolved, &mut subscribed.message)
                    {
                        *holds = held_now(app, *id).await;
                    }
                    std::iter::once(text(&subscribed.message))
                        .chain(
                            subscribed
                                .replay
                                .iter()
                                .map(|frame| Message::Text(frame.as_ref().into())),
                        )
                        .collect()
                }
                Err(err) => vec![text(&err.to_message())],
            }
        }
        ClientMessage::Unsubscribe { channel } => match Channel::parse(&channel, user.id) {
            Some(resolved) => {
                conn.unsubscribe(&resolved);
                vec![text(&ServerMessage::Unsubscribed { channel })]
            }
            None => vec![text(&unknown_channel(&channel))],
        },
    }
}

/// A client's channel name, checked: a facility channel needs the facility to exist.
async fn resolve(app: &AppState, user: &CurrentUser, name: &str) -> Result<Channel, ServerMessage> {
    let channel = Channel::parse(name, user.id).ok_or_else(|| unknown_channel(name))?;
    if let Channel::Facility(id) = channel {
        match clubpulse_storage::facilities::find_any(&app.db, id).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(unknown_channel(name)),
            Err(err) => {
                tracing::warn!(error = %err, "cannot check a facility channel");
                return Err(ServerMessage::error(
                    "database_unavailable",
                    "the facility cannot be checked right now; try again shortly",
                ));
            }
        }
    }
    Ok(channel)
}

/// What the hold mirror says is held at a facility right now; `None` (the field left out) when the
/// mirror cannot answer, since events follow either way.
async fn held_now(app: &AppState, facility_id: uuid::Uuid) -> Option<Vec<HeldSlot>> {
    match app.state.holds.on_facility(facility_id).await {
        Ok(holds) => Some(
            holds
                .into_iter()
                .map(|h| HeldSlot {
                    start: h.start.to_rfc3339(),
                    end: h.end.to_rfc3339(),
                    expires_at: h.expires_at.to_rfc3339(),
                })
                .collect(),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the hold mirror for a new watcher");
            None
        }
    }
}

fn unknown_channel(name: &str) -> ServerMessage {
    ServerMessage::error(
        "unknown_channel",
        format!("no channel {name:?}: use `user` or `facility:<id>` of an existing facility"),
    )
}

/// Whether the socket's session is still live (a socket opened with an API key has none to end).
/// A session store that cannot answer keeps the socket: the next heartbeat asks again.
async fn session_live(app: &AppState, session: Option<&TokenHash>) -> bool {
    let Some(hash) = session else {
        return true;
    };
    match app
        .state
        .sessions
        .touch(hash, app.config.sessions.idle())
        .await
    {
        Ok(found) => found.is_some(),
        Err(err) => {
            tracing::warn!(error = %err, "cannot check a WebSocket's session");
            true
        }
    }
}

fn text(message: &ServerMessage) -> Message {
    Message::Text(message.to_text().into())
}

/// Sends one message, unless the hub cuts the socket off (or the server shuts down) meanwhile: a
/// client that stopped reading must not hold its task in a send forever.
async fn send(sink: &mut Sink, conn: &Connection, message: Message) -> Result<(), Stop> {
    tokio::select! {
        sent = sink.send(message) => sent.map_err(|_| Stop),
        closing = conn.closing() => {
            if let Outbound::Close(code, reason) = closing {
                let _ = close_with(sink, code, reason).await;
            }
            Err(Stop)
        }
    }
}

/// Sends a close frame (bounded in time: the peer may not be reading) and ends the session.
async fn close_with(sink: &mut Sink, code: u16, reason: &'static str) -> Result<(), Stop> {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(frame)).await;
    Err(Stop)
}
