//! The chat scenario's sockets: the actionhero protocol over `/primus` (Primus framing: each
//! frame one JSON value, docs/chat.md#transport-and-framing). Both onair and
//! actionhero speak it, so the same client measures both.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

/// A chat socket.
pub type Ws = WebSocketStream<TcpStream>;

/// `ws://host:port/primus` for a server's `http://host:port` base URL.
pub fn primus_url(base: &str) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("ws://"))
        .context("chat URLs must be http:// or ws:// (TLS is not supported by the bench)")?;
    let host = rest.split('/').next().unwrap_or(rest);
    Ok(format!("ws://{host}/primus"))
}

/// The address to connect to, and the source address to bind: with `source_ips` > 1 and a
/// loopback target, socket `n` comes from 127.0.0.(1 + n % source_ips).
pub async fn addresses(
    url: &str,
    n: usize,
    source_ips: u8,
) -> anyhow::Result<(SocketAddr, Option<IpAddr>)> {
    let host = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .context("not a ws:// URL")?;
    let target = tokio::net::lookup_host(host)
        .await?
        .next()
        .with_context(|| format!("{host} does not resolve"))?;
    let source = (source_ips > 1 && target.ip().is_loopback() && target.is_ipv4())
        .then(|| IpAddr::from([127, 0, 0, 1 + (n % source_ips as usize) as u8]));
    Ok((target, source))
}

/// Opens a socket to `url` from `source`; `small_receive_buffer` (4 KiB) makes a socket that
/// stops reading fill up quickly, as a slow client would. Retries for up to 60 s while the
/// server answers 429 (its per-IP limits).
pub async fn connect(
    url: &str,
    target: SocketAddr,
    source: Option<IpAddr>,
    small_receive_buffer: bool,
) -> anyhow::Result<Ws> {
    let started = Instant::now();
    loop {
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        if small_receive_buffer {
            socket.set_recv_buffer_size(4096)?;
        }
        let stream = socket
            .connect(target)
            .await
            .with_context(|| format!("connecting to {target}"))?;
        stream.set_nodelay(true)?;
        // A small read buffer: the library zeroes its free read capacity before every read, and
        // a listener reads one short frame at a time.
        let config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
        match tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await {
            Ok((ws, _)) => return Ok(ws),
            Err(tungstenite::Error::Http(r))
                if r.status() == 429 && started.elapsed() < Duration::from_secs(60) =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).context("opening the chat socket"),
        }
    }
}

/// Sends a frame.
pub async fn send(ws: &mut Ws, frame: &Value) -> anyhow::Result<()> {
    ws.send(Message::Text(frame.to_string().into())).await?;
    Ok(())
}

/// The pong for a Primus ping frame (`"primus::ping::<ms>"`).
pub fn pong_for(text: &str) -> Option<String> {
    let ms = text.strip_prefix("\"primus::ping::")?.strip_suffix('"')?;
    Some(format!("\"primus::pong::{ms}\""))
}

/// Sends `frame` with `messageId` and reads until its answer (answering pings), at most 30 s.
pub async fn request(ws: &mut Ws, mut frame: Value, message_id: u64) -> anyhow::Result<Value> {
    frame["messageId"] = json!(message_id);
    send(ws, &frame).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, ws.next())
            .await
            .context("no answer within 30 s")?;
        match next {
            Some(Ok(Message::Text(t))) => {
                if let Some(pong) = pong_for(&t) {
                    ws.send(Message::Text(pong.into())).await?;
                    continue;
                }
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["context"] == "response" && v["messageId"] == json!(message_id) {
                    return Ok(v);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the server closed the socket"),
        }
    }
}

/// `roomAdd`; fails unless answered `OK`.
pub async fn join(ws: &mut Ws, room: &str) -> anyhow::Result<()> {
    let answer = request(ws, json!({"event": "roomAdd", "room": room}), 1).await?;
    anyhow::ensure!(answer["status"] == "OK", "roomAdd answered {answer}");
    Ok(())
}

/// The `verify` action with a member's token; fails unless verified.
pub async fn verify(ws: &mut Ws, member: &str, room: &str, token: &str) -> anyhow::Result<()> {
    let frame = json!({"event": "action", "params": {"action": "verify", "memberID": member,
        "chatroom": room, "Authorization": token}});
    let answer = request(ws, frame, 2).await?;
    anyhow::ensure!(answer["verified"] == true, "verify answered {answer}");
    Ok(())
}

/// The text of a bench message: `<marker> <sender> <seq> <µs since the UNIX epoch>`
/// (no dots or colons, which chat filters could take for a URL).
pub fn message_text(marker: &str, sender: usize, seq: u64, micros: u64) -> String {
    format!("{marker} {sender} {seq} {micros}")
}

/// Finds bench messages in broadcast frames without parsing the JSON, with searchers built once
/// (a listener reads every frame of the run: the search is most of its work).
pub struct MessageFinder {
    marker: memchr::memmem::Finder<'static>,
    user: memchr::memmem::Finder<'static>,
}

impl MessageFinder {
    /// A finder of the messages whose text starts with `marker`.
    pub fn new(marker: &str) -> Self {
        Self {
            marker: memchr::memmem::Finder::new(marker.as_bytes()).into_owned(),
            user: memchr::memmem::Finder::new(b"\"context\":\"user\"").into_owned(),
        }
    }

    /// `(sender, seq, µs)` of the bench message in a broadcast frame (`context: user`).
    pub fn find(&self, frame: &str) -> Option<(usize, u64, u64)> {
        let at = self.marker.find(frame.as_bytes())? + self.marker.needle().len();
        self.user.find(frame.as_bytes())?;
        numbers(&frame[at..])
    }
}

/// Finds a bench message in a broadcast frame without parsing the JSON: `(sender, seq, µs)`.
pub fn find_message(frame: &str, marker: &str) -> Option<(usize, u64, u64)> {
    MessageFinder::new(marker).find(frame)
}

/// The first three numbers of `text`.
fn numbers(text: &str) -> Option<(usize, u64, u64)> {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let micros = parts.next()?.parse().ok()?;
    Some((sender, seq, micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_frames() {
        assert_eq!(
            primus_url("http://127.0.0.1:3000/").unwrap(),
            "ws://127.0.0.1:3000/primus"
        );
        assert!(primus_url("https://x").is_err());
        assert_eq!(
            pong_for("\"primus::ping::17\"").as_deref(),
            Some("\"primus::pong::17\"")
        );
        let text = message_text("benchab12", 3, 41, 99000);
        let message = json!({"type": "chat", "text": text}).to_string();
        let frame = json!({"message": message, "room": "r", "from": "x", "context": "user",
            "sentAt": 1})
        .to_string();
        assert_eq!(find_message(&frame, "benchab12 "), Some((3, 41, 99000)));
        assert_eq!(find_message(&frame, "benchzz "), None);
        let guest = frame.replace("\"user\"", "\"response\"");
        assert_eq!(MessageFinder::new("benchab12 ").find(&guest), None);
    }
}
