//! The flood guards of `/primus` and `/ws` (src/runtime/socket_limits.rs): per-IP open sockets and
//! new sockets per second (429 before the upgrade), frames per second per socket (told, then
//! closed with 1008), the message size (1009 from the header, before the message is read), and
//! the idle `/ws` socket. The silent `/primus` socket is closed by the Primus heartbeat
//! (chat.rs, `the_server_pings_and_closes_a_silent_socket_so_it_reconnects`).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::helpers::{Services, TestApp, spawn_app_with};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `ws://…/primus` or `ws://…/ws?apiKey=…` of `app`.
pub fn socket_url(app: &TestApp, path: &str) -> String {
    let base = app.address.replace("http://", "ws://");
    if path == "/ws" {
        format!("{base}/ws?apiKey={}", app.api_key)
    } else {
        format!("{base}{path}")
    }
}

/// Opens a socket, or the refusal's status, `Retry-After` and JSON body.
async fn open(app: &TestApp, path: &str) -> Result<Ws, (u16, Option<u64>, Value)> {
    match tokio_tungstenite::connect_async(socket_url(app, path)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), retry_after, body))
        }
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Reads until the server's close frame; its code (None: the connection ended without one).
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the socket closes within 5 s");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return None,
        }
    }
}

/// The texts received until the server's close frame, and its code.
async fn texts_until_close(ws: &mut Ws) -> (Vec<Value>, Option<u16>) {
    let mut texts = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the socket closes within 5 s");
        match next {
            Some(Ok(Message::Text(t))) => texts.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return (texts, frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (texts, None),
        }
    }
}

fn assert_refused(refusal: Result<Ws, (u16, Option<u64>, Value)>, what: &str) -> u64 {
    let Err((status, retry_after, body)) = refusal else {
        panic!("{what}: the upgrade went through");
    };
    assert_eq!(status, 429, "{what}");
    assert_eq!(body["error"], "TOO_MANY_REQUESTS", "{what}: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("WebSockets"),
        "{what}: {body}"
    );
    retry_after.expect("Retry-After")
}

#[tokio::test]
async fn an_ip_over_its_open_sockets_is_refused_429_before_the_upgrade_until_one_closes() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.ws_max_sockets_per_ip = 3;
        s.ws_new_sockets_per_ip_per_second = 1_000;
    })
    .await;
    let mut first = open(&app, "/primus").await.expect("1st");
    let _second = open(&app, "/primus?sessionID=x").await.expect("2nd");
    let _third = open(&app, "/ws").await.expect("3rd, a stats socket");
    assert_refused(open(&app, "/primus").await, "4th on /primus");
    assert_refused(open(&app, "/ws").await, "4th on /ws");
    assert_eq!(
        app.state.chat.hub.len(),
        2,
        "the refused never reached the hub"
    );

    first.close(None).await.unwrap();
    let _ = close_code(&mut first).await;
    crate::helpers::eventually(Duration::from_secs(5), || async {
        open(&app, "/primus").await.ok()
    })
    .await;
}

#[tokio::test]
async fn an_ip_opening_sockets_too_fast_is_refused_429_until_the_clock_moves() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.ws_max_sockets_per_ip = 1_000;
        s.ws_new_sockets_per_ip_per_second = 3;
    })
    .await;
    let mut open_ones = Vec::new();
    for _ in 0..3 {
        open_ones.push(open(&app, "/primus").await.expect("within the burst"));
    }
    let retry_after = assert_refused(open(&app, "/ws").await, "4th within a second");
    assert_eq!(retry_after, 1);
    app.state.clock.advance(Duration::from_secs(1));
    open_ones.push(open(&app, "/ws").await.expect("a second later"));
    drop(open_ones);
}

#[tokio::test]
async fn a_chat_socket_over_its_frame_rate_is_told_42901_then_closed_with_1008() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.ws_frames_per_second = 5;
        s.ws_frames_burst = 5;
    })
    .await;
    let mut ws = open(&app, "/primus").await.unwrap();
    for i in 0..20 {
        let frame = json!({"event": "detailsView", "messageId": i}).to_string();
        if ws.send(Message::Text(frame.into())).await.is_err() {
            break;
        }
    }
    let (texts, code) = texts_until_close(&mut ws).await;
    assert_eq!(code, Some(1008), "{texts:?}");
    let answered = texts.iter().filter(|t| t["status"] == "OK").count();
    assert_eq!(answered, 5, "the burst is answered: {texts:?}");
    let told: Vec<&Value> = texts
        .iter()
        .filter(|t| t["context"] == "api" && t["data"]["code"] == 42901)
        .collect();
    assert_eq!(told.len(), 1, "told once: {texts:?}");
    crate::helpers::eventually(Duration::from_secs(5), || async {
        app.state.chat.hub.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_stats_socket_over_its_frame_rate_gets_too_fast_then_1008() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        s.ws_frames_per_second = 5;
        s.ws_frames_burst = 5;
    })
    .await;
    let mut ws = open(&app, "/ws").await.unwrap();
    for _ in 0..20 {
        if ws
            .send(Message::Text(r#"{"type":"ping"}"#.into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (texts, code) = texts_until_close(&mut ws).await;
    assert_eq!(code, Some(1008), "{texts:?}");
    assert_eq!(texts.iter().filter(|t| t["type"] == "pong").count(), 5);
    assert_eq!(
        texts.iter().filter(|t| t["error"] == "TOO_FAST").count(),
        1,
        "{texts:?}"
    );
}

/// A client speaking raw WebSocket frames, to send what a library would refuse to: a header
/// announcing a huge frame, a truncated frame, invalid UTF-8.
pub struct RawSocket {
    pub tcp: TcpStream,
    buffer: Vec<u8>,
}

impl RawSocket {
    /// Upgrades `path` of `app` by hand; `None` when the server did not answer 101.
    pub async fn connect(app: &TestApp, path: &str) -> Option<Self> {
        let host = app.address.trim_start_matches("http://");
        let target = if path == "/ws" {
            format!("/ws?apiKey={}", app.api_key)
        } else {
            path.to_owned()
        };
        let mut tcp = TcpStream::connect(host).await.unwrap();
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk))
                .await
                .expect("the upgrade is answered")
                .ok()?;
            if n == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        if !buffer.starts_with(b"HTTP/1.1 101") {
            return None;
        }
        buffer.drain(..end);
        Some(Self { tcp, buffer })
    }

    /// A client frame header (masked, mask 0) for a payload of `len` bytes.
    pub fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut h = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    }

    /// Sends one whole frame (mask 0: the payload goes as is).
    pub async fn send_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let mut bytes = Self::header(fin, opcode, payload.len() as u64);
        bytes.extend_from_slice(payload);
        self.tcp.write_all(&bytes).await
    }

    /// The next server frame (opcode, payload); `None` when the connection ends; panics when the
    /// server sends nothing for `wait`.
    pub async fn read_frame(&mut self, wait: Duration) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buffer.len() >= 2 {
                let opcode = self.buffer[0] & 0x0f;
                let (len, start) = match self.buffer[1] & 0x7f {
                    126 if self.buffer.len() >= 4 => (
                        u16::from_be_bytes([self.buffer[2], self.buffer[3]]) as usize,
                        4,
                    ),
                    127 if self.buffer.len() >= 10 => (
                        u64::from_be_bytes(self.buffer[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    n @ 0..=125 => (n as usize, 2),
                    _ => (usize::MAX, 0),
                };
                if len != usize::MAX && self.buffer.len() >= start + len {
                    let payload = self.buffer[start..start + len].to_vec();
                    self.buffer.drain(..start + len);
                    return Some((opcode, payload));
                }
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(wait, self.tcp.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no frame and no close within {wait:?}"))
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the server's close frame: its code (None if the connection ended first).
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        while let Some((opcode, payload)) = self.read_frame(wait).await {
            if opcode == 8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
        None
    }
}

#[tokio::test]
async fn a_message_over_the_limit_is_closed_with_1009_from_its_header_before_it_is_read() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.ws_max_message_bytes = 64 * 1024).await;
    for path in ["/primus", "/ws"] {
        // A header announcing 16 MB, and nothing of it: the answer cannot wait for the payload.
        let mut raw = RawSocket::connect(&app, path).await.expect("upgraded");
        raw.tcp
            .write_all(&RawSocket::header(true, 1, 16 << 20))
            .await
            .unwrap();
        assert_eq!(
            raw.close_code(Duration::from_secs(5)).await,
            Some(1009),
            "{path}"
        );

        // A message over the limit in two frames under it.
        let mut raw = RawSocket::connect(&app, path).await.expect("upgraded");
        let half = vec![b' '; 40 * 1024];
        raw.send_frame(false, 1, &half).await.unwrap();
        raw.send_frame(true, 0, &half).await.unwrap();
        assert_eq!(
            raw.close_code(Duration::from_secs(5)).await,
            Some(1009),
            "{path}"
        );

        // Just under the limit is read and answered.
        let mut ws = open(&app, path).await.unwrap();
        let pad = "p".repeat(60 * 1024);
        let (text, expected) = if path == "/ws" {
            (json!({"type": "ping", "pad": pad}), "pong")
        } else {
            (
                json!({"event": "detailsView", "messageId": "big", "pad": pad}),
                "\"big\"",
            )
        };
        ws.send(Message::Text(text.to_string().into()))
            .await
            .unwrap();
        loop {
            let answer = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("an answer within 5 s");
            match answer {
                Some(Ok(Message::Text(t))) if t.contains(expected) => break,
                Some(Ok(_)) => {}
                other => panic!("{path}: {other:?}"),
            }
        }
    }
    crate::helpers::eventually(Duration::from_secs(5), || async {
        app.state.chat.hub.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |_| {}).await;
    for path in ["/primus", "/ws"] {
        let mut raw = RawSocket::connect(&app, path).await.expect("upgraded");
        raw.send_frame(true, 1, &[0x7b, 0xff, 0xfe, 0x7d])
            .await
            .unwrap();
        assert_eq!(
            raw.close_code(Duration::from_secs(5)).await,
            Some(1007),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_stats_socket_that_answers_no_ping_is_closed_after_the_idle_timeout() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| s.ws_idle_timeout_ms = 900).await;
    let started = std::time::Instant::now();
    // A raw client answers nothing, not even the pings.
    let mut silent = RawSocket::connect(&app, "/ws").await.expect("upgraded");
    let mut pinged = false;
    let mut code = None;
    while let Some((opcode, payload)) = silent.read_frame(Duration::from_secs(3)).await {
        match opcode {
            9 => pinged = true,
            8 => {
                code = Some(u16::from_be_bytes([payload[0], payload[1]]));
                break;
            }
            _ => {}
        }
    }
    assert!(pinged, "pinged before the close");
    assert_eq!(code, Some(1000));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(3));

    // A library client answers the pings while it reads: it stays open past the timeout.
    let mut polite = open(&app, "/ws").await.unwrap();
    let until = tokio::time::Instant::now() + Duration::from_millis(1_800);
    while let Ok(frame) = tokio::time::timeout_at(until, polite.next()).await {
        assert!(matches!(frame, Some(Ok(Message::Ping(_)))), "{frame:?}");
    }
    polite
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(5), polite.next())
            .await
            .expect("an answer within 5 s");
        match answer {
            Some(Ok(Message::Ping(_))) => {}
            Some(Ok(Message::Text(t))) if t.contains("pong") => break,
            other => panic!("{other:?}"),
        }
    }
}
