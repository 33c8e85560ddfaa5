//! The stats WebSocket `ws://host/ws` (docs/api.md#the-stats-websocket).
//!
//! Client frames (JSON text): `{"type":"subscribe","channel":"stats"}`,
//! `{"type":"unsubscribe","channel":"stats"}`, `{"type":"ping"}`.
//! Server frames: `{"type":"subscribed","channel":"stats"}`, then
//! `{"type":"stats_update","data":{"viewerCount","activeStages","timestamp"}}` at once and every
//! push interval (seed: 5 s); `{"type":"unsubscribed","channel":"stats"}`; `{"type":"pong"}`; and
//! `{"type":"error","error":CODE,"message":...}` for a bad frame (`INVALID_MESSAGE`), an unknown
//! type (`UNKNOWN_TYPE`) or channel (`UNKNOWN_CHANNEL`); the socket stays open. The server pings
//! every third of `ONAIR_WS_IDLE_TIMEOUT_MS` (default 90 s: every 30 s) so idle sockets survive
//! proxies; a socket from which nothing arrives (not even the pong that every WebSocket client
//! answers by itself) for the whole timeout is closed (1000, `idle`).
//!
//! Flood guards (src/runtime/socket_limits.rs): more than `ONAIR_WS_FRAMES_PER_SECOND` frames get
//! `{"type":"error","error":"TOO_FAST"}` (once a second) and are not answered; more than twice
//! that within a second closes the socket with 1008. A message over `ONAIR_WS_MAX_MESSAGE_BYTES`
//! closes it with 1009, before it is read; a text frame that is not UTF-8, with 1007.
//!
//! One task computes the figures for every socket from the `stages` read model
//! ([`crate::read_models::stats_feed::run_feed`]); the route is `statsSocket` of src/http/stats.rs.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::read_models::stats_feed::StatsSnapshot;
use crate::runtime::socket_limits::{FrameVerdict, SocketPermit, close_for_read_error};

#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    channel: Option<String>,
}

fn error_frame(code: &str, message: impl Into<String>) -> String {
    json!({"type": "error", "error": code, "message": message.into()}).to_string()
}

fn update_frame(snapshot: &StatsSnapshot) -> String {
    json!({"type": "stats_update", "data": snapshot}).to_string()
}

/// Answers one client frame; `subscribed` tracks the stats subscription.
fn answer(text: &str, subscribed: &mut bool) -> Vec<String> {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(e) => {
            return vec![error_frame(
                "INVALID_MESSAGE",
                format!("frames are JSON objects with a \"type\": {e}"),
            )];
        }
    };
    let channel_ok = || frame.channel.as_deref() == Some("stats");
    match frame.kind.as_str() {
        "subscribe" | "unsubscribe" if !channel_ok() => vec![error_frame(
            "UNKNOWN_CHANNEL",
            format!(
                "unknown channel {:?}; the only channel is \"stats\"",
                frame.channel.unwrap_or_default()
            ),
        )],
        "subscribe" => {
            *subscribed = true;
            vec![json!({"type": "subscribed", "channel": "stats"}).to_string()]
        }
        "unsubscribe" => {
            *subscribed = false;
            vec![json!({"type": "unsubscribed", "channel": "stats"}).to_string()]
        }
        "ping" => vec![json!({"type": "pong"}).to_string()],
        other => vec![error_frame(
            "UNKNOWN_TYPE",
            format!("unknown type {other:?}; use subscribe, unsubscribe or ping"),
        )],
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some((CloseCode::from(code), reason.to_owned())))
}

/// Serves one socket until the client leaves, it is idle too long or it breaks a limit; `permit`
/// counts it against its IP until then.
pub async fn serve_socket(
    socket: WebSocketStream,
    mut feed: watch::Receiver<Option<StatsSnapshot>>,
    permit: SocketPermit,
) {
    let (mut sink, mut stream) = socket.split();
    let mut subscribed = false;
    let idle_timeout = permit.settings().idle_timeout;
    let ping_interval = idle_timeout / 3;
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    let mut rate = permit.frame_rate();
    loop {
        let incoming = tokio::select! {
            incoming = stream.next() => incoming,
            changed = feed.changed() => {
                if changed.is_err() {
                    break;
                }
                let update = match (subscribed, feed.borrow_and_update().clone()) {
                    (true, Some(snapshot)) => Some(Message::Text(update_frame(&snapshot))),
                    _ => None,
                };
                if let Some(message) = update
                    && sink.send(message).await.is_err()
                {
                    return;
                }
                continue;
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new())).await.is_err() {
                    return;
                }
                continue;
            }
            () = &mut idle => {
                tracing::info!("stats socket closed: idle");
                let _ = sink.send(close(1000, "idle")).await;
                return;
            }
        };
        idle.as_mut()
            .reset(tokio::time::Instant::now() + idle_timeout);
        if let Some(Ok(message)) = &incoming
            && !matches!(message, Message::Close(_))
        {
            match rate.check(permit.now_ms()) {
                FrameVerdict::Handle => {}
                FrameVerdict::RefuseAndWarn => {
                    let warning = error_frame(
                        "TOO_FAST",
                        "too many frames; this one and those until the rate allows are ignored",
                    );
                    if sink.send(Message::Text(warning)).await.is_err() {
                        return;
                    }
                    continue;
                }
                FrameVerdict::Refuse => continue,
                FrameVerdict::Close => {
                    tracing::warn!("stats socket closed: more than twice its frame rate");
                    let _ = sink.send(close(1008, "too many frames")).await;
                    // Read what the peer still sends until its close answer (at most 1 s), so
                    // the connection ends with a FIN, not a reset that would lose the close.
                    let linger = async { while let Some(Ok(_)) = stream.next().await {} };
                    let _ = tokio::time::timeout(Duration::from_secs(1), linger).await;
                    return;
                }
            }
        }
        let outgoing: Vec<Message> = match incoming {
            Some(Ok(Message::Text(text))) => {
                let was_subscribed = subscribed;
                let mut frames: Vec<Message> = answer(&text, &mut subscribed)
                    .into_iter()
                    .map(Message::Text)
                    .collect();
                if subscribed
                    && !was_subscribed
                    && let Some(snapshot) = feed.borrow_and_update().clone()
                {
                    frames.push(Message::Text(update_frame(&snapshot)));
                }
                frames
            }
            Some(Ok(Message::Binary(_))) => vec![Message::Text(error_frame(
                "INVALID_MESSAGE",
                "binary frames are not supported; send JSON text",
            ))],
            Some(Err(e)) => {
                if let Some((code, reason)) = close_for_read_error(&e) {
                    tracing::warn!(code, error = %e, "stats socket closed: bad frame");
                    let _ = sink.send(close(code, reason)).await;
                }
                break;
            }
            Some(Ok(Message::Close(_))) => {
                // Sends the library's answer to the peer's close.
                let _ = sink.close().await;
                break;
            }
            None => break,
            Some(Ok(_)) => vec![],
        };
        for message in outgoing {
            if sink.send(message).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_answered_and_bad_ones_get_an_error_not_a_crash() {
        let mut subscribed = false;
        assert!(
            answer(r#"{"type":"subscribe","channel":"stats"}"#, &mut subscribed)[0]
                .contains("subscribed")
        );
        assert!(subscribed);
        assert!(
            answer(r#"{"type":"subscribe","channel":"chat"}"#, &mut subscribed)[0]
                .contains("UNKNOWN_CHANNEL")
        );
        assert!(answer("not json", &mut subscribed)[0].contains("INVALID_MESSAGE"));
        assert!(answer(r#"{"type":"dance"}"#, &mut subscribed)[0].contains("UNKNOWN_TYPE"));
        assert!(subscribed, "errors leave the subscription alone");
        assert!(
            answer(
                r#"{"type":"unsubscribe","channel":"stats"}"#,
                &mut subscribed
            )[0]
            .contains("unsubscribed")
        );
        assert!(!subscribed);
    }
}
