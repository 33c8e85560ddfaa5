//! The `action` verb (docs/chat.md#answers): `verify`, `chatHistory`, and the moderation
//! actions (`ban`, `unban`, `mute`, `unmute`, `grantAdmin`, `revokeAdmin`). Each answers an
//! `action_result` map, or an `action_error` text.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::hub::Socket;
use super::protocol::{self, Request};
use super::service::ChatService;
use crate::commands::chat::JoinRoom;
use crate::commands::moderation::parse_action;
use crate::domain::chat::{ModerationAction, Speaker, SystemCode, TokenSession};
use crate::domain::member::{ChatroomName, MemberId};

/// Messages of `chatHistory` when no `limit` is given.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;
/// Most messages of one `chatHistory`.
pub const MAX_HISTORY_LIMIT: usize = 100;

/// The action a request's `params.action` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionName {
    /// `verify {memberID, chatroom, Authorization}`.
    Verify,
    /// `chatHistory {chatroom, limit?}`.
    ChatHistory,
    /// A moderation action `{memberID, chatroom, seconds?}`.
    Moderate(ModerationAction),
}

/// The action of `params`, or the `action_error` text.
pub fn parse_action_name(params: &Map<String, Value>) -> Result<ActionName, String> {
    let name = params.get("action").and_then(Value::as_str).unwrap_or("");
    match name {
        "verify" => Ok(ActionName::Verify),
        "chatHistory" => Ok(ActionName::ChatHistory),
        _ => parse_action(name)
            .map(ActionName::Moderate)
            .ok_or_else(|| "unknown action or invalid apiVersion".to_owned()),
    }
}

/// A required non-empty string parameter, or the `action_error` text.
pub fn required(params: &Map<String, Value>, name: &str) -> Result<String, String> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("{name} is a required parameter for this action"))
}

/// `chatHistory`'s `limit`: [`DEFAULT_HISTORY_LIMIT`] when absent or not a whole number,
/// clamped to 1 to [`MAX_HISTORY_LIMIT`].
pub fn history_limit(params: &Map<String, Value>) -> usize {
    params
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_HISTORY_LIMIT, |l| {
            l.clamp(1, MAX_HISTORY_LIMIT as u64) as usize
        })
}

/// The parameters of a moderation action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModerationParams {
    /// `memberID`: who is moderated.
    pub target: String,
    /// `chatroom`: the streamer's room.
    pub room: String,
    /// `seconds`: a timed mute's length (a whole number; anything else reads as none).
    pub seconds: Option<u64>,
}

/// The parameters of a moderation action, or the `action_error` text.
pub fn moderation_params(params: &Map<String, Value>) -> Result<ModerationParams, String> {
    Ok(ModerationParams {
        target: required(params, "memberID")?,
        room: required(params, "chatroom")?,
        seconds: params.get("seconds").and_then(Value::as_u64),
    })
}

/// Handles an `action` request.
pub async fn action(chat: &ChatService, socket: &Arc<Socket>, request: &Request) {
    let params = request.params();
    let result = match parse_action_name(&params) {
        Ok(ActionName::Verify) => verify(chat, socket, &params).await,
        Ok(ActionName::ChatHistory) => history(chat, socket, &params).await,
        Ok(ActionName::Moderate(action)) => moderate(chat, socket, action, &params).await,
        Err(message) => Err(message),
    };
    let id = &request.message_id;
    match result {
        Ok(map) => chat.hub.reply(socket, protocol::action_result(id, map)),
        Err(message) => chat.hub.reply(socket, protocol::action_error(id, &message)),
    }
}

/// `verify {memberID, chatroom, Authorization}`: binds the member to the socket for as long as the
/// token lasts (src/chat/sessions.rs); the first verify in a room publishes the member's join
/// ([`crate::commands::chat::join_room`]).
async fn verify(
    chat: &ChatService,
    socket: &Arc<Socket>,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let member_id = required(params, "memberID")?;
    let room = required(params, "chatroom")?;
    let token = required(params, "Authorization")?;
    let now = chat.clock().now();
    let claims = match chat
        .tokens
        .verify_current(&chat.db, Some(&token), now)
        .await
    {
        Ok(claims) if claims.sub == member_id => claims,
        _ => {
            chat.hub.system(socket, SystemCode::TokenInvalid);
            return Err(SystemCode::TokenInvalid.message().to_owned());
        }
    };
    let session = TokenSession {
        expires_at: claims.exp,
        version: claims.ver,
        role: claims.role,
    };
    if !socket.in_room(&room) {
        return Err(format!("connection not in this room ({room})"));
    }
    if let Some(current) = chat.sessions.member(socket).await.map(|m| m.member_id)
        && current.as_str() != member_id
    {
        return Err(format!(
            "this connection is verified as {current}; open another connection for {member_id}"
        ));
    }
    let moderation = chat.room_moderation(&room);
    if moderation.banned.contains(&member_id) {
        chat.hub.system(socket, SystemCode::Banned);
        return Err(SystemCode::Banned.message().to_owned());
    }
    let record = crate::commands::members::find(&chat.db, &member_id)
        .await
        .map_err(|_| "the member could not be looked up; try again".to_owned())?
        .ok_or_else(|| SystemCode::TokenInvalid.message().to_owned())?;
    // The token's subject: a member id, as every id onair signs a token for.
    let Ok(verified) = MemberId::parse(&member_id, "memberID") else {
        chat.hub.system(socket, SystemCode::TokenInvalid);
        return Err(SystemCode::TokenInvalid.message().to_owned());
    };
    let speaker = Speaker {
        member_id: verified,
        role: claims.role,
        nickname: record.nickname.clone(),
    };
    let first_in_room = chat.sessions.start(socket, speaker, session, &room);
    if first_in_room {
        // A failed read of the follow reads as "not following".
        let following = match crate::domain::member::chatroom_streamer(&room) {
            Some(streamer) => crate::read_models::rooms::is_following(
                &chat.db,
                &record.member_id,
                streamer.as_str(),
            )
            .await
            .unwrap_or(false),
            None => false,
        };
        // A failure is logged by the command; the member is verified all the same.
        let _ = crate::commands::chat::join_room(
            &chat.store,
            &chat.db,
            chat.clock().now(),
            JoinRoom {
                room: &room,
                member: &record,
                connection_id: &socket.id,
                instance_id: chat.instance_id(),
                moderation: &moderation,
                following,
                welcome_window: chat.settings().welcome_window,
            },
        )
        .await;
    }
    let mut answer = Map::new();
    answer.insert("verified".into(), json!(true));
    answer.insert("memberID".into(), json!(member_id));
    answer.insert("chatroom".into(), json!(room));
    Ok(answer)
}

/// `chatHistory {chatroom, limit?}`: the room's last messages (see [`history_limit`]) from the
/// stream, oldest first, as `say` payloads.
async fn history(
    chat: &ChatService,
    socket: &Arc<Socket>,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let room = required(params, "chatroom")?;
    if !socket.in_room(&room) {
        return Err(format!("connection not in this room ({room})"));
    }
    let messages = crate::read_models::chat::last_messages(
        &chat.store,
        &room,
        history_limit(params),
        chat.clock().now(),
    )
    .await
    .map_err(|e| format!("history unavailable: {e}"))?;
    let messages = messages
        .into_iter()
        .map(|m| {
            json!({"message": m.message, "room": m.room, "from": m.from, "context": "user",
                   "sentAt": protocol::unix_ms(m.sent_at)})
        })
        .collect();
    let mut answer = Map::new();
    answer.insert("chatroom".into(), json!(room));
    answer.insert("messages".into(), Value::Array(messages));
    Ok(answer)
}

/// A moderation action of the socket's verified member.
async fn moderate(
    chat: &ChatService,
    socket: &Arc<Socket>,
    action: ModerationAction,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let Some(actor) = chat.sessions.member(socket).await.map(|m| m.member_id) else {
        chat.hub.system(socket, SystemCode::NotLoggedIn);
        return Err(SystemCode::NotLoggedIn.message().to_owned());
    };
    let p = moderation_params(params)?;
    let room = ChatroomName::parse(&p.room).map_err(|e| e.to_string())?;
    let (until, _) = chat
        .moderate(actor.as_str(), &room, &p.target, action, p.seconds)
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Map::new();
    answer.insert("moderated".into(), json!(true));
    answer.insert("action".into(), json!(action));
    answer.insert("memberID".into(), json!(p.target));
    answer.insert("chatroom".into(), json!(p.room));
    if let Some(until) = until {
        answer.insert(
            "until".into(),
            json!(crate::events::cloudevents::format_time(until)),
        );
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_action_names_are_verify_chat_history_and_the_moderations() {
        let name = |n: &str| parse_action_name(&params(json!({"action": n})));
        assert_eq!(name("verify"), Ok(ActionName::Verify));
        assert_eq!(name("chatHistory"), Ok(ActionName::ChatHistory));
        assert_eq!(
            name("grantAdmin"),
            Ok(ActionName::Moderate(ModerationAction::GrantAdmin))
        );
        assert_eq!(
            name("kick"),
            Err("unknown action or invalid apiVersion".into())
        );
        assert_eq!(
            parse_action_name(&params(json!({}))),
            Err("unknown action or invalid apiVersion".into())
        );
    }

    #[test]
    fn a_missing_or_empty_or_non_text_parameter_is_required() {
        let p = params(json!({"memberID": "", "chatroom": 5, "Authorization": "t"}));
        let message = "memberID is a required parameter for this action";
        assert_eq!(required(&p, "memberID"), Err(message.into()));
        assert!(required(&p, "chatroom").is_err());
        assert!(required(&p, "missing").is_err());
        assert_eq!(required(&p, "Authorization"), Ok("t".into()));
    }

    #[test]
    fn the_history_limit_defaults_to_50_and_stays_between_1_and_100() {
        let limit = |v: Value| history_limit(&params(v));
        assert_eq!(limit(json!({})), 50);
        assert_eq!(limit(json!({"limit": "7"})), 50);
        assert_eq!(limit(json!({"limit": 0})), 1);
        assert_eq!(limit(json!({"limit": 7})), 7);
        assert_eq!(limit(json!({"limit": 1000})), 100);
    }

    #[test]
    fn moderation_takes_a_member_a_room_and_whole_seconds() {
        let p = moderation_params(&params(
            json!({"memberID": "amy", "chatroom": "r", "seconds": 60}),
        ));
        assert_eq!(
            p,
            Ok(ModerationParams {
                target: "amy".into(),
                room: "r".into(),
                seconds: Some(60)
            })
        );
        let fractional = moderation_params(&params(
            json!({"memberID": "amy", "chatroom": "r", "seconds": 1.5}),
        ));
        assert_eq!(fractional.unwrap().seconds, None);
        assert_eq!(
            moderation_params(&params(json!({"memberID": "amy"}))),
            Err("chatroom is a required parameter for this action".into())
        );
    }
}
