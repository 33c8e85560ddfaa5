//! The client gateway (seeds/gateway-chat.md "Client Gateway"): `POST /api/action/{actionName}`
//! with `{"query": "<JSON text>", "Authorization": "<member token>"}`. Each action has its own
//! route so the spec documents its `query` and answer; any other name is 404 `UNKNOWN_ACTION`.
//!
//! The member token may also sit inside `query` (the seed's `sendGift` example). No API key: front
//! ends call these routes as members. A `query` that is not a JSON object, or misses or mistypes a
//! field, is 400 `VALIDATION_ERROR` naming the field (`query.giftID is required`), and nothing is
//! published. Writes answer after JetStream's ack, with `X-Event-Sequence`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use time::OffsetDateTime;
use uuid::Uuid;

use super::action_query::ActionQuery;
use super::api_error::ApiError;
use super::envelope::{Envelope, timestamp};
use super::field::Checked;
use super::{ApiTags, AppState, write_response};
use crate::commands::{gift_catalog, members, rooms};
use crate::domain::member::{MemberId, Role, chatroom_name};
use crate::domain::room::{self, MAX_ANNOUNCEMENT_CHARS, MAX_TITLE_CHARS};
use crate::event_store::NewEvent;
use crate::events::{Event, EventEnvelope, GiftSent, MemberLoggedIn, MemberProfile, RoomInfoSet};
use crate::read_models::rooms::{self as room_queries, RoomRow};
use crate::records::member_auth::MemberClaims;

/// Body of every action.
#[derive(Object, Debug)]
pub struct ActionRequest {
    /// The action's parameters: the **text** of a JSON object (see each action), e.g.
    /// `"{\"giftID\":1,\"giftCount\":1}"`.
    pub query: Checked<String>,
    /// The member token from `loginAction` / `loginStreamer` (bare or `Bearer <token>`); may also
    /// be given inside `query` as `Authorization`.
    #[oai(rename = "Authorization")]
    pub authorization: Option<String>,
}

/// A member's public profile.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct MemberView {
    /// `account@agent.masterAgent`.
    #[oai(rename = "memberID")]
    pub member_id: String,
    /// `member` or `streamer`.
    pub role: String,
    /// Display name, 1 to 50 characters.
    pub nickname: String,
    /// Avatar URL; empty when none.
    pub avatar: String,
    /// VIP level, free text; empty when none.
    pub vip: String,
    /// Badge shown in chat (the seed's `equipmentBar`); empty when none.
    pub equipment_bar: String,
    /// The seed's `accountID`; by default the account part of `memberID`.
    #[oai(rename = "accountID")]
    pub account_id: String,
}

impl From<MemberProfile> for MemberView {
    fn from(p: MemberProfile) -> Self {
        Self {
            member_id: p.member_id,
            role: p.role.as_str().to_owned(),
            nickname: p.nickname,
            avatar: p.avatar,
            vip: p.vip,
            equipment_bar: p.equipment_bar,
            account_id: p.account_id,
        }
    }
}

/// Answer of `loginAction` and `loginStreamer`.
#[derive(Object, Debug)]
pub struct LoginAnswer {
    /// The member token: send it as `Authorization` with later actions and to the chat's `verify`.
    #[oai(rename = "Authorization")]
    pub authorization: String,
    /// When it expires (RFC 3339, UTC); log in again after.
    #[oai(rename = "expiresAt")]
    pub expires_at: String,
    /// The member's public profile.
    pub member: MemberView,
}

/// One entry of a gift ranking.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RankingItem {
    /// The giver's member id (the seed's `giftRank` spells it `memberId`).
    pub member_id: String,
    /// The giver's nickname when they last sent a gift.
    pub nick_name: String,
    /// 1-based.
    pub rank: u32,
    /// Points × count of every gift in the ranking's scope.
    pub score: i64,
}

/// A room (`getRoomInfo`, and each entry of `getRankingRoomList`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RoomInfo {
    /// The streamer's member id.
    #[oai(rename = "streamerID")]
    pub streamer_id: String,
    /// The streamer's agent, `agent.masterAgent`.
    #[oai(rename = "agentID")]
    pub agent_id: String,
    /// The chat room: `chatroomSystem-chatroom-{agentID}-{streamerID}`.
    pub room: String,
    /// The streamer's nickname.
    pub nickname: String,
    /// The streamer's avatar URL; empty when none.
    pub avatar: String,
    /// Room title, at most 100 characters; empty when none.
    pub title: String,
    /// Room announcement, at most 1000 characters; empty when none.
    pub announcement: String,
    /// Cover image URL (empty: none).
    pub cover: String,
    /// Whether the streamer is live (`startStream` / `endStream`).
    pub is_live: bool,
    /// When the live session started (RFC 3339, UTC), while live.
    #[oai(nullable)]
    pub live_since: Option<String>,
    /// Verified members in the room's chat now, each once however many sockets (guests are not
    /// counted).
    pub viewer_count: i32,
    /// src/domain/popularity.rs: `10 × viewers + gift points + 2 × chat messages` over 5 minutes.
    pub popularity: i64,
    /// Members following the streamer.
    pub followers: i64,
    /// Whether the caller follows this streamer (only when an `Authorization` was given).
    #[oai(nullable)]
    pub is_following: Option<bool>,
    /// The live session's top 10 givers (`getRoomInfo` only; empty in lists).
    pub gift_ranking: Vec<RankingItem>,
}

/// Answer of `getRankingRoomList`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RoomList {
    /// Live rooms, most popular first.
    pub list: Vec<RoomInfo>,
    /// Live rooms in all.
    pub total: i64,
    /// The page, from 1.
    pub page: i64,
    /// Rooms per page, 1 to 100.
    pub page_limit: i64,
}

/// Answer of `setRoomInfo`: the room's info as it is now.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RoomInfoAnswer {
    /// The streamer whose room it is (the token's member).
    #[oai(rename = "streamerID")]
    pub streamer_id: String,
    /// Room title, at most 100 characters.
    pub title: String,
    /// Room announcement, at most 1000 characters.
    pub announcement: String,
    /// Cover image URL (`http://` or `https://`); empty: none.
    pub cover: String,
}

/// Answer of `follow` and `unfollow`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct FollowAnswer {
    /// The streamer followed or unfollowed.
    #[oai(rename = "streamerID")]
    pub streamer_id: String,
    /// The follower: the token's member.
    #[oai(rename = "memberID")]
    pub member_id: String,
    /// Whether the member follows the streamer now.
    pub following: bool,
}

/// Answer of `startStream` and `endStream`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StreamAnswer {
    /// The streamer: the token's member.
    #[oai(rename = "streamerID")]
    pub streamer_id: String,
    /// `start` or `done` (the seed's `streamStatus`).
    pub status: String,
    /// The live session that started or ended.
    #[oai(rename = "sessionID")]
    pub session_id: String,
}

/// Answer of `sendGift`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GiftAnswer {
    /// The gift record's id (the event id), as `getGiftRecord` lists it.
    #[oai(rename = "recordID")]
    pub record_id: String,
    /// The gift's catalog id.
    #[oai(rename = "giftID")]
    pub gift_id: i64,
    /// The gift's catalog name when sent.
    pub gift_name: String,
    /// How many were sent, 1 to 9999.
    pub gift_count: u32,
    /// Points per gift.
    pub points: u32,
    /// `points × giftCount`.
    pub score: u64,
    /// The sender: the token's member.
    #[oai(rename = "memberID")]
    pub member_id: String,
    /// The streamer.
    #[oai(rename = "gameID")]
    pub game_id: String,
    /// The streamer's agent, `agent.masterAgent`.
    #[oai(rename = "agentID")]
    pub agent_id: String,
    /// RFC 3339, UTC.
    pub sent_at: String,
}

/// Answer of `moderate`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ModerationAnswer {
    /// The moderation as given: `ban`, `unban`, `mute`, `unmute`, `grantAdmin` or
    /// `revokeAdmin`.
    pub action: String,
    /// The member moderated.
    #[oai(rename = "memberID")]
    pub member_id: String,
    /// The room: `chatroomSystem-chatroom-{agentID}-{streamerID}`.
    pub chatroom: String,
    /// End of a temporary mute (RFC 3339, UTC).
    #[oai(nullable)]
    pub until: Option<String>,
}

write_response!(
    LoginResponse,
    LoginAnswer,
    "Logged in; `X-Event-Sequence` is the sequence of `member.logged_in`."
);
write_response!(
    RoomInfoResponse,
    RoomInfoAnswer,
    "Stored; `X-Event-Sequence` is the sequence of `room.info_set`."
);
write_response!(
    FollowResponse,
    FollowAnswer,
    "Stored; `X-Event-Sequence` is the sequence of `follow.followed` / `follow.unfollowed`."
);
write_response!(
    StreamResponse,
    StreamAnswer,
    "Stored; `X-Event-Sequence` is the sequence of `broadcast.started` / `broadcast.ended`."
);
write_response!(
    ModerationResponse,
    ModerationAnswer,
    "Stored; `X-Event-Sequence` is the sequence of `moderation.member_moderated`."
);
write_response!(
    GiftResponse,
    GiftAnswer,
    "Sent; `X-Event-Sequence` is the sequence of `gift.sent`."
);

/// The answer of a stored `gift.sent`.
fn gift_answer(id: Uuid, sequence: u64, e: &GiftSent, sent_at: OffsetDateTime) -> GiftResponse {
    GiftResponse::Ok(
        Json(Envelope::ok(GiftAnswer {
            record_id: id.to_string(),
            gift_id: e.gift_id,
            gift_name: e.gift_name.clone(),
            gift_count: e.count,
            points: e.points,
            score: u64::from(e.points) * u64::from(e.count),
            member_id: e.presenter.clone(),
            game_id: e.recipient.clone(),
            agent_id: e.agent_id.clone(),
            sent_at: timestamp(sent_at),
        })),
        sequence,
    )
}

/// The first answer of a gift sent again with its `Idempotency-Key`, read from the stream; 422
/// `IDEMPOTENCY_KEY_REUSED` when the key was used for another gift, count or streamer.
async fn sent_gift_again(
    state: &AppState,
    sequence: u64,
    gift_id: i64,
    count: u32,
    streamer: &MemberId,
) -> Result<GiftResponse, ApiError> {
    let stored = state.store.get(sequence).await?;
    match stored {
        Some(EventEnvelope {
            id,
            occurred_at,
            event: Event::GiftSent(e),
            ..
        }) if e.gift_id == gift_id && e.count == count && e.recipient == streamer.as_str() => {
            Ok(gift_answer(id, sequence, &e, occurred_at))
        }
        _ => Err(ApiError::coded(
            422,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used for another gift, count or streamer",
        )),
    }
}

/// The parsed body: the query and the token wherever it was given.
struct Action {
    query: ActionQuery,
    authorization: Option<String>,
}

impl Action {
    fn parse(body: ActionRequest) -> Result<Self, ApiError> {
        let query = ActionQuery::parse(&body.query.get("query")?)?;
        let authorization = match body.authorization.filter(|a| !a.trim().is_empty()) {
            Some(a) => Some(a),
            None => query.optional_text("Authorization")?,
        };
        Ok(Self {
            query,
            authorization,
        })
    }

    /// The caller's verified claims (401 `UNAUTHORIZED`, `TOKEN_INVALID`, `TOKEN_EXPIRED`).
    async fn member(&self, state: &AppState) -> Result<MemberClaims, ApiError> {
        Ok(state
            .member_tokens
            .verify_current(&state.db, self.authorization.as_deref())
            .await?)
    }

    /// The caller's claims, which must be a streamer's (403 `FORBIDDEN` otherwise).
    async fn streamer(&self, state: &AppState) -> Result<MemberClaims, ApiError> {
        let claims = self.member(state).await?;
        if claims.role != Role::Streamer {
            return Err(ApiError::forbidden("only a streamer may use this action"));
        }
        Ok(claims)
    }
}

fn member_id(query: &ActionQuery, field: &'static str) -> Result<MemberId, ApiError> {
    let raw = query.text(field)?;
    MemberId::parse(&raw, field).map_err(|e| ApiError::validation(format!("query.{e}")))
}

/// A registered streamer, or 404 `STREAMER_NOT_FOUND`.
async fn require_streamer(state: &AppState, id: &MemberId) -> Result<RoomRow, ApiError> {
    room_queries::room(&state.db, id.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::coded(
                404,
                "STREAMER_NOT_FOUND",
                format!("streamer {id} not found"),
            )
        })
}

fn room_info(row: RoomRow, is_following: Option<bool>, ranking: Vec<RankingItem>) -> RoomInfo {
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

/// Client actions.
#[derive(Default)]
pub struct GatewayApi;

#[OpenApi(prefix_path = "/api/action", tag = "ApiTags::Gateway")]
impl GatewayApi {
    /// loginAction: a member logs in
    ///
    /// `query`: `{"memberID": "account@agent.masterAgent", "password": "..."}`. Members only
    /// (streamers use `loginStreamer`). Unknown member or wrong password: 401 `LOGIN_FAILED`.
    /// More than 10 attempts per minute for one `memberID`: 429 `TOO_MANY_REQUESTS`.
    #[oai(path = "/loginAction", method = "post", operation_id = "loginAction")]
    async fn login_action(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<LoginResponse, ApiError> {
        login(&state, body.0, Role::Member).await
    }

    /// loginStreamer: a streamer logs in
    ///
    /// `query`: `{"memberID": "account@agent.masterAgent", "password": "..."}`. Streamers only.
    /// Unknown streamer or wrong password: 401 `LOGIN_FAILED`. More than 10 attempts per minute
    /// for one `memberID`: 429 `TOO_MANY_REQUESTS`.
    #[oai(
        path = "/loginStreamer",
        method = "post",
        operation_id = "loginStreamer"
    )]
    async fn login_streamer(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<LoginResponse, ApiError> {
        login(&state, body.0, Role::Streamer).await
    }

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
        Ok(Json(Envelope::ok(room_info(row, is_following, ranking))))
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
        if let Some(other) = action.query.optional_text("streamerID")?
            && other != claims.sub
        {
            return Err(ApiError::forbidden(
                "a streamer may only set their own room's info",
            ));
        }
        let title = action.query.optional_text("title")?;
        let announcement = action.query.optional_text("announcement")?;
        let cover = action.query.optional_text("cover")?;
        if title.is_none() && announcement.is_none() && cover.is_none() {
            return Err(ApiError::validation(
                "query must set at least one of title, announcement, cover",
            ));
        }
        let streamer = MemberId::parse(&claims.sub, "streamerID")?;
        let current = require_streamer(&state, &streamer).await?;
        let event = RoomInfoSet {
            streamer: claims.sub.clone(),
            title: title.unwrap_or(current.title),
            announcement: announcement.unwrap_or(current.announcement),
            cover: cover.unwrap_or(current.cover),
        };
        room::check_text(&event.title, "query.title", MAX_TITLE_CHARS)?;
        room::check_text(
            &event.announcement,
            "query.announcement",
            MAX_ANNOUNCEMENT_CHARS,
        )?;
        room::check_cover(&event.cover, "query.cover")?;
        let published = state
            .store
            .publish(NewEvent::new(
                OffsetDateTime::now_utc(),
                Event::RoomInfoSet(event.clone()),
            ))
            .await?;
        Ok(RoomInfoResponse::Ok(
            Json(Envelope::ok(RoomInfoAnswer {
                streamer_id: event.streamer,
                title: event.title,
                announcement: event.announcement,
                cover: event.cover,
            })),
            published.sequence,
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
                .map(|r| room_info(r, None, Vec::new()))
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
            rooms::start_stream(&state.store, &claims.sub, OffsetDateTime::now_utc()).await?;
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
            rooms::end_stream(&state.store, &claims.sub, OffsetDateTime::now_utc()).await?;
        Ok(StreamResponse::Ok(
            Json(Envelope::ok(StreamAnswer {
                streamer_id: claims.sub,
                status: "done".into(),
                session_id: session.to_string(),
            })),
            published.sequence,
        ))
    }

    /// sendGift: a member sends gifts to a streamer
    ///
    /// `query` (seeds/gateway-chat.md): `{"giftID": 1, "giftCount": 1, "memberID":
    /// "member@agent.masterAgent", "gameID": "streamer@agent.masterAgent", "agentID":
    /// "agent.masterAgent", "Authorization"?: "..."}`. `memberID` must be the token's member (403
    /// `FORBIDDEN` otherwise); `giftCount` 1 to 9999; `agentID` the streamer's agent; the gift must
    /// exist and be enabled (404 `GIFT_NOT_FOUND`); the streamer must exist (404
    /// `STREAMER_NOT_FOUND`); the sender's member record must exist (404
    /// `MEMBER_NOT_FOUND`). The room gets `gift` and `giftRank` chat messages.
    ///
    /// With an `Idempotency-Key` header (1 to 255 visible ASCII characters, scoped to the member),
    /// a retry sends the gift once and gets the first answer again (same `recordID` and
    /// `X-Event-Sequence`), whenever it comes; the same key with another gift, count or streamer
    /// answers 422 `IDEMPOTENCY_KEY_REUSED`.
    #[oai(path = "/sendGift", method = "post", operation_id = "sendGift")]
    async fn send_gift(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
        /// Optional idempotency key: a retry with the same key sends the gift once.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Result<GiftResponse, ApiError> {
        let action = Action::parse(body.0)?;
        let q = &action.query;
        let gift_id = q.integer("giftID")?;
        let count = room::check_gift_count(q.integer("giftCount")?)
            .map_err(|e| ApiError::validation(format!("query.{e}")))?;
        let presenter = member_id(q, "memberID")?;
        let streamer = member_id(q, "gameID")?;
        let agent_id = q.text("agentID")?;
        let claims = action.member(&state).await?;
        if claims.sub != presenter.as_str() {
            return Err(ApiError::forbidden(
                "memberID differs from the member of the Authorization token",
            ));
        }
        if presenter == streamer {
            return Err(ApiError::validation(
                "query.gameID: a member cannot send gifts to themselves",
            ));
        }
        if agent_id != streamer.agent_id().as_str() {
            return Err(ApiError::validation(format!(
                "query.agentID must be the streamer's agent {}, got {agent_id:?}",
                streamer.agent_id()
            )));
        }
        let event_id = super::scoped_idempotency_event_id(
            presenter.as_str(),
            "sendGift",
            idempotency_key.0.as_deref(),
        )?;
        // A retry of a gift already projected (any time later) gets its first answer.
        if let Some(id) = event_id {
            let recorded: Option<(i64,)> =
                sqlx::query_as("SELECT sequence FROM rm_gift_records WHERE event_id = $1")
                    .bind(id)
                    .fetch_optional(&state.db)
                    .await?;
            if let Some((sequence,)) = recorded {
                return sent_gift_again(&state, sequence as u64, gift_id, count, &streamer).await;
            }
        }
        require_streamer(&state, &streamer).await?;
        let gift = gift_catalog::get(&state.db, gift_id)
            .await?
            .filter(|g| g.enabled)
            .ok_or_else(|| {
                ApiError::coded(404, "GIFT_NOT_FOUND", format!("gift {gift_id} not found"))
            })?;
        let sender = members::find(&state.db, presenter.as_str())
            .await?
            .ok_or_else(|| {
                ApiError::coded(
                    404,
                    "MEMBER_NOT_FOUND",
                    format!("member {presenter} not found"),
                )
            })?;
        let (broadcast, _) = rooms::broadcast_state(&state.store, streamer.as_str()).await?;
        let session_id = match broadcast {
            room::BroadcastState::Live { session_id } => Some(session_id),
            room::BroadcastState::Offline => None,
        };
        let now = OffsetDateTime::now_utc();
        let points = gift.points as u32;
        let event = GiftSent {
            gift_id,
            gift_name: gift.name.clone(),
            anime_url: gift.anime_url.clone(),
            points,
            count,
            score: u64::from(points) * u64::from(count),
            presenter: presenter.to_string(),
            presenter_nickname: sender.nickname,
            recipient: streamer.to_string(),
            agent_id: agent_id.clone(),
            session_id,
        };
        let mut new = NewEvent::new(now, Event::GiftSent(event.clone()));
        if let Some(id) = event_id {
            new = new.with_id(id);
        }
        let published = state.store.publish(new).await?;
        if published.duplicate {
            // A retry within JetStream's duplicate window, before the projection has the record.
            return sent_gift_again(&state, published.sequence, gift_id, count, &streamer).await;
        }
        Ok(gift_answer(published.id, published.sequence, &event, now))
    }

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
        let Some(kind) = crate::chat::service::parse_action(&name) else {
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
        let room = chatroom_name(streamer.agent_id(), &streamer);
        use crate::chat::service::ModerateError;
        use crate::domain::chat::ModerationError;
        let until = state
            .chat
            .moderate(&claims.sub, &room, target.as_str(), kind, seconds)
            .await
            .map_err(|e| match e {
                ModerateError::Invalid(m) => ApiError::validation(m),
                ModerateError::Rule(ModerationError::Duration) => {
                    ApiError::validation(format!("query.{}", ModerationError::Duration))
                }
                ModerateError::Rule(rule) => ApiError::forbidden(rule.to_string()),
                ModerateError::Store(s) => s.into(),
            })?;
        let (until, sequence) = until;
        Ok(ModerationResponse::Ok(
            Json(Envelope::ok(ModerationAnswer {
                action: name,
                member_id: target.to_string(),
                chatroom: room,
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
            404,
            "UNKNOWN_ACTION",
            format!(
                "unknown action {:?}; actions: loginAction, loginStreamer, getRoomInfo, \
                 setRoomInfo, getRankingRoomList, follow, unfollow, startStream, endStream, sendGift, \
                 moderate",
                action_name.0
            ),
        ))
    }
}

async fn login(
    state: &AppState,
    body: ActionRequest,
    role: Role,
) -> Result<LoginResponse, ApiError> {
    let action = Action::parse(body)?;
    let id = member_id(&action.query, "memberID")?;
    let password = action.query.text("password")?;
    check_login_rate(state, &id).await?;
    let failed = || ApiError::coded(401, "LOGIN_FAILED", "wrong memberID or password");
    let record = members::find(&state.db, id.as_str()).await?;
    let Some(record) = record else {
        // Spend the same time as a real check, so timing does not tell which members exist.
        let _ = members::verify_password(state.dummy_password_hash.clone(), password).await;
        return Err(failed());
    };
    if !members::verify_password(record.password_hash.clone(), password).await {
        return Err(failed());
    }
    if record.role() != role {
        return Err(ApiError::forbidden(match role {
            Role::Member => "this account is a streamer: log in with loginStreamer",
            Role::Streamer => "this account is not a streamer: log in with loginAction",
        }));
    }
    let now = OffsetDateTime::now_utc();
    let issued = state
        .member_tokens
        .issue(id.as_str(), role, record.token_version, now);
    let published = state
        .store
        .publish(NewEvent::new(
            now,
            Event::MemberLoggedIn(MemberLoggedIn {
                member_id: id.to_string(),
                role,
                token_id: issued.claims.jti,
            }),
        ))
        .await?;
    Ok(LoginResponse::Ok(
        Json(Envelope::ok(LoginAnswer {
            authorization: issued.token,
            expires_at: timestamp(issued.expires_at),
            member: record.profile().into(),
        })),
        published.sequence,
    ))
}

/// Login attempts allowed per member id per minute (also the burst), whatever their outcome: a
/// password cannot be guessed faster than this from any number of clients and instances.
pub const LOGIN_ATTEMPTS_PER_MINUTE: i32 = 10;

/// Counts a login attempt for `id` (GCRA in Postgres, src/rate_limit.rs); over the limit: 429
/// `TOO_MANY_REQUESTS`. Fails open if Postgres cannot be asked, like every rate limit here.
async fn check_login_rate(state: &AppState, id: &MemberId) -> Result<(), ApiError> {
    let bucket = crate::events::id::derived_event_id(&["login-attempts", id.as_str()]);
    match crate::records::rate_limit::check(&state.db, bucket, LOGIN_ATTEMPTS_PER_MINUTE).await {
        Ok(decision) if !decision.allowed => {
            let retry_after = decision.retry_after_secs.unwrap_or(1);
            Err(ApiError::too_many_requests(
                format!("too many login attempts for {id}; try again in {retry_after} s"),
                None,
                Some(retry_after),
            ))
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "login rate check failed; allowing the attempt");
            Ok(())
        }
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
        OffsetDateTime::now_utc(),
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
