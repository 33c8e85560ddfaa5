//! `moderate` (the room's streamer or an admin moderates a member, through
//! [`crate::commands::moderation`]), and the answer to any other action name.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::action::{Action, ActionRequest, member_id, require_streamer};
use super::answers::{ModerationAnswer, ModerationResponse, RoomInfoAnswer};
use crate::app::AppState;
use crate::commands::moderation;
use crate::domain::member::{ChatroomName, MemberId, chatroom_name};
use crate::http::api_error::{ApiError, ErrorCode};
use crate::http::envelope::{Envelope, timestamp};
use crate::http::tags::ApiTags;

/// The client gateway's moderation action and its unknown-action answer.
#[derive(Default)]
pub struct ModerationActionsApi;

#[OpenApi(prefix_path = "/api/action", tag = "ApiTags::Gateway")]
impl ModerationActionsApi {
    /// moderate: the room's streamer or an admin bans, unbans, mutes, unmutes, grants or revokes
    /// admin
    ///
    /// `query`: `{"action": "ban" | "unban" | "mute" | "unmute" | "grantAdmin" | "revokeAdmin",
    /// "memberID": "...", "streamerID"?: "..." (default: the caller's own room), "seconds"?: N}`
    /// (`seconds` makes a mute temporary, 1 to 2592000). `Authorization` required. Only the
    /// room's streamer or one of its admins may moderate, only the streamer grants or revokes
    /// admin (403 `FORBIDDEN` otherwise). Every chat instance enforces it within a second; a ban
    /// closes the member's sockets in the room.
    #[oai(path = "/moderate", method = "post", operation_id = "moderate")]
    async fn moderate(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<ModerationResponse, ApiError> {
        let action = Action::parse(body.0)?;
        let claims = action.member(&state).await?;
        let name = action.query.text("action")?;
        let Some(kind) = moderation::parse_action(&name) else {
            return Err(ApiError::validation(
                "query.action must be one of ban, unban, mute, unmute, grantAdmin, revokeAdmin",
            ));
        };
        let target = member_id(&action.query, "memberID")?;
        let streamer = match action.query.optional_text("streamerID")? {
            Some(raw) => MemberId::parse(&raw, "streamerID")
                .map_err(|e| ApiError::validation(format!("query.{e}")))?,
            None => MemberId::parse(&claims.sub, "streamerID")?,
        };
        let seconds = match action.query.optional_integer("seconds")? {
            Some(s) if s < 1 => {
                return Err(ApiError::validation("query.seconds must be at least 1"));
            }
            other => other.map(|s| s as u64),
        };
        require_streamer(&state, &streamer).await?;
        let room = ChatroomName::parse(&chatroom_name(streamer.agent_id(), &streamer))
            .map_err(|e| ApiError::validation(e.to_string()))?;
        let room_moderation = state.chat.room_moderation(room.as_str());
        let moderation::Moderated { until, sequence } = moderation::moderate(
            &state.store,
            state.clock.now(),
            moderation::Moderate {
                actor: &claims.sub,
                room: &room,
                target: target.as_str(),
                action: kind,
                seconds,
                moderation: &room_moderation,
            },
        )
        .await?;
        Ok(ModerationResponse::Ok(
            Json(Envelope::ok(ModerationAnswer {
                action: name,
                member_id: target.to_string(),
                chatroom: room.to_string(),
                until: until.map(timestamp),
            })),
            sequence,
        ))
    }

    /// Any other action name: 404 `UNKNOWN_ACTION`
    #[oai(
        path = "/:action_name",
        method = "post",
        operation_id = "unknownAction"
    )]
    async fn unknown_action(
        &self,
        action_name: Path<String>,
    ) -> Result<Json<Envelope<RoomInfoAnswer>>, ApiError> {
        Err(ApiError::coded(
            ErrorCode::UnknownAction,
            format!(
                "unknown action {:?}; actions: loginAction, loginStreamer, getRoomInfo, \
                 setRoomInfo, getRankingRoomList, follow, unfollow, startStream, endStream, sendGift, \
                 moderate",
                action_name.0
            ),
        ))
    }
}
