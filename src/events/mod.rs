//! The event model (docs/design.md#the-event-model): every fact onair knows is one of these events,
//! stored as one NATS JetStream message on the `ONAIR` stream.
//!
//! - Type names are `onair.<context>.<event>.v<N>`, past tense ([`Event::event_type`]).
//! - Subjects are `onair.<context>.<aggregate id>.<event>` ([`Event::subject`]); ids are encoded by
//!   [`subject::encode_token`].
//! - Headers follow the CloudEvents NATS binding, binary mode ([`cloudevents`]); the payload is the
//!   event's data as camelCase JSON.
//! - Seat-changing events of the stage pool share the pool's subjects (`onair.pool.<pool>.*`), so
//!   one expected-sequence guard covers all of them (docs/design.md#invariants).

pub mod chat;
pub mod cloudevents;
pub mod id;
pub mod notice;
pub mod rfc3339;
pub mod room;
pub mod schema;
pub mod stage;
pub mod subject;

use std::borrow::Cow;

use time::OffsetDateTime;
use uuid::Uuid;

pub use self::chat::{
    ChatMessagePosted, MaintenanceModeSet, MemberJoinedRoom, MemberLeftRoom, MemberModerated,
};
pub use self::notice::{
    AllRoomsNoticePublished, ChatNotice, FollowerNoticePublished, RoomNoticePublished,
};
pub use self::room::{
    BroadcastEnded, BroadcastStarted, GiftDefined, GiftSent, MemberEdited, MemberLoggedIn,
    MemberProfile, MemberRegistered, PopularityChanged, RoomInfoSet, StreamerFollowed,
    StreamerUnfollowed,
};

pub use self::stage::{
    PublisherTokenIssued, RecordedHeartbeat, StageCreated, StageDeleted, StageDeletionReason,
    StageDrainEnded, StageDrainStarted, StageRenamed, StreamEnded, StreamStarted, ViewerExpired,
    ViewerHeartbeatRecorded, ViewerHeartbeatsRecorded, ViewerJoined, ViewerLeft,
    ViewerTokenRenewed,
};

/// The one stage pool of a deployment; its events live on `onair.pool.default.*`.
pub const POOL_ID: &str = "default";

/// Filter for every seat-changing event of the pool (the expected-sequence guard's subject).
pub fn pool_subject_filter() -> String {
    format!("onair.pool.{}.*", subject::encode_token(POOL_ID))
}

/// Filter for every stream status event.
pub const STREAM_SUBJECT_FILTER: &str = "onair.stream.>";

/// Filters of the room facts: broadcasts, room info, follows, gifts, popularity.
pub const BROADCAST_SUBJECT_FILTER: &str = "onair.broadcast.>";
/// Filter for every room info event (`onair.room.info_set.v1`).
pub const ROOM_SUBJECT_FILTER: &str = "onair.room.>";
/// Filter for every follow and unfollow of a streamer.
pub const FOLLOW_SUBJECT_FILTER: &str = "onair.follow.>";
/// Filter for every gift sent (`onair.gift.sent.v1`, `.v2`); catalog changes are on
/// `onair.gift_catalog.>`.
pub const GIFT_SUBJECT_FILTER: &str = "onair.gift.>";
/// Filter for every popularity change of a room (`onair.popularity.changed.v1`).
pub const POPULARITY_SUBJECT_FILTER: &str = "onair.popularity.>";
/// Filters of the chat: messages and presence, moderation, maintenance.
pub const CHAT_SUBJECT_FILTER: &str = "onair.chat.>";
/// Filter for every moderation of a member in a chat room (ban, mute, admin, ...).
pub const MODERATION_SUBJECT_FILTER: &str = "onair.moderation.>";
/// Filter for the operator's system switches (maintenance mode).
pub const SYSTEM_SUBJECT_FILTER: &str = "onair.system.>";
/// Filter of every chat-facing notice.
pub const NOTICE_SUBJECT_FILTER: &str = "onair.notice.>";

/// The aggregate id of a follow relation: `"<follower> <streamer>"` (member ids never contain
/// spaces, so the pair is unambiguous).
pub fn follow_pair_id(follower: &str, streamer: &str) -> String {
    format!("{follower} {streamer}")
}

/// Filter for every viewer heartbeat.
pub const HEARTBEAT_SUBJECT_FILTER: &str = "onair.viewer.*.heartbeat_recorded";
/// Filter for every batch of heartbeats (group commit).
pub const HEARTBEAT_BATCH_SUBJECT_FILTER: &str = "onair.viewer.*.heartbeats_recorded";

/// Filters of every heartbeat, single or in a batch.
pub fn heartbeat_subject_filters() -> Vec<String> {
    vec![
        HEARTBEAT_SUBJECT_FILTER.to_owned(),
        HEARTBEAT_BATCH_SUBJECT_FILTER.to_owned(),
    ]
}

/// Every event type onair writes.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A stage joined the pool (`onair.stage.created.v1`).
    StageCreated(StageCreated),
    /// An operator renamed a stage (`onair.stage.renamed.v1`).
    StageRenamed(StageRenamed),
    /// An auto-scaled stage stopped taking new viewers (`onair.stage.drain_started.v1`).
    StageDrainStarted(StageDrainStarted),
    /// A draining stage takes new viewers again (`onair.stage.drain_ended.v1`).
    StageDrainEnded(StageDrainEnded),
    /// A stage left the pool (`onair.stage.deleted.v1`).
    StageDeleted(StageDeleted),
    /// A viewer took a seat (`onair.viewer.joined.v1`).
    ViewerJoined(ViewerJoined),
    /// A seated viewer got a new token (`onair.viewer.token_renewed.v1`).
    ViewerTokenRenewed(ViewerTokenRenewed),
    /// A seated viewer sent a heartbeat (`onair.viewer.heartbeat_recorded.v1`).
    ViewerHeartbeatRecorded(ViewerHeartbeatRecorded),
    /// Heartbeats stored together (`onair.viewer.heartbeats_recorded.v1`).
    ViewerHeartbeatsRecorded(ViewerHeartbeatsRecorded),
    /// A viewer left on their own (`onair.viewer.left.v1`).
    ViewerLeft(ViewerLeft),
    /// A silent viewer lost the seat (`onair.viewer.expired.v1`).
    ViewerExpired(ViewerExpired),
    /// A publisher token was issued (`onair.publisher.token_issued.v1`).
    PublisherTokenIssued(PublisherTokenIssued),
    /// The publisher started streaming (`onair.stream.started.v1`).
    StreamStarted(StreamStarted),
    /// The publisher stopped streaming (`onair.stream.ended.v1`).
    StreamEnded(StreamEnded),
    /// A member was registered (`onair.member.registered.v1`).
    MemberRegistered(MemberRegistered),
    /// A member was edited (`onair.member.edited.v1`).
    MemberEdited(MemberEdited),
    /// A member or streamer logged in (`onair.member.logged_in.v1`).
    MemberLoggedIn(MemberLoggedIn),
    /// A gift catalog entry was created or changed (`onair.gift_catalog.defined.v1`).
    GiftDefined(GiftDefined),
    /// A streamer set their room's info (`onair.room.info_set.v1`).
    RoomInfoSet(RoomInfoSet),
    /// A streamer went live (`onair.broadcast.started.v1`).
    BroadcastStarted(BroadcastStarted),
    /// A streamer ended the live session (`onair.broadcast.ended.v1`).
    BroadcastEnded(BroadcastEnded),
    /// A member followed a streamer (`onair.follow.followed.v1`).
    StreamerFollowed(StreamerFollowed),
    /// A member stopped following a streamer (`onair.follow.unfollowed.v1`).
    StreamerUnfollowed(StreamerUnfollowed),
    /// A member sent gifts (`onair.gift.sent.v2`; v1 is upcast to it on read).
    GiftSent(GiftSent),
    /// A room's popularity changed (`onair.popularity.changed.v1`).
    PopularityChanged(PopularityChanged),
    /// A chat notice for one room (`onair.notice.published_to_room.v1`).
    RoomNoticePublished(RoomNoticePublished),
    /// A chat notice for a streamer's followers (`onair.notice.published_to_followers.v1`).
    FollowerNoticePublished(FollowerNoticePublished),
    /// A chat message was said in a room (`onair.chat.message_posted.v1`).
    ChatMessagePosted(ChatMessagePosted),
    /// A member verified in a chat room (`onair.chat.member_joined_room.v1`).
    MemberJoinedRoom(MemberJoinedRoom),
    /// A member's connection left a chat room (`onair.chat.member_left_room.v1`).
    MemberLeftRoom(MemberLeftRoom),
    /// A member was moderated in a room (`onair.moderation.member_moderated.v1`).
    MemberModerated(MemberModerated),
    /// Maintenance mode was switched (`onair.system.maintenance_mode_set.v1`).
    MaintenanceModeSet(MaintenanceModeSet),
    /// A chat notice for every room (`onair.notice.published_to_all_rooms.v1`).
    AllRoomsNoticePublished(AllRoomsNoticePublished),
}

/// An event that could not be read back from the stream.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// `ce-type` names no event type this build reads (e.g. a newer version); holds the type.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The payload is not valid JSON of the shape its type requires.
    #[error("event {event_type} has an invalid payload: {source}")]
    InvalidPayload {
        /// The event's `ce-type`.
        event_type: String,
        /// What the JSON parser refused.
        source: serde_json::Error,
    },
    /// A header (`ce-type`, `ce-id`, `ce-time`) is absent or unreadable; holds its name. A message
    /// without any headers reports `ce-type`.
    #[error("missing or invalid header {0}")]
    InvalidHeader(&'static str),
}

impl Event {
    /// The versioned CloudEvents type, `onair.<context>.<event>.v<N>`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::StageCreated(_) => "onair.stage.created.v1",
            Event::StageRenamed(_) => "onair.stage.renamed.v1",
            Event::StageDrainStarted(_) => "onair.stage.drain_started.v1",
            Event::StageDrainEnded(_) => "onair.stage.drain_ended.v1",
            Event::StageDeleted(_) => "onair.stage.deleted.v1",
            Event::ViewerJoined(_) => "onair.viewer.joined.v1",
            Event::ViewerTokenRenewed(_) => "onair.viewer.token_renewed.v1",
            Event::ViewerHeartbeatRecorded(_) => "onair.viewer.heartbeat_recorded.v1",
            Event::ViewerHeartbeatsRecorded(_) => "onair.viewer.heartbeats_recorded.v1",
            Event::ViewerLeft(_) => "onair.viewer.left.v1",
            Event::ViewerExpired(_) => "onair.viewer.expired.v1",
            Event::PublisherTokenIssued(_) => "onair.publisher.token_issued.v1",
            Event::StreamStarted(_) => "onair.stream.started.v1",
            Event::StreamEnded(_) => "onair.stream.ended.v1",
            Event::MemberRegistered(_) => "onair.member.registered.v1",
            Event::MemberEdited(_) => "onair.member.edited.v1",
            Event::MemberLoggedIn(_) => "onair.member.logged_in.v1",
            Event::GiftDefined(_) => "onair.gift_catalog.defined.v1",
            Event::RoomInfoSet(_) => "onair.room.info_set.v1",
            Event::BroadcastStarted(_) => "onair.broadcast.started.v1",
            Event::BroadcastEnded(_) => "onair.broadcast.ended.v1",
            Event::StreamerFollowed(_) => "onair.follow.followed.v1",
            Event::StreamerUnfollowed(_) => "onair.follow.unfollowed.v1",
            Event::GiftSent(_) => "onair.gift.sent.v2",
            Event::PopularityChanged(_) => "onair.popularity.changed.v1",
            Event::RoomNoticePublished(_) => "onair.notice.published_to_room.v1",
            Event::FollowerNoticePublished(_) => "onair.notice.published_to_followers.v1",
            Event::ChatMessagePosted(_) => "onair.chat.message_posted.v1",
            Event::MemberJoinedRoom(_) => "onair.chat.member_joined_room.v1",
            Event::MemberLeftRoom(_) => "onair.chat.member_left_room.v1",
            Event::MemberModerated(_) => "onair.moderation.member_moderated.v1",
            Event::MaintenanceModeSet(_) => "onair.system.maintenance_mode_set.v1",
            Event::AllRoomsNoticePublished(_) => "onair.notice.published_to_all_rooms.v1",
        }
    }

    /// The aggregate the event belongs to (CloudEvents `subject`).
    pub fn aggregate_id(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            _ if self.is_pool_event() => POOL_ID,
            Event::ViewerHeartbeatRecorded(e) => &e.user_id,
            Event::PublisherTokenIssued(e) => &e.user_id,
            Event::StreamStarted(e) => &e.stage_arn,
            Event::StreamEnded(e) => &e.stage_arn,
            Event::MemberRegistered(e) => &e.profile.member_id,
            Event::MemberEdited(e) => &e.profile.member_id,
            Event::MemberLoggedIn(e) => &e.member_id,
            Event::GiftDefined(e) => return Cow::Owned(e.gift_id.to_string()),
            Event::RoomInfoSet(e) => &e.streamer,
            Event::BroadcastStarted(e) => &e.streamer,
            Event::BroadcastEnded(e) => &e.streamer,
            Event::StreamerFollowed(e) => {
                return Cow::Owned(follow_pair_id(&e.follower, &e.streamer));
            }
            Event::StreamerUnfollowed(e) => {
                return Cow::Owned(follow_pair_id(&e.follower, &e.streamer));
            }
            Event::GiftSent(e) => &e.recipient,
            Event::PopularityChanged(e) => &e.streamer,
            Event::RoomNoticePublished(e) => &e.room,
            Event::FollowerNoticePublished(e) => &e.streamer,
            Event::ChatMessagePosted(e) => &e.room,
            Event::MemberJoinedRoom(e) => &e.room,
            Event::MemberLeftRoom(e) => &e.room,
            Event::MemberModerated(e) => &e.room,
            Event::MaintenanceModeSet(_) => "maintenance",
            Event::AllRoomsNoticePublished(_) => "all",
            _ => POOL_ID,
        })
    }

    /// The NATS subject: `onair.<context>.<encoded aggregate id>.<event>`.
    pub fn subject(&self) -> String {
        let (context, name) = match self {
            Event::StageCreated(_) => ("pool", "stage_created"),
            Event::StageRenamed(_) => ("pool", "stage_renamed"),
            Event::StageDrainStarted(_) => ("pool", "stage_drain_started"),
            Event::StageDrainEnded(_) => ("pool", "stage_drain_ended"),
            Event::StageDeleted(_) => ("pool", "stage_deleted"),
            Event::ViewerJoined(_) => ("pool", "viewer_joined"),
            Event::ViewerTokenRenewed(_) => ("pool", "viewer_token_renewed"),
            Event::ViewerLeft(_) => ("pool", "viewer_left"),
            Event::ViewerExpired(_) => ("pool", "viewer_expired"),
            Event::ViewerHeartbeatRecorded(_) => ("viewer", "heartbeat_recorded"),
            Event::ViewerHeartbeatsRecorded(_) => ("viewer", "heartbeats_recorded"),
            Event::PublisherTokenIssued(_) => ("publisher", "token_issued"),
            Event::StreamStarted(_) => ("stream", "started"),
            Event::StreamEnded(_) => ("stream", "ended"),
            Event::MemberRegistered(_) => ("member", "registered"),
            Event::MemberEdited(_) => ("member", "edited"),
            Event::MemberLoggedIn(_) => ("member", "logged_in"),
            Event::GiftDefined(_) => ("gift_catalog", "defined"),
            Event::RoomInfoSet(_) => ("room", "info_set"),
            Event::BroadcastStarted(_) => ("broadcast", "started"),
            Event::BroadcastEnded(_) => ("broadcast", "ended"),
            Event::StreamerFollowed(_) => ("follow", "followed"),
            Event::StreamerUnfollowed(_) => ("follow", "unfollowed"),
            Event::GiftSent(_) => ("gift", "sent"),
            Event::PopularityChanged(_) => ("popularity", "changed"),
            Event::RoomNoticePublished(_) => ("notice", "published_to_room"),
            Event::FollowerNoticePublished(_) => ("notice", "published_to_followers"),
            Event::ChatMessagePosted(_) => ("chat", "message_posted"),
            Event::MemberJoinedRoom(_) => ("chat", "member_joined"),
            Event::MemberLeftRoom(_) => ("chat", "member_left"),
            Event::MemberModerated(_) => ("moderation", "member_moderated"),
            Event::MaintenanceModeSet(_) => ("system", "maintenance_mode_set"),
            Event::AllRoomsNoticePublished(_) => ("notice", "published_to_all_rooms"),
        };
        subject::subject(context, &self.aggregate_id(), name)
    }

    /// Whether the event changes seats or stages, so it is guarded by the pool's expected sequence.
    pub fn is_pool_event(&self) -> bool {
        matches!(
            self,
            Event::StageCreated(_)
                | Event::StageRenamed(_)
                | Event::StageDrainStarted(_)
                | Event::StageDrainEnded(_)
                | Event::StageDeleted(_)
                | Event::ViewerJoined(_)
                | Event::ViewerTokenRenewed(_)
                | Event::ViewerLeft(_)
                | Event::ViewerExpired(_)
        )
    }

    /// The payload as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let value = match self {
            Event::StageCreated(e) => serde_json::to_vec(e),
            Event::StageRenamed(e) => serde_json::to_vec(e),
            Event::StageDrainStarted(e) => serde_json::to_vec(e),
            Event::StageDrainEnded(e) => serde_json::to_vec(e),
            Event::StageDeleted(e) => serde_json::to_vec(e),
            Event::ViewerJoined(e) => serde_json::to_vec(e),
            Event::ViewerTokenRenewed(e) => serde_json::to_vec(e),
            Event::ViewerHeartbeatRecorded(e) => serde_json::to_vec(e),
            Event::ViewerHeartbeatsRecorded(e) => serde_json::to_vec(e),
            Event::ViewerLeft(e) => serde_json::to_vec(e),
            Event::ViewerExpired(e) => serde_json::to_vec(e),
            Event::PublisherTokenIssued(e) => serde_json::to_vec(e),
            Event::StreamStarted(e) => serde_json::to_vec(e),
            Event::StreamEnded(e) => serde_json::to_vec(e),
            Event::MemberRegistered(e) => serde_json::to_vec(e),
            Event::MemberEdited(e) => serde_json::to_vec(e),
            Event::MemberLoggedIn(e) => serde_json::to_vec(e),
            Event::GiftDefined(e) => serde_json::to_vec(e),
            Event::RoomInfoSet(e) => serde_json::to_vec(e),
            Event::BroadcastStarted(e) => serde_json::to_vec(e),
            Event::BroadcastEnded(e) => serde_json::to_vec(e),
            Event::StreamerFollowed(e) => serde_json::to_vec(e),
            Event::StreamerUnfollowed(e) => serde_json::to_vec(e),
            Event::GiftSent(e) => serde_json::to_vec(e),
            Event::PopularityChanged(e) => serde_json::to_vec(e),
            Event::RoomNoticePublished(e) => serde_json::to_vec(e),
            Event::FollowerNoticePublished(e) => serde_json::to_vec(e),
            Event::ChatMessagePosted(e) => serde_json::to_vec(e),
            Event::MemberJoinedRoom(e) => serde_json::to_vec(e),
            Event::MemberLeftRoom(e) => serde_json::to_vec(e),
            Event::MemberModerated(e) => serde_json::to_vec(e),
            Event::MaintenanceModeSet(e) => serde_json::to_vec(e),
            Event::AllRoomsNoticePublished(e) => serde_json::to_vec(e),
        };
        value.expect("event payloads always serialize")
    }

    /// Reads a payload of the given type. Older versions of a type are upcast here, so the rest of
    /// the code only sees the newest shape.
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Event, DecodeError> {
        fn parse<T: serde::de::DeserializeOwned>(
            event_type: &str,
            data: &[u8],
        ) -> Result<T, DecodeError> {
            serde_json::from_slice(data).map_err(|source| DecodeError::InvalidPayload {
                event_type: event_type.to_owned(),
                source,
            })
        }
        Ok(match event_type {
            "onair.stage.created.v1" => Event::StageCreated(parse(event_type, data)?),
            "onair.stage.renamed.v1" => Event::StageRenamed(parse(event_type, data)?),
            "onair.stage.drain_started.v1" => Event::StageDrainStarted(parse(event_type, data)?),
            "onair.stage.drain_ended.v1" => Event::StageDrainEnded(parse(event_type, data)?),
            "onair.stage.deleted.v1" => Event::StageDeleted(parse(event_type, data)?),
            "onair.viewer.joined.v1" => Event::ViewerJoined(parse(event_type, data)?),
            "onair.viewer.token_renewed.v1" => Event::ViewerTokenRenewed(parse(event_type, data)?),
            "onair.viewer.heartbeat_recorded.v1" => {
                Event::ViewerHeartbeatRecorded(parse(event_type, data)?)
            }
            "onair.viewer.heartbeats_recorded.v1" => {
                Event::ViewerHeartbeatsRecorded(parse(event_type, data)?)
            }
            "onair.viewer.left.v1" => Event::ViewerLeft(parse(event_type, data)?),
            "onair.viewer.expired.v1" => Event::ViewerExpired(parse(event_type, data)?),
            "onair.publisher.token_issued.v1" => {
                Event::PublisherTokenIssued(parse(event_type, data)?)
            }
            "onair.stream.started.v1" => Event::StreamStarted(parse(event_type, data)?),
            "onair.stream.ended.v1" => Event::StreamEnded(parse(event_type, data)?),
            "onair.member.registered.v1" => Event::MemberRegistered(parse(event_type, data)?),
            "onair.member.edited.v1" => Event::MemberEdited(parse(event_type, data)?),
            "onair.member.logged_in.v1" => Event::MemberLoggedIn(parse(event_type, data)?),
            "onair.gift_catalog.defined.v1" => Event::GiftDefined(parse(event_type, data)?),
            "onair.room.info_set.v1" => Event::RoomInfoSet(parse(event_type, data)?),
            "onair.broadcast.started.v1" => Event::BroadcastStarted(parse(event_type, data)?),
            "onair.broadcast.ended.v1" => Event::BroadcastEnded(parse(event_type, data)?),
            "onair.follow.followed.v1" => Event::StreamerFollowed(parse(event_type, data)?),
            "onair.follow.unfollowed.v1" => Event::StreamerUnfollowed(parse(event_type, data)?),
            "onair.gift.sent.v2" => Event::GiftSent(parse(event_type, data)?),
            // Upcast: v1 had no `score`.
            "onair.gift.sent.v1" => {
                Event::GiftSent(parse::<room::GiftSentV1>(event_type, data)?.upcast())
            }
            "onair.popularity.changed.v1" => Event::PopularityChanged(parse(event_type, data)?),
            "onair.notice.published_to_room.v1" => {
                Event::RoomNoticePublished(parse(event_type, data)?)
            }
            "onair.notice.published_to_followers.v1" => {
                Event::FollowerNoticePublished(parse(event_type, data)?)
            }
            "onair.chat.message_posted.v1" => Event::ChatMessagePosted(parse(event_type, data)?),
            "onair.chat.member_joined_room.v1" => Event::MemberJoinedRoom(parse(event_type, data)?),
            "onair.chat.member_left_room.v1" => Event::MemberLeftRoom(parse(event_type, data)?),
            "onair.moderation.member_moderated.v1" => {
                Event::MemberModerated(parse(event_type, data)?)
            }
            "onair.system.maintenance_mode_set.v1" => {
                Event::MaintenanceModeSet(parse(event_type, data)?)
            }
            "onair.notice.published_to_all_rooms.v1" => {
                Event::AllRoomsNoticePublished(parse(event_type, data)?)
            }
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// An event as stored: its id (`ce-id`, UUID v7, also `Nats-Msg-Id`), when it happened (`ce-time`,
/// UTC, ms) and its stream sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct EventEnvelope {
    /// `ce-id`: a UUID v7, or a v8 derived from the fact (or an `Idempotency-Key`) where retries or
    /// instances must agree on one event.
    pub id: Uuid,
    /// `ce-time`: when the fact happened, UTC, millisecond precision. Projectors take their times
    /// from here, never from the clock.
    pub occurred_at: OffsetDateTime,
    /// The message's JetStream stream sequence, or 0 where the reader does not track it (the chat
    /// gateway's delivery).
    pub sequence: u64,
    /// The payload, upcast to the newest version of its type.
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_event_round_trips_through_its_type_and_payload() {
        let events = vec![
            Event::StageCreated(StageCreated {
                stage_arn: "arn:aws:ivs:us-east-1:000000000000:stage/abc".into(),
                name: "master-stage".into(),
                auto_scaled: false,
                is_master: true,
                tags: BTreeMap::from([("Environment".into(), "dev".into())]),
            }),
            Event::ViewerExpired(ViewerExpired {
                user_id: "u.1".into(),
                stage_arn: "arn".into(),
                joined_at: datetime!(2025-10-19 12:00:00.123 UTC),
                last_seen_at: datetime!(2025-10-19 12:30:50.123 UTC),
                watch_duration_seconds: 1850,
            }),
        ];
        for event in events {
            let decoded = Event::decode(event.event_type(), &event.to_json()).unwrap();
            assert_eq!(decoded, event);
        }
    }

    #[test]
    fn pool_events_share_the_guarded_subjects_and_heartbeats_do_not() {
        let joined = Event::ViewerJoined(ViewerJoined {
            user_id: "a.b".into(),
            stage_arn: "s".into(),
            participant_id: "p".into(),
            token_expires_at: datetime!(2025-10-19 13:00 UTC),
            attributes: Default::default(),
        });
        assert_eq!(joined.subject(), "onair.pool.default.viewer_joined");
        assert!(joined.is_pool_event());
        let beat = Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
            user_id: "a.b".into(),
            stage_arn: "s".into(),
        });
        assert!(!beat.is_pool_event());
        assert_eq!(beat.subject().split('.').count(), 4);
    }

    #[test]
    fn a_v1_gift_is_upcast_to_v2_on_read() {
        let v1 = br#"{"giftID":1,"giftName":"Rose","animeUrl":"/a.webp","points":10,"count":3,
            "presenter":"ben@mabu.mabumaster","presenterNickname":"Ben",
            "recipient":"star@mabu.mabumaster","agentID":"mabu.mabumaster"}"#;
        let Event::GiftSent(gift) = Event::decode("onair.gift.sent.v1", v1).unwrap() else {
            panic!("not a gift");
        };
        assert_eq!(gift.score, 30);
        assert_eq!(gift.session_id, None);
        // Written again, it is a v2 event that reads back the same.
        let event = Event::GiftSent(gift);
        assert_eq!(event.event_type(), "onair.gift.sent.v2");
        assert_eq!(
            Event::decode(event.event_type(), &event.to_json()).unwrap(),
            event
        );
    }

    #[test]
    fn an_unknown_type_is_reported_not_guessed() {
        assert!(matches!(
            Event::decode("onair.viewer.teleported.v1", b"{}"),
            Err(DecodeError::UnknownType(_))
        ));
    }
}
