//! The WebSocket endpoint: upgrades on `/primus` and every path below it, with any query
//! (docs/chat.md#transport-and-framing); a plain GET there answers 426 Upgrade Required.
//!
//! One task reads a socket's frames and handles them strictly in arrival order (so replies go out
//! in request order, docs/chat.md#requests); another writes its queue. The welcome goes out
//! first. `say`s are pipelined: each is checked and its message published in order, and up to
//! `ONAIR_CHAT_SAY_PIPELINE` of them await their JetStream acks at once; each is answered after
//! its own ack, in order, and any other request waits until the says before it are answered.
//!
//! Flood guards (src/runtime/socket_limits.rs): per-IP open sockets and new sockets per second are
//! checked before the upgrade (429), the IP being the client's (src/runtime/client_addr.rs: behind
//! a trusted proxy, the address it forwarded); a socket's frames per second are limited (over
//! it: system message 42901, past twice it: close 1008); a message over
//! `ONAIR_WS_MAX_MESSAGE_BYTES` is refused from its header and the socket closed with 1009. A
//! socket that answers no Primus ping is closed by the heartbeat ([`super::hub::Hub::heartbeat`])
//! after 2 to 3 ping intervals.

use std::sync::Arc;

use std::collections::VecDeque;
use std::task::Poll;

use futures_util::stream::{FuturesOrdered, SplitSink};
use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::Message;
use poem::{Request, Response, handler};
use serde_json::Map;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use uuid::Uuid;

use super::hub::{Outgoing, Socket};
use super::protocol::{self, Incoming};
use super::service::ChatService;
use super::upgrade::{self, Stream, Upgrade};
use super::verbs;
use crate::domain::chat::SystemCode;
use crate::runtime::client_addr::ClientAddr;
use crate::runtime::socket_limits::{
    FrameVerdict, SocketLimits, SocketPermit, close_for_read_error,
};

/// A plain request to `/primus` that does not ask to switch to the WebSocket protocol; the
/// composition root answers it 426 `UPGRADE_REQUIRED` in the API's error shape.
#[derive(Debug, thiserror::Error)]
#[error("/primus is a WebSocket: open it with Upgrade: websocket")]
pub struct NotAnUpgrade;

impl poem::error::ResponseError for NotAnUpgrade {
    fn status(&self) -> poem::http::StatusCode {
        poem::http::StatusCode::UPGRADE_REQUIRED
    }
}

/// `GET /primus*`: the chat socket. Its endpoint carries the chat service and the socket limits
/// (src/server/routes.rs mounts it).
#[handler]
pub async fn primus(req: &Request) -> poem::Result<Response> {
    let chat = req
        .data::<Arc<ChatService>>()
        .expect("the chat service is attached to the chat socket's endpoint")
        .clone();
    let socket_limits = req
        .data::<SocketLimits>()
        .expect("the socket limits are attached to the chat socket's endpoint");
    let Some(upgrade) = Upgrade::of(req) else {
        return Err(NotAnUpgrade.into());
    };
    let client = ClientAddr::of(req);
    let permit = match socket_limits.admit(client.ip, "/primus") {
        Ok(permit) => permit,
        // Answered 429 by the error mapping the composition root puts around this endpoint.
        Err(refused) => return Err(refused.into()),
    };
    let settings = chat.settings();
    let config = socket_limits
        .websocket_config()
        .read_buffer_size(settings.read_buffer_bytes)
        .write_buffer_size(settings.write_buffer_bytes);
    let id = Uuid::new_v4().to_string();
    let fingerprint = req
        .uri()
        .query()
        .and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == "sessionID")
                .map(|(_, v)| v.to_owned())
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| id.clone());
    let (ip, port) = (client.ip.to_string(), client.port.unwrap_or(0));
    Ok(upgrade.answer(config, move |socket| {
        run(chat, socket, permit, id, fingerprint, ip, port)
    }))
}

/// Closes the queue when the writer ends (or is aborted): what is queued then is refused, and a
/// socket refused so is not counted as a slow consumer.
struct CloseOnDrop(Arc<Socket>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.queue.close();
    }
}

/// Polls `fut` until it is ready, or until the socket is killed (`None`): a kill interrupts even
/// a write that the peer does not read.
async fn unless_killed<F: Future>(sock: &Socket, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        sock.queue.poll_killed(cx).map(|()| None)
    })
    .await
}

/// Writes the socket's queue until it closes or the socket is killed. Each wakeup takes
/// everything queued, feeds it and flushes once: a socket that fell behind catches up with one
/// write instead of one per frame, and a room's broadcast is written from the bytes every
/// socket shares. A killed socket (a slow consumer) is then dropped without a close frame, which
/// that peer would not read either.
///
/// With a write delay (`ONAIR_CHAT_WRITE_DELAY_MS`), the writer waits that long after a wakeup
/// and takes what arrived meanwhile too, so the frames due to a socket within the delay leave in
/// one write.
async fn write(
    sock: Arc<Socket>,
    mut sink: SplitSink<Stream, WsMessage>,
    delay: std::time::Duration,
) {
    let _closed = CloseOnDrop(sock.clone());
    let mut batch = VecDeque::new();
    let mut later = VecDeque::new();
    let (writes, frames_written) = (
        metrics::counter!("onair_chat_socket_writes_total"),
        metrics::counter!("onair_chat_frames_written_total"),
    );
    loop {
        let alive = std::future::poll_fn(|cx| sock.queue.poll_take(cx, &mut batch)).await;
        if !alive {
            return;
        }
        if !delay.is_zero() {
            if unless_killed(&sock, tokio::time::sleep(delay))
                .await
                .is_none()
            {
                return;
            }
            let alive = std::future::poll_fn(|cx| {
                Poll::Ready(match sock.queue.poll_take(cx, &mut later) {
                    Poll::Ready(alive) => alive,
                    Poll::Pending => true,
                })
            })
            .await;
            if !alive {
                return;
            }
            batch.append(&mut later);
        }
        let frames = batch.len() as u64;
        for out in batch.drain(..) {
            let text = match out {
                Outgoing::Text(text) => Utf8Bytes::from(text),
                Outgoing::Shared(text) => text,
                Outgoing::CloseForGood => {
                    let bye = WsMessage::text(protocol::server_close());
                    let _ = unless_killed(&sock, sink.send(bye)).await;
                    let _ = unless_killed(&sock, sink.close()).await;
                    return;
                }
                Outgoing::Close => {
                    let _ = unless_killed(&sock, sink.close()).await;
                    return;
                }
                Outgoing::CloseWith(code, reason) => {
                    let close = WsMessage::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    }));
                    let _ = unless_killed(&sock, sink.send(close)).await;
                    let _ = unless_killed(&sock, sink.close()).await;
                    return;
                }
            };
            if !matches!(
                unless_killed(&sock, sink.feed(WsMessage::Text(text))).await,
                Some(Ok(()))
            ) {
                return;
            }
        }
        if !matches!(unless_killed(&sock, sink.flush()).await, Some(Ok(()))) {
            return;
        }
        writes.increment(1);
        frames_written.increment(frames);
    }
}

async fn run(
    chat: Arc<ChatService>,
    socket: Stream,
    permit: SocketPermit,
    id: String,
    fingerprint: String,
    ip: String,
    port: u16,
) {
    let mut rate = permit.frame_rate();
    let connected_at = chat.clock().now_ms();
    let sock = chat.hub.register(
        id,
        fingerprint,
        ip,
        port,
        connected_at,
        chat.settings().queue_size,
    );
    let (sink, stream) = socket.split();
    let mut stream = stream.map(|frame| frame.map(Message::from).map_err(upgrade::io_error));
    let mut writer = tokio::spawn(write(sock.clone(), sink, chat.settings().write_delay));
    sock.send(Outgoing::Text(protocol::welcome()));
    let mut writer_done = false;
    let mut closing = false;
    // The answers of says whose messages are published and whose acks are awaited, in request
    // order; any other frame is handled only once they are answered, so answers stay in order.
    let mut pending: FuturesOrdered<verbs::SayAnswer> = FuturesOrdered::new();
    let pipeline = chat.settings().say_pipeline.max(1);
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            Some(()) = pending.next(), if !pending.is_empty() => continue,
            _ = &mut writer => {
                writer_done = true;
                break;
            }
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                if let Some((code, reason)) = close_for_read_error(&e) {
                    tracing::warn!(socket = %sock.id, ip = %sock.remote_ip, code, error = %e, "chat socket closed: bad frame");
                    chat.hub
                        .send_or_drop(&sock, Outgoing::CloseWith(code, reason));
                    closing = true;
                }
                break;
            }
            None => break,
        };
        if !matches!(frame, Message::Close(_)) {
            match rate.check(permit.now_ms()) {
                FrameVerdict::Handle => {}
                FrameVerdict::RefuseAndWarn => {
                    tracing::info!(socket = %sock.id, ip = %sock.remote_ip, "chat socket over its frame rate");
                    chat.hub.system(&sock, SystemCode::TooFast);
                    continue;
                }
                FrameVerdict::Refuse => continue,
                FrameVerdict::Close => {
                    tracing::warn!(socket = %sock.id, ip = %sock.remote_ip, "chat socket closed: more than twice its frame rate");
                    chat.hub
                        .send_or_drop(&sock, Outgoing::CloseWith(1008, "too many frames"));
                    closing = true;
                    break;
                }
            }
        }
        let incoming = match frame {
            Message::Text(text) => protocol::parse(&text),
            Message::Ping(_) | Message::Pong(_) => Incoming::Pong,
            // Binary frames are not decoded: answered as a JSON value that is not an object.
            Message::Binary(_) => Incoming::NotAnObject,
            Message::Close(_) => {
                drain(&mut pending).await;
                // The writer's close sends the library's answer to the peer's close.
                chat.hub.send_or_drop(&sock, Outgoing::Close);
                closing = true;
                break;
            }
        };
        match incoming {
            Incoming::Pong => sock.state.lock().expect("state").alive = true,
            Incoming::Request(request) if verbs::is_say(&request) => {
                if pending.len() >= pipeline {
                    pending.next().await;
                }
                // Boxed here and below: the handlers' state lives on the heap only while they run,
                // so an idle socket's task stays small.
                pending.push_back(Box::pin(verbs::say(&chat, &sock, request)).await);
            }
            other => {
                drain(&mut pending).await;
                match other {
                    Incoming::IdRequest => {
                        chat.hub
                            .send_or_drop(&sock, Outgoing::Text(protocol::id_reply(&sock.id)));
                    }
                    Incoming::NotAnObject => unknown_verb(&chat, &sock),
                    Incoming::Request(request) => {
                        Box::pin(verbs::handle(&chat, &sock, request)).await
                    }
                    Incoming::Pong | Incoming::OtherControl | Incoming::Invalid => {}
                }
            }
        }
    }
    if !writer_done {
        drain(&mut pending).await;
    }
    Box::pin(verbs::disconnected(&chat, &sock)).await;
    if closing && !writer_done {
        // Let the writer send the close frame, then read (and drop) what the peer still sends
        // until its close answer, so the connection ends with a FIN the peer reads the close
        // before, not a reset; bounded: a peer that does not answer is dropped after 1 s.
        let linger = async {
            let _ = (&mut writer).await;
            while let Some(Ok(_)) = stream.next().await {}
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), linger).await;
    }
    writer.abort();
    drop(permit);
}

/// Answers the pending says, in order.
async fn drain(pending: &mut FuturesOrdered<verbs::SayAnswer>) {
    while pending.next().await.is_some() {}
}

/// The answer to a frame that is no request: `verb not found or not allowed (undefined)`.
fn unknown_verb(chat: &ChatService, sock: &Socket) {
    let id = serde_json::Value::String(Uuid::new_v4().to_string());
    chat.hub.send_or_drop(
        sock,
        Outgoing::Text(protocol::verb_error(
            &id,
            "verb not found or not allowed (undefined)",
            &Map::new(),
        )),
    );
}
