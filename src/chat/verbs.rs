//! The verbs of the actionhero protocol (docs/chat.md#requests): `roomAdd`, `roomLeave`,
//! `roomView`, `detailsView`, `say`, `action` (src/chat/actions.rs), `quit` / `exit`. Each parses
//! its request, calls a command of [`crate::commands::chat`] or a query, and answers with the
//! frames of [`super::protocol`]. A socket's requests are handled in arrival order, one at a
//! time.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::actions;
use super::hub::{Outgoing, Socket};
use super::protocol::{self, Request};
use super::service::ChatService;
use crate::commands::chat::{Say, SayError};
use crate::domain::chat::{SayRefusal, SystemCode};

/// A request's verb, with the parameters it requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `roomAdd {room}`: join a room (a non-empty name).
    RoomAdd(String),
    /// `roomLeave {room}`: leave a room.
    RoomLeave(String),
    /// `roomView {room}`: the room's members.
    RoomView(String),
    /// `detailsView`: this connection's details.
    DetailsView,
    /// `say {room, message}`: say a message in a room.
    Say {
        /// The room.
        room: String,
        /// The message's text (see [`Request::message_text`]).
        message: String,
    },
    /// `action {params: {action, ...}}`: see src/chat/actions.rs.
    Action,
    /// `quit` / `exit`: close for good.
    Quit,
}

/// The verb of a request, or the text of its `verb_error` answer.
pub fn parse_verb(request: &Request) -> Result<Verb, String> {
    let room = || request.room.clone().ok_or("room is required".to_owned());
    Ok(match request.event.as_deref() {
        Some("roomAdd") => Verb::RoomAdd(
            request
                .room
                .clone()
                .filter(|r| !r.is_empty())
                .ok_or("room is required")?,
        ),
        Some("roomLeave") => Verb::RoomLeave(room()?),
        Some("roomView") => Verb::RoomView(room()?),
        Some("detailsView") => Verb::DetailsView,
        Some("say") => match (request.room.clone(), request.message_text()) {
            (Some(room), Some(message)) => Verb::Say { room, message },
            _ => return Err("both room and message are required".into()),
        },
        Some("action") => Verb::Action,
        Some("quit") | Some("exit") => Verb::Quit,
        other => {
            let verb = other.unwrap_or("undefined");
            return Err(format!("verb not found or not allowed ({verb})"));
        }
    })
}

/// Handles one request of a socket (a `say` waits for its ack here; the socket pipelines says
/// with [`say`] instead).
pub async fn handle(chat: &Arc<ChatService>, socket: &Arc<Socket>, request: Request) {
    let verb = match parse_verb(&request) {
        Ok(verb) => verb,
        Err(message) => return error(chat, socket, &request, &message),
    };
    match verb {
        Verb::RoomAdd(room) => room_add(chat, socket, &request, &room).await,
        Verb::RoomLeave(room) => room_leave(chat, socket, &request, &room).await,
        Verb::RoomView(room) => room_view(chat, socket, &request, &room).await,
        Verb::DetailsView => {
            let data = json!({
                "id": socket.id, "fingerprint": socket.fingerprint,
                "remoteIP": socket.remote_ip, "remotePort": socket.remote_port,
                "params": {}, "connectedAt": socket.connected_at, "rooms": socket.rooms(),
                "totalActions": 0, "pendingActions": 0
            });
            ok(chat, socket, &request, Some(data));
        }
        Verb::Say { .. } => say(chat, socket, request).await.await,
        Verb::Action => actions::action(chat, socket, &request).await,
        Verb::Quit => chat.hub.send_or_drop(socket, Outgoing::CloseForGood),
    }
}

fn ok(chat: &ChatService, socket: &Socket, request: &Request, data: Option<Value>) {
    chat.hub
        .reply(socket, protocol::verb_ok(&request.message_id, data));
}

fn error(chat: &ChatService, socket: &Socket, request: &Request, message: &str) {
    chat.hub.reply(
        socket,
        protocol::verb_error(&request.message_id, message, &request.rest),
    );
}

/// A system message, and the same text as the verb's error.
fn refuse(chat: &ChatService, socket: &Socket, request: &Request, code: SystemCode) {
    chat.hub.system(socket, code);
    error(chat, socket, request, code.message());
}

async fn room_add(chat: &ChatService, socket: &Arc<Socket>, request: &Request, room: &str) {
    if let Some(member) = socket.member_id()
        && chat.room_moderation(room).banned.contains(&member)
    {
        return refuse(chat, socket, request, SystemCode::Banned);
    }
    if chat.hub.join(socket, room, chat.clock().now_ms()) {
        // Answered once this instance receives the room's chat.
        if let Err(e) = chat.interest.join(room).await {
            tracing::warn!(error = %e, chat.room = %room, "chat room not subscribed");
        }
        ok(chat, socket, request, Some(json!(true)));
    } else {
        let message = format!("connection already in this room ({room})");
        error(chat, socket, request, &message);
    }
}

async fn room_leave(chat: &ChatService, socket: &Arc<Socket>, request: &Request, room: &str) {
    if chat.hub.leave(socket, room) {
        chat.interest.leave(room).await;
        ok(chat, socket, request, Some(json!(true)));
        left(chat, socket, room).await;
    } else {
        let message = format!("connection not in this room ({room})");
        error(chat, socket, request, &message);
    }
}

async fn room_view(chat: &ChatService, socket: &Arc<Socket>, request: &Request, room: &str) {
    let mut members: Map<String, Value> = chat
        .hub
        .members(room)
        .into_iter()
        .map(|(sid, joined)| (sid.clone(), json!({"id": sid, "joinedAt": joined})))
        .collect();
    // Verified members on the other instances, from the presence read model (their unverified
    // guests are known to their own instance only).
    match chat.presence().present_elsewhere(room).await {
        Ok(rows) => {
            for row in rows {
                let joined = protocol::unix_ms(row.since);
                members
                    .entry(row.connection_id.clone())
                    .or_insert_with(|| json!({"id": row.connection_id, "joinedAt": joined}));
            }
        }
        Err(e) => tracing::warn!(error = %e, "roomView lists this instance only"),
    }
    let count = members.len();
    let data = json!({"room": room, "members": members, "membersCount": count});
    ok(chat, socket, request, Some(data));
}

/// The answer to a `say`, once its message is stored (or at once when it was refused): run by
/// the socket in request order (src/chat/socket.rs), so answers go out in order while the acks
/// of several says are awaited together.
pub type SayAnswer = futures_util::future::BoxFuture<'static, ()>;

/// Whether a request is a `say` (pipelined: see [`say`]).
pub fn is_say(request: &Request) -> bool {
    request.event.as_deref() == Some("say")
}

/// Handles a `say`: checks it, counts the rate and publishes its message now (in request order);
/// returns the answer, which waits for the message's JetStream ack.
pub async fn say(chat: &Arc<ChatService>, socket: &Arc<Socket>, request: Request) -> SayAnswer {
    let (chat, socket) = (chat.clone(), socket.clone());
    let sent = match parse_verb(&request) {
        Ok(Verb::Say { room, message }) if socket.in_room(&room) => {
            // A socket whose token expired is told 40302 here and says as a guest.
            let speaker = chat.sessions.member(&socket).await;
            let moderation = chat.room_moderation(&room);
            crate::commands::chat::say_pipelined(
                &chat.store,
                &chat.db,
                chat.clock().now(),
                Say {
                    room: &room,
                    connection_id: &socket.id,
                    speaker: speaker.as_ref(),
                    raw: &message,
                    moderation: &moderation,
                    maintenance: chat.maintenance(),
                    max_text_chars: chat.settings().max_text_chars,
                    messages_per_minute: chat.settings().messages_per_minute,
                    message_rate: &chat.message_rate,
                },
            )
            .await
            .map_err(Ok)
        }
        Ok(Verb::Say { room, .. }) => Err(Err(format!("connection not in this room ({room})"))),
        Ok(_) => Err(Err("both room and message are required".to_owned())),
        Err(message) => Err(Err(message)),
    };
    Box::pin(async move {
        // `Err(Ok(_))`: refused or not sent; `Err(Err(_))`: not a valid say here.
        let said = match sent {
            Ok(ack) => ack.await,
            Err(Ok(e)) => Err(e),
            Err(Err(message)) => return error(&chat, &socket, &request, &message),
        };
        match said {
            Ok(_) => ok(&chat, &socket, &request, None),
            Err(SayError::Refused(SayRefusal::System(code))) => {
                refuse(&chat, &socket, &request, code)
            }
            Err(SayError::Refused(SayRefusal::Invalid(reason))) => {
                error(&chat, &socket, &request, &reason)
            }
            Err(SayError::Store(e)) => {
                tracing::warn!(error = %e, "chat message not stored");
                error(
                    &chat,
                    &socket,
                    &request,
                    "the message could not be stored; try again",
                );
            }
        }
    })
}

/// A socket closed: its verified member leaves its rooms.
pub async fn disconnected(chat: &ChatService, socket: &Arc<Socket>) {
    for room in chat.hub.unregister(socket) {
        chat.interest.leave(&room).await;
        left(chat, socket, &room).await;
    }
}

/// The verified member of `socket` left `room`: publishes their leave, if the room was told they
/// joined.
async fn left(chat: &ChatService, socket: &Socket, room: &str) {
    let member = {
        let mut state = socket.state.lock().expect("state");
        if !state.announced.remove(room) {
            return;
        }
        state.member.clone()
    };
    let Some(member) = member else { return };
    // A failure is logged by the command.
    let _ = crate::commands::chat::leave_room(
        &chat.store,
        chat.clock().now(),
        room,
        member.member_id.as_str(),
        &member.nickname,
        &socket.id,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::Incoming;

    fn request(frame: Value) -> Request {
        match protocol::parse(&frame.to_string()) {
            Incoming::Request(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn verb(frame: Value) -> Result<Verb, String> {
        parse_verb(&request(frame))
    }

    #[test]
    fn room_verbs_name_their_room() {
        assert_eq!(
            verb(json!({"event": "roomAdd", "room": "r"})),
            Ok(Verb::RoomAdd("r".into()))
        );
        assert_eq!(
            verb(json!({"event": "roomLeave", "room": "r"})),
            Ok(Verb::RoomLeave("r".into()))
        );
        assert_eq!(
            verb(json!({"event": "roomView", "room": 7})),
            Ok(Verb::RoomView("7".into()))
        );
    }

    #[test]
    fn room_add_requires_a_non_empty_room_and_the_others_a_room() {
        for event in ["roomAdd", "roomLeave", "roomView"] {
            assert_eq!(
                verb(json!({"event": event})),
                Err("room is required".into()),
                "{event}"
            );
        }
        assert_eq!(
            verb(json!({"event": "roomAdd", "room": ""})),
            Err("room is required".into())
        );
        assert_eq!(
            verb(json!({"event": "roomLeave", "room": ""})),
            Ok(Verb::RoomLeave(String::new()))
        );
    }

    #[test]
    fn say_requires_both_room_and_message() {
        assert_eq!(
            verb(json!({"event": "say", "room": "r", "message": "hi"})),
            Ok(Verb::Say {
                room: "r".into(),
                message: "hi".into()
            })
        );
        for frame in [
            json!({"event": "say", "room": "r"}),
            json!({"event": "say", "message": "hi"}),
            json!({"event": "say", "room": "r", "message": ""}),
        ] {
            assert_eq!(
                verb(frame.clone()),
                Err("both room and message are required".into()),
                "{frame}"
            );
        }
    }

    #[test]
    fn an_unknown_or_missing_verb_is_named_in_the_error() {
        assert_eq!(
            verb(json!({"event": "dance"})),
            Err("verb not found or not allowed (dance)".into())
        );
        assert_eq!(
            verb(json!({"room": "r"})),
            Err("verb not found or not allowed (undefined)".into())
        );
        assert_eq!(verb(json!({"event": "exit"})), Ok(Verb::Quit));
        assert_eq!(verb(json!({"event": "detailsView"})), Ok(Verb::DetailsView));
        assert_eq!(verb(json!({"event": "action"})), Ok(Verb::Action));
    }
}
