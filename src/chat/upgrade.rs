//! The WebSocket upgrade of `/primus`, as poem's `WebSocket` extractor does it (RFC 6455 §4.2:
//! the same checks, the same `101` answer), but handing the socket to the chat as the WebSocket
//! library's own stream: its text frames are `Utf8Bytes`, so a room's broadcast is queued to
//! every socket as the same reference-counted bytes instead of one copy per socket
//! (src/chat/hub.rs).

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{OnUpgrade, Request, Response};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A chat socket: the WebSocket library's stream over the upgraded connection.
pub type Stream = tokio_tungstenite::WebSocketStream<poem::Upgraded>;

/// A valid upgrade request, not answered yet.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// The upgrade `req` asks for; `None` unless it is a `GET` with `Upgrade: websocket`,
    /// `Connection: upgrade`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`.
    pub fn of(req: &Request) -> Option<Self> {
        let headers = req.headers();
        let upgrade = headers.get(header::UPGRADE);
        let websocket = upgrade == Some(&HeaderValue::from_static("websocket"))
            || upgrade == Some(&HeaderValue::from_static("WebSocket"));
        let connection_upgrade = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
        if req.method() != Method::GET
            || !websocket
            || !connection_upgrade
            || headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13"))
        {
            return None;
        }
        let key = headers.get(header::SEC_WEBSOCKET_KEY)?.clone();
        let on_upgrade = req.take_upgrade().ok()?;
        Some(Self { key, on_upgrade })
    }

    /// The `101 Switching Protocols` answer; once it is sent, `run` gets the socket (in a task of
    /// its own, as poem runs its WebSocket callbacks).
    pub fn answer<F, Fut>(self, config: WebSocketConfig, run: F) -> Response
    where
        F: FnOnce(Stream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let stream = Stream::from_raw_socket(upgraded, Role::Server, Some(config)).await;
            run(stream).await;
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .finish()
    }
}

/// A read error of the WebSocket library as poem reports it (an I/O error as is, any other as
/// `io::Error::other` of its text), which [`crate::runtime::socket_limits::close_for_read_error`]
/// reads.
pub fn io_error(error: tokio_tungstenite::tungstenite::Error) -> std::io::Error {
    match error {
        tokio_tungstenite::tungstenite::Error::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}
