//! Chat-facing notices: the system messages of seeds/gateway-chat.md ("聊天訊息格式說明") that
//! facts produce, published as events so every chat gateway instance can fan them out to its
//! sockets (issue 5). Each notice's `message` is exactly the seed's JSON (`type` plus the seed's
//! field names), ready to be sent as the `message` string of a `say` payload with `from: "0"`.
//!
//! Notices are derived: a projector publishes them while applying the fact they come from, with an
//! id derived from that fact's id, so a redelivered fact never produces a second notice
//! (JetStream's duplicate window).

use serde::{Deserialize, Serialize};

use crate::domain::gift_ranking::{RankState, RankingEntry};

/// Gift details of a `gift` message: `{id, name, animeUrl, count}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftDetails {
    pub id: i64,
    pub name: String,
    /// Animation URL (a partial path, as the catalog holds it).
    pub anime_url: String,
    pub count: u32,
}

/// `start` or `done` (seed: `streamStatus` and `sub`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    Start,
    Done,
}

/// The member fields of `joinRoom` and `welcome`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub member: String,
    /// 1 muted, 2 banned, 3 admin, 4 following, 5 temporarily muted.
    pub relationship: Vec<u8>,
    pub nickname: String,
    #[serde(rename = "accountID")]
    pub account_id: String,
    pub avatar: String,
    pub equipment_bar: String,
    pub vip: String,
    pub role: String,
}

/// One chat message of the system, tagged by the seed's `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ChatNotice {
    /// `{"type":"gift","presenter","presenterNickname","recipient","gift":{id,name,animeUrl,count}}`.
    #[serde(rename_all = "camelCase")]
    Gift {
        presenter: String,
        presenter_nickname: String,
        recipient: String,
        gift: GiftDetails,
    },
    /// `{"type":"giftRank","rankState","rankingList":[{memberId,nickName,rank,state,rise,score}]}`
    /// (DESIGN.md §6: `rankState`, not the seed's typo `rankStateL`).
    #[serde(rename_all = "camelCase")]
    GiftRank {
        rank_state: RankState,
        ranking_list: Vec<RankingEntry>,
    },
    /// `{"type":"follow","streamer","follower"}`.
    Follow { streamer: String, follower: String },
    /// `{"type":"popularity","streamer","value"}`.
    Popularity { streamer: String, value: u64 },
    /// `{"type":"streamStatus","streamer","status"}` to the streamer's room.
    StreamStatus {
        streamer: String,
        status: StreamStatus,
    },
    /// `{"type":"sub","streamer","status"}` to each follower, in whatever room they are.
    Sub {
        streamer: String,
        status: StreamStatus,
    },
    /// `{"type":"system","message"}`: an operator's broadcast.
    System { message: String },
    /// `{"type":"joinRoom", member, relationship, nickname, accountID, avatar, equipmentBar, vip,
    /// role}`: a member verified in the room.
    JoinRoom(Presence),
    /// Like `joinRoom`, at most once per member per room per window, for display.
    Welcome(Presence),
    /// `{"type":"leaveRoom","member","nickname"}`.
    LeaveRoom { member: String, nickname: String },
}

/// A notice for everyone in one chat room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomNoticePublished {
    /// `chatroomSystem-chatroom-{agentID}-{streamerMemberID}`.
    pub room: String,
    pub message: ChatNotice,
}

/// A notice for every follower of a streamer, in whatever room they are (the seed's `sub`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowerNoticePublished {
    pub streamer: String,
    pub message: ChatNotice,
}

/// A notice for every room on every instance (an operator's `system` broadcast to all rooms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllRoomsNoticePublished {
    pub message: ChatNotice,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notices_use_the_seeds_field_names() {
        let gift = ChatNotice::Gift {
            presenter: "ben@mabu.mabumaster".into(),
            presenter_nickname: "Ben".into(),
            recipient: "star@mabu.mabumaster".into(),
            gift: GiftDetails {
                id: 1,
                name: "Rose".into(),
                anime_url: "/anime/rose.webp".into(),
                count: 3,
            },
        };
        assert_eq!(
            serde_json::to_value(&gift).unwrap(),
            json!({"type": "gift", "presenter": "ben@mabu.mabumaster", "presenterNickname": "Ben",
                   "recipient": "star@mabu.mabumaster",
                   "gift": {"id": 1, "name": "Rose", "animeUrl": "/anime/rose.webp", "count": 3}})
        );
        let sub = ChatNotice::Sub {
            streamer: "star@mabu.mabumaster".into(),
            status: StreamStatus::Start,
        };
        assert_eq!(
            serde_json::to_value(&sub).unwrap(),
            json!({"type": "sub", "streamer": "star@mabu.mabumaster", "status": "start"})
        );
        let rank = ChatNotice::GiftRank {
            rank_state: RankState::New,
            ranking_list: vec![],
        };
        assert_eq!(
            serde_json::to_value(&rank).unwrap(),
            json!({"type": "giftRank", "rankState": "NEW", "rankingList": []})
        );
        let status = ChatNotice::StreamStatus {
            streamer: "s@a.b".into(),
            status: StreamStatus::Done,
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap()["type"],
            json!("streamStatus")
        );
    }
}
