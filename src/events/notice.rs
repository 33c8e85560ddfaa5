//! Chat-facing notices: the system messages of the gateway and chat description
//! (docs/api.md#chat-notices) that facts produce, published as events so every chat gateway
//! instance can fan them out to its sockets. Each notice's `message` is exactly the
//! seed's JSON (`type` plus the seed's field names), ready to be sent as the `message` string of a
//! `say` payload with `from: "0"`.
//!
//! Most notices are derived: a projector derives them (`gift`, `giftRank`, `follow`,
//! `popularity`, `streamStatus`, `sub`) while applying the fact they come from, with an id derived
//! from that fact's id, and commits them into the transactional outbox with its batch; the outbox
//! relay (src/reactors/outbox_relay.rs) publishes them, so a redelivered fact never produces a
//! second notice (the outbox's unique event id, JetStream's duplicate window). `joinRoom`, `welcome` and `leaveRoom` come from the chat service and the
//! presence reactor, `system` from the back office.

use serde::{Deserialize, Serialize};

/// Gift details of a `gift` message: `{id, name, animeUrl, count}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftDetails {
    /// Catalog id of the gift (`giftID`).
    pub id: i64,
    /// The gift's catalog name when sent.
    pub name: String,
    /// Animation URL (a partial path, as the catalog holds it).
    pub anime_url: String,
    /// How many were sent (1 to 9999).
    pub count: u32,
}

/// `start` or `done` (seed: `streamStatus` and `sub`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    /// The streamer went live (`onair.broadcast.started.v1`).
    Start,
    /// The streamer ended the live session (`onair.broadcast.ended.v1`).
    Done,
}

/// The member fields of `joinRoom` and `welcome`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The member id of who entered the room.
    pub member: String,
    /// 1 muted, 2 banned, 3 admin, 4 following, 5 temporarily muted.
    pub relationship: Vec<u8>,
    /// The member's nickname.
    pub nickname: String,
    /// The member's `accountID`.
    #[serde(rename = "accountID")]
    pub account_id: String,
    /// The member's avatar URL; empty when none.
    pub avatar: String,
    /// The member's badges (`equipmentBar`); empty when none.
    pub equipment_bar: String,
    /// The member's VIP level; empty when none.
    pub vip: String,
    /// `streamer` when the member is the room's own streamer, else `member`.
    pub role: String,
}

/// One chat message of the system, tagged by the seed's `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ChatNotice {
    /// `{"type":"gift","presenter","presenterNickname","recipient","gift":{id,name,animeUrl,count}}`.
    #[serde(rename_all = "camelCase")]
    Gift {
        /// The sender's member id.
        presenter: String,
        /// The sender's nickname when sent.
        presenter_nickname: String,
        /// The receiving streamer's member id.
        recipient: String,
        /// What was sent.
        gift: GiftDetails,
    },
    /// `{"type":"giftRank","rankState","rankingList":[{memberId,nickName,rank,state,rise,score}]}`
    /// (`rankState`, not the description's typo `rankStateL`: docs/design.md#decided-open-points).
    #[serde(rename_all = "camelCase")]
    GiftRank {
        /// How the giver moved: `UP`, `DOWN`, `PLATEAU` or `NEW`.
        rank_state: RankState,
        /// The room's session ranking (since the last stream start) after the gift: the first 10
        /// entries, rank 1 first.
        ranking_list: Vec<RankingEntry>,
    },
    /// `{"type":"follow","streamer","follower"}`.
    Follow {
        /// The followed streamer's member id.
        streamer: String,
        /// The new follower's member id.
        follower: String,
    },
    /// `{"type":"popularity","streamer","value"}`.
    Popularity {
        /// The room's streamer (member id).
        streamer: String,
        /// The room's popularity (the `value` of `onair.popularity.changed.v1`).
        value: u64,
    },
    /// `{"type":"streamStatus","streamer","status"}` to the streamer's room.
    StreamStatus {
        /// The streamer's member id.
        streamer: String,
        /// `start` or `done`.
        status: StreamStatus,
    },
    /// `{"type":"sub","streamer","status"}` to each follower, in whatever room they are.
    Sub {
        /// The followed streamer's member id.
        streamer: String,
        /// `start` or `done`.
        status: StreamStatus,
    },
    /// `{"type":"system","message"}`: an operator's broadcast.
    System {
        /// The operator's text, 1 to 1000 characters.
        message: String,
    },
    /// `{"type":"joinRoom", member, relationship, nickname, accountID, avatar, equipmentBar, vip,
    /// role}`: a member verified in the room.
    JoinRoom(Presence),
    /// Like `joinRoom`, at most once per member per room per window, for display.
    Welcome(Presence),
    /// `{"type":"leaveRoom","member","nickname"}`.
    LeaveRoom {
        /// The member id of who left.
        member: String,
        /// The member's nickname; empty when unknown.
        nickname: String,
    },
}

/// A notice for everyone in one chat room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomNoticePublished {
    /// `chatroomSystem-chatroom-{agentID}-{streamerMemberID}`.
    pub room: String,
    /// The notice, sent to the room's sockets as the JSON text of a `say` with `from: "0"`.
    pub message: ChatNotice,
}

/// A notice for every follower of a streamer, in whatever room they are (the seed's `sub`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowerNoticePublished {
    /// The streamer whose followers get it (member id).
    pub streamer: String,
    /// The notice (`sub`), sent to each follower's sockets as the JSON text of a `say`.
    pub message: ChatNotice,
}

/// A notice for every room on every instance (an operator's `system` broadcast to all rooms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllRoomsNoticePublished {
    /// The notice (`system`), sent to every room with sockets on each chat instance.
    pub message: ChatNotice,
}

/// How an entry moved since the previous snapshot; on the wire `UP`, `DOWN`, `PLATEAU`, `NEW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RankState {
    /// `UP`: a better rank than in the previous snapshot.
    Up,
    /// `DOWN`: a worse rank than in the previous snapshot.
    Down,
    /// `PLATEAU`: the same rank as in the previous snapshot.
    Plateau,
    /// `NEW`: absent from the previous snapshot (a first gift in this ranking).
    New,
}

/// One entry of the seed's `rankingList`: `{memberId, nickName, rank, state, rise, score}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RankingEntry {
    /// The presenter (gift giver).
    #[schemars(with = "MemberIdText")]
    pub member_id: String,
    /// The presenter's nickname as given with their latest gift.
    pub nick_name: String,
    /// 1-based.
    pub rank: u32,
    /// Movement since the snapshot just before this gift.
    pub state: RankState,
    /// Places moved up (`UP`) or down (`DOWN`); 0 for `PLATEAU` and `NEW`.
    pub rise: u32,
    /// Sum of `points × count` of the presenter's gifts in this ranking (session or all time).
    pub score: u64,
}

/// The schema of a member id as events carry it (the domain's `MemberId` is described by it too).
pub struct MemberIdText;

impl schemars::JsonSchema for MemberIdText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MemberId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A member id, account@agent.masterAgent",
            "pattern": "^[^@\\s]+@[^@.\\s]+\\.[^@.\\s]+$"
        })
    }
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
