//! A real WebSocket client for the tests: connects with a Bearer token (or any request), sends
//! protocol messages and reads replies with deadlines. Pings and pongs are answered and skipped.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

/// How long a test waits for one message before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The upgrade request for `addr`'s WebSocket route with `token` as a Bearer token.
pub fn request(addr: std::net::SocketAddr, token: &str) -> tungstenite::handshake::client::Request {
    let mut request = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .expect("a WebSocket request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a header"),
    );
    request
}

impl WsClient {
    /// Connects with a Bearer token and reads the `subscribed` greeting of the `user` channel.
    pub async fn connect(addr: std::net::SocketAddr, token: &str) -> Self {
        let mut client = Self::open(request(addr, token))
            .await
            .expect("the WebSocket opens");
        let greeting = client.next_message().await;
        assert_eq!(greeting["type"], "subscribed", "{greeting}");
        assert_eq!(greeting["channel"], "user", "{greeting}");
        client
    }

    /// Opens the socket; the handshake's refusal (an HTTP answer) is the error.
    pub async fn open(
        request: tungstenite::handshake::client::Request,
    ) -> Result<Self, tungstenite::Error> {
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("the handshake finishes in time")?;
        Ok(Self { stream })
    }

    pub async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("a message sent");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("a frame sent");
    }

    /// Subscribes to `channel` (from `since`, when given) and returns the `subscribed` reply.
    pub async fn subscribe(&mut self, channel: &str, since: Option<u64>) -> Value {
        let mut message = serde_json::json!({"type": "subscribe", "channel": channel});
        if let Some(since) = since {
            message["since"] = since.into();
        }
        self.send(message).await;
        let reply = self.next_message().await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        reply
    }

    /// The next text message, parsed; fails the test after [`WAIT`] or on anything else.
    pub async fn next_message(&mut self) -> Value {
        self.next_within(WAIT)
            .await
            .expect("a message before the deadline")
    }

    /// The next text message within `wait`, or `None` when nothing came (pings skipped).
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).expect("JSON text"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next `event` message on `channel`, skipping events of other channels.
    pub async fn next_event(&mut self, channel: &str) -> Value {
        loop {
            let message = self.next_message().await;
            if message["type"] == "event" && message["channel"] == channel {
                return message;
            }
            assert_ne!(message["type"], "error", "{message}");
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("the server closes before the deadline");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => panic!("the connection ended without a close frame"),
            }
        }
    }
}
