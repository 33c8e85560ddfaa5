//! The room actions: a room's info and the live room list (read models), setting the room's info
//! ([`crate::commands::room_info`]), follows and live sessions ([`crate::commands::rooms`]).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use super::action::{Action, ActionRequest, member_id, require_streamer};
use super::answers::{
    FollowAnswer, FollowResponse, RankingItem, RoomInfo, RoomInfoAnswer, RoomInfoResponse,
    RoomList, StreamAnswer, StreamResponse,
};
use crate::app::AppState;
use crate::commands::{room_info, rooms};
use crate::domain::member::{MemberId, chatroom_name};
use crate::domain::room_info::RoomInfoChange;
use crate::http::api_error::ApiError;
use crate::http::envelope::{Envelope, timestamp};
use crate::http::tags::ApiTags;
use crate::read_models::rooms::{self as room_queries, RoomRow};

/// The client gateway's room actions.
#[derive(Default)]
pub struct RoomActionsApi;

#[OpenApi(prefix_path = "/api/action", tag = "ApiTags::Gateway")]
impl RoomActionsApi {
    /// getRoomInfo: a streamer's room
    ///
    /// `query`: `{"streamerID": "account@agent.masterAgent"}`. `Authorization` is optional; with
    /// it, `isFollowing` tells whether the caller follows the streamer. Unknown streamer: 404
    /// `STREAMER_NOT_FOUND`.
    #[oai(path = "/getRoomInfo", method = "post", operation_id = "getRoomInfo")]
    async fn get_room_info(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<Json<Envelope<RoomInfo>>, ApiError> {
        let action = Action::parse(body.0)?;
        let streamer = member_id(&action.query, "streamerID")?;
        let caller = match &action.authorization {
            Some(_) => Some(action.member(&state).await?),
            None => None,
        };
        let row = require_streamer(&state, &streamer).await?;
        let is_following = match caller {
            Some(c) => {
                Some(room_queries::is_following(&state.db, &c.sub, streamer.as_str()).await?)
            }
            None => None,
        };
        let ranking = room_queries::ranking(&state.db, streamer.as_str(), "session", 10)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, r)| RankingItem {
                member_id: r.member_id,
                nick_name: r.nickname,
                rank: i as u32 + 1,
                score: r.score,
            })
            .collect();
        Ok(Json(Envelope::ok(room_view(row, is_following, ranking))))
    }

    /// setRoomInfo: the streamer sets their room's title, announcement or cover
    ///
    /// `query`: `{"title"?: "...", "announcement"?: "...", "cover"?: "https://..."}` (at least one;
    /// absent fields keep their value). Streamer `Authorization` required; the room is the
    /// token's streamer (a `streamerID` naming another room is 403 `FORBIDDEN`). Limits: title 100
    /// characters, announcement 1000, cover an http(s) URL.
    #[oai(path = "/setRoomInfo", method = "post", operation_id = "setRoomInfo")]
    async fn set_room_info(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<RoomInfoResponse, ApiError> {
        let action = Action::parse(body.0)?;
        let claims = action.streamer(&state).await?;
        let named_room = action.query.optional_text("streamerID")?;
        let change = RoomInfoChange {
            title: action.query.optional_text("title")?,
            announcement: action.query.optional_text("announcement")?,
            cover: action.query.optional_text("cover")?,
        };
        let streamer = MemberId::parse(&claims.sub, "streamerID")?;
        let (info, sequence) = room_info::set_room_info(
            &state.db,
            &state.store,
            &streamer,
            named_room.as_deref(),
            change,
            state.clock.now(),
        )
        .await?;
        Ok(RoomInfoResponse::Ok(
            Json(Envelope::ok(RoomInfoAnswer {
                streamer_id: info.streamer,
                title: info.title,
                announcement: info.announcement,
                cover: info.cover,
            })),
            sequence,
        ))
    }

    /// getRankingRoomList: live rooms, most popular first
    ///
    /// `query`: `{"page"?: 1, "pageLimit"?: 20}` (page from 1; pageLimit 1 to 100, default 20).
    /// No `Authorization` needed.
    #[oai(
        path = "/getRankingRoomList",
        method = "post",
        operation_id = "getRankingRoomList"
    )]
    async fn get_ranking_room_list(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<Json<Envelope<RoomList>>, ApiError> {
        let action = Action::parse(body.0)?;
        let page = action.query.optional_integer("page")?.unwrap_or(1);
        let page_limit = match action.query.optional_integer("pageLimit")? {
            Some(n) => n,
            None => action.query.optional_integer("pagelimit")?.unwrap_or(20),
        };
        if page < 1 {
            return Err(ApiError::validation("query.page must be at least 1"));
        }
        if !(1..=100).contains(&page_limit) {
            return Err(ApiError::validation(
                "query.pageLimit must be between 1 and 100",
            ));
        }
        let (rows, total) =
            room_queries::live_rooms(&state.db, (page - 1).saturating_mul(page_limit), page_limit)
                .await?;
        Ok(Json(Envelope::ok(RoomList {
            list: rows
                .into_iter()
                .map(|r| room_view(r, None, Vec::new()))
                .collect(),
            total,
            page,
            page_limit,
        })))
    }

    /// follow: the member follows a streamer
    ///
    /// `query`: `{"streamerID": "account@agent.masterAgent"}`. `Authorization` required. Already
    /// following: 409 `ALREADY_FOLLOWING`; following oneself: 400. The streamer's room gets a
    /// `follow` chat message.
    #[oai(path = "/follow", method = "post", operation_id = "follow")]
    async fn follow(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<FollowResponse, ApiError> {
        set_following(&state, body.0, true).await
    }

    /// unfollow: the member stops following a streamer
    ///
    /// `query`: `{"streamerID": "account@agent.masterAgent"}`. `Authorization` required. Not
    /// following: 409 `NOT_FOLLOWING`.
    #[oai(path = "/unfollow", method = "post", operation_id = "unfollow")]
    async fn unfollow(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<FollowResponse, ApiError> {
        set_following(&state, body.0, false).await
    }

    /// startStream: the streamer goes live
    ///
    /// `query`: `{}`. Streamer `Authorization` required. Starts a live session (the session gift
    /// ranking starts empty); the room gets `streamStatus` `start`, every follower `sub` `start`.
    /// Already live: 409 `ALREADY_LIVE`.
    #[oai(path = "/startStream", method = "post", operation_id = "startStream")]
    async fn start_stream(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<StreamResponse, ApiError> {
        let action = Action::parse(body.0)?;
        let claims = action.streamer(&state).await?;
        let (published, session) =
            rooms::start_stream(&state.store, &claims.sub, state.clock.now()).await?;
        Ok(StreamResponse::Ok(
            Json(Envelope::ok(StreamAnswer {
                streamer_id: claims.sub,
                status: "start".into(),
                session_id: session.to_string(),
            })),
            published.sequence,
        ))
    }

    /// endStream: the streamer ends the live session
    ///
    /// `query`: `{}`. Streamer `Authorization` required. The room gets `streamStatus` `done`, every
    /// follower `sub` `done`. Not live: 409 `NOT_LIVE`.
    #[oai(path = "/endStream", method = "post", operation_id = "endStream")]
    async fn end_stream(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<StreamResponse, ApiError> {
        let action = Action::parse(body.0)?;
        let claims = action.streamer(&state).await?;
        let (published, session) =
            rooms::end_stream(&state.store, &claims.sub, state.clock.now()).await?;
        Ok(StreamResponse::Ok(
            Json(Envelope::ok(StreamAnswer {
                streamer_id: claims.sub,
                status: "done".into(),
                session_id: session.to_string(),
            })),
            published.sequence,
        ))
    }
}

fn room_view(row: RoomRow, is_following: Option<bool>, ranking: Vec<RankingItem>) -> RoomInfo {
    let room = MemberId::parse(&row.streamer_id, "streamerID")
        .map(|id| chatroom_name(id.agent_id(), &id))
        .unwrap_or_default();
    RoomInfo {
        room,
        streamer_id: row.streamer_id,
        agent_id: row.agent_id,
        nickname: row.nickname,
        avatar: row.avatar,
        title: row.title,
        announcement: row.announcement,
        cover: row.cover,
        is_live: row.is_live,
        live_since: row.live_since.map(timestamp),
        viewer_count: row.viewers,
        popularity: row.popularity,
        followers: row.followers,
        is_following,
        gift_ranking: ranking,
    }
}

async fn set_following(
    state: &AppState,
    body: ActionRequest,
    follow: bool,
) -> Result<FollowResponse, ApiError> {
    let action = Action::parse(body)?;
    let streamer = member_id(&action.query, "streamerID")?;
    let claims = action.member(state).await?;
    require_streamer(state, &streamer).await?;
    let published = rooms::set_following(
        &state.store,
        &claims.sub,
        streamer.as_str(),
        follow,
        state.clock.now(),
    )
    .await?;
    Ok(FollowResponse::Ok(
        Json(Envelope::ok(FollowAnswer {
            streamer_id: streamer.to_string(),
            member_id: claims.sub,
            following: follow,
        })),
        published.sequence,
    ))
}
