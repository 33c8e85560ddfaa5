//! The WebSocket endpoint: upgrades on `/primus` and every path below it, with any query
//! (protocols/actionhero.md §1.2); a plain GET there answers 426 Upgrade Required.
//!
//! One task reads a socket's frames and handles them strictly in arrival order (so replies go out
//! in request order, §1.6); another writes its queue. The welcome goes out first.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::{Message, WebSocket, WebSocketStream};
use poem::{FromRequest, IntoResponse, Request, Response, handler};
use serde_json::Map;
use uuid::Uuid;

use super::hub::Outgoing;
use super::protocol::{self, Incoming};
use super::service::ChatService;
use super::verbs;
use crate::app::AppState;

/// `GET /primus*`: the chat socket.
#[handler]
pub async fn primus(req: &Request) -> Response {
    let state = req
        .data::<Arc<AppState>>()
        .expect("AppState is attached to every route")
        .clone();
    let Ok(ws) = WebSocket::from_request_without_body(req).await else {
        return poem::http::StatusCode::UPGRADE_REQUIRED.into_response();
    };
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
    let (ip, port) = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| (a.ip().to_string(), a.port()))
        .unwrap_or_else(|| ("unknown".into(), 0));
    let chat = state.chat.clone();
    ws.on_upgrade(move |socket| run(chat, socket, id, fingerprint, ip, port))
        .into_response()
}

async fn run(
    chat: Arc<ChatService>,
    socket: WebSocketStream,
    id: String,
    fingerprint: String,
    ip: String,
    port: u16,
) {
    let connected_at = chat.clock().now_ms();
    let (sock, mut rx) = chat.hub.register(
        id,
        fingerprint,
        ip,
        port,
        connected_at,
        chat.settings().queue_size,
    );
    let (mut sink, mut stream) = socket.split();
    let killer = sock.clone();
    let mut writer = tokio::spawn(async move {
        // A kill (slow consumer) interrupts even a write the peer does not read; the connection
        // is then dropped without a close frame, which that peer would not read either.
        let write = async {
            while let Some(out) = rx.recv().await {
                match out {
                    Outgoing::Text(text) => {
                        if sink.send(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    Outgoing::CloseForGood => {
                        let _ = sink.send(Message::Text(protocol::server_close())).await;
                        let _ = sink.close().await;
                        return;
                    }
                    Outgoing::Close => {
                        let _ = sink.close().await;
                        return;
                    }
                }
            }
            let _ = sink.close().await;
        };
        tokio::select! {
            () = write => {}
            () = killer.kill.notified() => {}
        }
    });
    sock.send(Outgoing::Text(protocol::welcome()));
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = &mut writer => break,
        };
        let Some(Ok(frame)) = frame else { break };
        match frame {
            Message::Text(text) => match protocol::parse(&text) {
                Incoming::Pong => sock.state.lock().expect("state").alive = true,
                Incoming::IdRequest => {
                    chat.hub
                        .send_or_drop(&sock, Outgoing::Text(protocol::id_reply(&sock.id)));
                }
                Incoming::OtherControl | Incoming::Invalid => {}
                Incoming::NotAnObject => unknown_verb(&chat, &sock),
                Incoming::Request(request) => verbs::handle(&chat, &sock, request).await,
            },
            Message::Ping(_) | Message::Pong(_) => {
                sock.state.lock().expect("state").alive = true;
            }
            // Binary frames are not decoded (protocols/actionhero.md §1.3).
            Message::Binary(_) => unknown_verb(&chat, &sock),
            Message::Close(_) => break,
        }
    }
    verbs::disconnected(&chat, &sock).await;
    writer.abort();
}

/// The answer to a frame that is no request: `verb not found or not allowed (undefined)`.
fn unknown_verb(chat: &ChatService, sock: &super::hub::Socket) {
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
