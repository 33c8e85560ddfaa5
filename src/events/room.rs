//! Events of members, rooms, follows and gifts (seeds/gateway-chat.md; DESIGN.md §3). Member ids are
//! `account@agent.masterAgent`; times are the events' `ce-time` unless a field says otherwise.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::member::Role;

/// A member's public profile (seeds/gateway-chat.md `joinRoom`: nickname, accountID, avatar,
/// equipmentBar, vip, role). Never carries the password or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberProfile {
    pub member_id: String,
    pub role: Role,
    pub nickname: String,
    pub avatar: String,
    pub vip: String,
    pub equipment_bar: String,
    #[serde(rename = "accountID")]
    pub account_id: String,
}

/// The back office (or `onair member create`) registered a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberRegistered {
    #[serde(flatten)]
    pub profile: MemberProfile,
}

/// The back office edited a member (`EditMember`); the profile as it is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberEdited {
    #[serde(flatten)]
    pub profile: MemberProfile,
    /// Whether the password was changed (the hash itself is never published).
    pub password_changed: bool,
}

/// A member or streamer logged in (`loginAction` / `loginStreamer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberLoggedIn {
    pub member_id: String,
    pub role: Role,
    /// The token's id (`jti`), so an audit can tie actions to a login.
    pub token_id: Uuid,
}

/// The back office created or changed a gift of the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftDefined {
    #[serde(rename = "giftID")]
    pub gift_id: i64,
    pub name: String,
    /// Ranking points per gift.
    pub points: u32,
    pub anime_url: String,
    pub enabled: bool,
}

/// A streamer set their room's info (`setRoomInfo`); the fields as they are now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfoSet {
    pub streamer: String,
    pub title: String,
    pub announcement: String,
    pub cover: String,
}

/// A streamer went live (`startStream`); a new live session begins (the session gift ranking
/// starts empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastStarted {
    pub streamer: String,
    pub session_id: Uuid,
}

/// A streamer ended the stream (`endStream`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastEnded {
    pub streamer: String,
    pub session_id: Uuid,
}

/// A member followed a streamer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamerFollowed {
    pub streamer: String,
    pub follower: String,
}

/// A member stopped following a streamer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamerUnfollowed {
    pub streamer: String,
    pub follower: String,
}

/// A member sent gifts to a streamer (`sendGift`). The catalog entry is copied in (name, points,
/// animation), so gift records and rankings never depend on the catalog's later state.
/// Version 2 adds `score`; version 1 events are upcast on read ([`GiftSentV1::upcast`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftSent {
    #[serde(rename = "giftID")]
    pub gift_id: i64,
    pub gift_name: String,
    pub anime_url: String,
    /// Points per gift, from the catalog when sent.
    pub points: u32,
    /// How many (1 to 9999).
    pub count: u32,
    /// `points × count`: what the gift adds to the presenter's ranking score (v2).
    pub score: u64,
    /// The sender's member id.
    pub presenter: String,
    pub presenter_nickname: String,
    /// The streamer's member id (the seed's `gameID`).
    pub recipient: String,
    /// The room's agent id (the seed's `agentID`).
    #[serde(rename = "agentID")]
    pub agent_id: String,
    /// The recipient's live session when sent, if live.
    #[serde(default)]
    pub session_id: Option<Uuid>,
}

/// `onair.gift.sent.v1`: [`GiftSent`] without `score`, as the first releases wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftSentV1 {
    #[serde(rename = "giftID")]
    pub gift_id: i64,
    pub gift_name: String,
    pub anime_url: String,
    pub points: u32,
    pub count: u32,
    pub presenter: String,
    pub presenter_nickname: String,
    pub recipient: String,
    #[serde(rename = "agentID")]
    pub agent_id: String,
    #[serde(default)]
    pub session_id: Option<Uuid>,
}

impl GiftSentV1 {
    /// The v2 shape: `score = points × count`.
    pub fn upcast(self) -> GiftSent {
        GiftSent {
            score: u64::from(self.points) * u64::from(self.count),
            gift_id: self.gift_id,
            gift_name: self.gift_name,
            anime_url: self.anime_url,
            points: self.points,
            count: self.count,
            presenter: self.presenter,
            presenter_nickname: self.presenter_nickname,
            recipient: self.recipient,
            agent_id: self.agent_id,
            session_id: self.session_id,
        }
    }
}

/// A room's popularity changed (src/domain/popularity.rs); the inputs are kept so the value can be
/// checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PopularityChanged {
    pub streamer: String,
    pub value: u64,
    pub viewers: u64,
    pub gift_points: u64,
    pub chat_messages: u64,
    /// Window length, in seconds.
    pub window_seconds: u64,
}
