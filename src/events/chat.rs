//! Events of the chat (docs/chat.md; invariant 5 of docs/design.md#invariants): messages said in
//! rooms, members joining and leaving rooms, moderation, and the operator's maintenance switch.
//! Every instance reads them to deliver messages to its own sockets and to enforce moderation.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A verified member's chat message, accepted in a room. `message` is the JSON text broadcast as
/// the `message` of the `say` payload (the gateway and chat description's chat format); `ce-time`
/// is its `sentAt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessagePosted {
    /// The chat room as the client named it; a streamer's room is
    /// `chatroomSystem-chatroom-{agentID}-{streamerMemberID}`.
    pub room: String,
    /// The sender's connection id (the payload's `from`).
    pub from: String,
    /// The sender's verified member id (the same as the `memberID` inside `message`).
    pub member_id: String,
    /// JSON text `{"type":"chat","memberID","role","name","text","textColor"}`; `role` is
    /// `streamer` for the room's own streamer, else `member`; `name` is the sender's nickname.
    pub message: String,
}

/// A member verified on a connection in a room (the seed's `joinRoom`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberJoinedRoom {
    /// The chat room as the client named it (see `onair.chat.message_posted.v1`).
    pub room: String,
    /// The verified member's id.
    pub member_id: String,
    /// The chat connection's id (a UUID; the `from` of the messages it says).
    pub connection_id: String,
    /// The chat instance holding the connection, so the others can publish its leave when that
    /// instance stops answering (src/reactors/presence.rs). Absent in events of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

/// A verified member's connection left a room (roomLeave or disconnect; the seed's `leaveRoom`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberLeftRoom {
    /// The chat room as the client named it (see `onair.chat.message_posted.v1`).
    pub room: String,
    /// The member id the connection was verified as.
    pub member_id: String,
    /// The connection that left (the id its `onair.chat.member_joined_room.v1` carried).
    pub connection_id: String,
}

/// The room's streamer or an admin banned, muted, ... a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberModerated {
    /// The streamer's chat room, `chatroomSystem-chatroom-{agentID}-{streamerMemberID}`.
    pub room: String,
    /// The room's streamer.
    pub streamer: String,
    /// Who is moderated.
    pub member_id: String,
    /// `ban`, `unban`, `mute`, `unmute`, `grantAdmin` or `revokeAdmin`.
    pub action: ModerationAction,
    /// Who did it.
    pub by: String,
    /// End of a timed mute (UTC); `None` for a permanent one and every other action.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<super::rfc3339::Rfc3339>")]
    pub until: Option<OffsetDateTime>,
}

/// An operator switched maintenance mode (40308 while on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceModeSet {
    /// `true`: maintenance on, every chat message is refused with 40308; `false`: off.
    pub enabled: bool,
}

/// A moderation command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ModerationAction {
    /// `ban`: the member may neither verify nor speak in the room; their sockets in it close.
    Ban,
    /// `unban`: lifts a ban.
    Unban,
    /// `mute`: silences the member in the room, until `until` when one is given, else for good.
    Mute,
    /// `unmute`: lifts both a permanent and a timed mute.
    Unmute,
    /// `grantAdmin`: the member may moderate the room (only the streamer may grant it).
    GrantAdmin,
    /// `revokeAdmin`: takes admin back (only the streamer may revoke it).
    RevokeAdmin,
}
