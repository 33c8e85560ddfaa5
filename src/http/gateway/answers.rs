//! The client gateway's answers: one shape per action, and the write answers that carry
//! `X-Event-Sequence`.

use poem_openapi::Object;

use crate::http::common::write_response;
use crate::http::views::MemberView;

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
