//! Events of members, rooms, follows and gifts (docs/design.md#the-event-model). Member ids are
//! `account@agent.masterAgent`; times are the events' `ce-time` unless a field says otherwise.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A member's public profile (the chat's `joinRoom` message: nickname, accountID, avatar,
/// equipmentBar, vip, role). Never carries the password or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberProfile {
    /// Member id `account@agent.masterAgent` (seed: `ben@mabu.mabumaster`); compared exactly,
    /// case included.
    pub member_id: String,
    /// `member` or `streamer`.
    pub role: Role,
    /// Display name, 1 to 50 characters.
    pub nickname: String,
    /// Avatar image URL, at most 2048 characters; empty when none.
    pub avatar: String,
    /// VIP level as free text (the seed's `vip`), at most 256 characters; empty when none.
    pub vip: String,
    /// Badges shown with the name (the seed's `equipmentBar`), free text of at most 256
    /// characters; empty when none.
    pub equipment_bar: String,
    /// The seed's `accountID`, 1 to 256 characters; by default the account part of the member id
    /// (before `@`).
    #[serde(rename = "accountID")]
    pub account_id: String,
}

/// The back office (or `onair member create`) registered a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberRegistered {
    /// The new member's profile; its fields are the payload's top-level fields.
    #[serde(flatten)]
    pub profile: MemberProfile,
}

/// The back office edited a member (`EditMember`); the profile as it is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberEdited {
    /// The whole profile after the edit, changed or not; its fields are the payload's top-level
    /// fields.
    #[serde(flatten)]
    pub profile: MemberProfile,
    /// Whether the password was changed (the hash itself is never published).
    pub password_changed: bool,
}

/// A member or streamer logged in (`loginAction` / `loginStreamer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberLoggedIn {
    /// Member id `account@agent.masterAgent` of who logged in.
    pub member_id: String,
    /// `member` (logged in with `loginAction`) or `streamer` (with `loginStreamer`).
    pub role: Role,
    /// The token's id (`jti`), so an audit can tie actions to a login.
    pub token_id: Uuid,
}

/// The back office created or changed a gift of the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftDefined {
    /// Catalog id, the seed's `giftID` (1 or more); the entry with this id is created or replaced.
    #[serde(rename = "giftID")]
    pub gift_id: i64,
    /// Gift name, 1 to 100 characters.
    pub name: String,
    /// Ranking points per gift.
    pub points: u32,
    /// Animation URL as the seed's `animeUrl` has it (a partial path), at most 2048 characters.
    pub anime_url: String,
    /// Whether members can send it; a disabled gift stays in past gift records.
    pub enabled: bool,
}

/// A streamer set their room's info (`setRoomInfo`); the fields as they are now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfoSet {
    /// The streamer's member id; the room is theirs.
    pub streamer: String,
    /// Room title, at most 100 characters (may be empty).
    pub title: String,
    /// Room announcement, at most 1000 characters; may hold line breaks and tabs.
    pub announcement: String,
    /// Cover image URL (`http://` or `https://`, at most 2048 characters); empty for no cover.
    pub cover: String,
}

/// A streamer went live (`startStream`); a new live session begins (the session gift ranking
/// starts empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastStarted {
    /// The streamer's member id.
    pub streamer: String,
    /// The new live session's id (UUID v7); gifts sent while live carry it.
    pub session_id: Uuid,
}

/// A streamer ended the stream (`endStream`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastEnded {
    /// The streamer's member id.
    pub streamer: String,
    /// The live session that ended (the id its `onair.broadcast.started.v1` carried).
    pub session_id: Uuid,
}

/// A member followed a streamer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamerFollowed {
    /// The followed streamer's member id.
    pub streamer: String,
    /// The following member's id (never the streamer's own).
    pub follower: String,
}

/// A member stopped following a streamer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamerUnfollowed {
    /// The streamer's member id.
    pub streamer: String,
    /// The member id of who stopped following.
    pub follower: String,
}

/// A member sent gifts to a streamer (`sendGift`). The catalog entry is copied in (name, points,
/// animation), so gift records and rankings never depend on the catalog's later state.
/// Version 2 adds `score`; version 1 events are upcast on read ([`GiftSentV1::upcast`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftSent {
    /// Catalog id of the gift (the seed's `giftID`).
    #[serde(rename = "giftID")]
    pub gift_id: i64,
    /// The gift's catalog name when sent.
    pub gift_name: String,
    /// The gift's animation URL when sent (the catalog's `animeUrl`).
    pub anime_url: String,
    /// Points per gift, from the catalog when sent.
    pub points: u32,
    /// How many (1 to 9999).
    pub count: u32,
    /// `points × count`: what the gift adds to the presenter's ranking score (v2).
    pub score: u64,
    /// The sender's member id.
    pub presenter: String,
    /// The sender's nickname when sent, from their member profile.
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
    /// Catalog id of the gift (the seed's `giftID`).
    #[serde(rename = "giftID")]
    pub gift_id: i64,
    /// The gift's catalog name when sent.
    pub gift_name: String,
    /// The gift's animation URL when sent (the catalog's `animeUrl`).
    pub anime_url: String,
    /// Points per gift, from the catalog when sent.
    pub points: u32,
    /// How many (1 to 9999).
    pub count: u32,
    /// The sender's member id.
    pub presenter: String,
    /// The sender's nickname when sent, from their member profile.
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
    /// The room's streamer (member id).
    pub streamer: String,
    /// The new popularity: `10 × viewers + giftPoints + 2 × chatMessages`, saturating.
    pub value: u64,
    /// Verified members in the room's chat when computed, each once however many sockets.
    pub viewers: u64,
    /// Sum of `points × count` of the gifts the streamer received in the window.
    pub gift_points: u64,
    /// Chat messages posted in the room in the window.
    pub chat_messages: u64,
    /// Window length, in seconds.
    pub window_seconds: u64,
}

/// A member's role; on the wire `member` or `streamer` (the seed's chat `role` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `member`: a member of the audience; logs in with `loginAction`.
    Member,
    /// `streamer`: has a room, sets its info and goes live; logs in with `loginStreamer`.
    Streamer,
}

impl Role {
    /// The wire spelling: `member` or `streamer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Streamer => "streamer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role that is neither `member` nor `streamer`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("role must be \"member\" or \"streamer\", not {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    /// Exactly the wire spelling, as serde reads it.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "member" => Ok(Self::Member),
            "streamer" => Ok(Self::Streamer),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}
