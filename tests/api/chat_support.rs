//! A raw actionhero/Primus websocket client for the chat tests: it speaks the frames of
//! docs/chat.md#protocol-facts directly, so the tests see exactly what goes over the wire.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One frame as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Json(Value),
    /// A JSON string, e.g. `primus::ping::123`.
    Control(String),
    Closed,
}

pub struct ChatClient {
    ws: Ws,
    buffered: VecDeque<Frame>,
    next_id: u64,
    pub id: String,
    pub closed: bool,
}

impl ChatClient {
    /// Connects to `ws://<address>/primus?<query>` (or to `<address>` itself when it already has a
    /// path below /primus) and reads the welcome and the connection id.
    pub async fn connect(address: &str, query: &str) -> Self {
        let base = address.replace("http://", "ws://");
        let url = if base.contains("/primus") {
            format!("{base}?{query}")
        } else {
            format!("{base}/primus?{query}")
        };
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        Self::greeted(ws).await
    }

    /// Connects to `ws://<address>/primus` with extra request `headers` (`X-Forwarded-For`, …)
    /// and reads the welcome and the connection id.
    pub async fn connect_with_headers(address: &str, headers: &[(&'static str, &str)]) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/primus", address.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("a WebSocket URL");
        for (name, value) in headers {
            request
                .headers_mut()
                .append(*name, value.parse().expect("a header value"));
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        Self::greeted(ws).await
    }

    /// Like [`connect`](Self::connect), over a TCP connection whose receive buffer is as small as
    /// the kernel allows, so a client that stops reading is soon a slow consumer.
    pub async fn connect_with_small_receive_buffer(address: &str) -> Self {
        let addr: std::net::SocketAddr = address.trim_start_matches("http://").parse().unwrap();
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(1024).unwrap();
        let stream = tcp.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/primus"),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("connect");
        Self::greeted(ws).await
    }

    async fn greeted(
        ws: tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> Self {
        let mut client = Self {
            ws,
            buffered: VecDeque::new(),
            next_id: 1,
            id: String::new(),
            closed: false,
        };
        let welcome = client.next().await;
        assert_eq!(
            welcome,
            Frame::Json(json!({"welcome": "Welcome to the onair api", "context": "api"}))
        );
        let details = client.request(json!({"event": "detailsView"})).await;
        client.id = details["data"]["id"].as_str().unwrap().to_owned();
        client
    }

    /// Connects, joins `room` and verifies `member` there.
    pub async fn verified(address: &str, room: &str, member: &str, token: &str) -> Self {
        let mut client = Self::connect(address, "").await;
        client.room_add(room).await;
        let verified = client.verify(member, room, token).await;
        assert_eq!(verified["verified"], true, "{verified}");
        client
    }

    /// Says a chat message `text` as `member`.
    pub async fn chat(&mut self, room: &str, member: &str, text: &str) -> Value {
        self.say(
            room,
            &json!({"type": "chat", "memberID": member, "name": "m", "text": text,
                    "textColor": "#FFF"}),
        )
        .await
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    async fn read(&mut self, wait: Duration) -> Option<Frame> {
        if self.closed {
            return Some(Frame::Closed);
        }
        match tokio::time::timeout(wait, self.ws.next()).await {
            Err(_) => None,
            Ok(None) | Ok(Some(Err(_))) => {
                self.closed = true;
                Some(Frame::Closed)
            }
            Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<Value>(&t).unwrap() {
                Value::String(s) => Some(Frame::Control(s)),
                v => Some(Frame::Json(v)),
            },
            Ok(Some(Ok(Message::Close(_)))) => {
                self.closed = true;
                Some(Frame::Closed)
            }
            Ok(Some(Ok(_))) => Box::pin(self.read(wait)).await,
        }
    }

    /// The next frame (buffered first), waiting up to 5 s.
    pub async fn next(&mut self) -> Frame {
        if let Some(f) = self.buffered.pop_front() {
            return f;
        }
        self.read(Duration::from_secs(5))
            .await
            .expect("a frame within 5 s")
    }

    /// Sends a request with the next messageId and returns its response; other frames are kept.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        frame["messageId"] = json!(id);
        self.send_text(frame.to_string()).await;
        loop {
            match self
                .read(Duration::from_secs(5))
                .await
                .expect("a response within 5 s")
            {
                Frame::Json(v) if v["context"] == "response" && v["messageId"] == json!(id) => {
                    return v;
                }
                Frame::Closed => panic!("closed while waiting for response {id}"),
                other => self.buffered.push_back(other),
            }
        }
    }

    pub async fn room_add(&mut self, room: &str) -> Value {
        self.request(json!({"event": "roomAdd", "room": room}))
            .await
    }

    pub async fn verify(&mut self, member: &str, room: &str, token: &str) -> Value {
        self.request(json!({"event": "action", "params": {
            "memberID": member, "chatroom": room, "Authorization": token, "action": "verify"}}))
            .await
    }

    pub async fn say(&mut self, room: &str, message: &Value) -> Value {
        self.request(json!({"event": "say", "room": room, "message": message.to_string()}))
            .await
    }

    pub async fn action(&mut self, name: &str, mut params: Value) -> Value {
        params["action"] = json!(name);
        self.request(json!({"event": "action", "params": params}))
            .await
    }

    /// Waits for a frame matching `pred` (others are dropped), up to `wait`.
    pub async fn wait_for(
        &mut self,
        wait: Duration,
        pred: impl Fn(&Frame) -> bool,
    ) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(f) = self.buffered.pop_front() {
            if pred(&f) {
                return Some(f);
            }
        }
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.read(left).await {
                None => return None,
                Some(f) if pred(&f) => return Some(f),
                Some(Frame::Closed) => return Some(Frame::Closed).filter(|f| pred(f)),
                Some(_) => {}
            }
        }
    }

    /// The next `say` whose parsed message has `type`, as `(payload, message)`.
    pub async fn said(&mut self, kind: &str) -> (Value, Value) {
        let frame = self
            .wait_for(Duration::from_secs(10), |f| match f {
                Frame::Json(v) if v["context"] == "user" => {
                    serde_json::from_str::<Value>(v["message"].as_str().unwrap_or(""))
                        .map(|m| m["type"] == kind)
                        .unwrap_or(false)
                }
                _ => false,
            })
            .await
            .unwrap_or_else(|| panic!("no say of type {kind}"));
        let Frame::Json(payload) = frame else {
            unreachable!()
        };
        let message = serde_json::from_str(payload["message"].as_str().unwrap()).unwrap();
        (payload, message)
    }

    /// The next system message code.
    pub async fn system_code(&mut self) -> u64 {
        let frame = self
            .wait_for(Duration::from_secs(10), |f| {
                matches!(f, Frame::Json(v) if v["context"] == "api" && v["data"]["code"].is_number())
            })
            .await
            .expect("a system message");
        let Frame::Json(v) = frame else {
            unreachable!()
        };
        assert_eq!(v["message"], v["data"], "message beside data");
        v["data"]["code"].as_u64().unwrap()
    }
}

/// The members present in `room` by the presence read model, sorted.
pub async fn present(db: &sqlx::PgPool, room: &str) -> Vec<String> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT member_id FROM rm_room_presence WHERE room = $1 ORDER BY 1")
            .bind(room)
            .fetch_all(db)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}
