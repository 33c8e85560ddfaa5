//! The chat commands: a member says a message in a room, a verified member joins a room, a
//! member's connection leaves it. The chat socket (src/chat/) parses the frames and passes in
//! what only it knows (the speaker bound to the socket, the room's moderation and maintenance as
//! the rules follower has them, this instance's id); these functions decide with
//! [`crate::domain::chat`], load what else they need, and publish.
//!
//! Chat events carry no guard: each is a fact about one connection, and derived ids make a
//! repeated publish a duplicate.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::members::MemberRecord;
use crate::domain::chat::{
    ChatMessage, RoomModeration, SayRefusal, Speaker, SystemCode, check_say,
};
use crate::domain::member::{ChatroomName, MemberId, chatroom_streamer};
use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::id::derived_event_id;
use crate::events::notice::Presence;
use crate::events::{
    ChatMessagePosted, ChatNotice, Event, MemberJoinedRoom, MemberLeftRoom, RoomNoticePublished,
};
use crate::records::rate_limit::RateLimiter;

/// `say`: what a connection said in a room, with what the socket knows of it.
#[derive(Clone, Copy, Debug)]
pub struct Say<'a> {
    /// The room (its chat room name, as the client named it).
    pub room: &'a str,
    /// The connection (socket) id: the `from` of the message.
    pub connection_id: &'a str,
    /// The member verified on the connection; `None`: not verified (40101).
    pub speaker: Option<&'a Speaker>,
    /// The raw `message` of the `say` frame (the seed's chat JSON text).
    pub raw: &'a str,
    /// The room's moderation, as this instance knows it.
    pub moderation: &'a RoomModeration,
    /// Whether maintenance mode is on (40308).
    pub maintenance: bool,
    /// Longest text, in characters.
    pub max_text_chars: usize,
    /// Messages a member may say per minute across all instances (also the burst).
    pub messages_per_minute: u32,
    /// The limiter counting `messages_per_minute` (leased slices of the shared Postgres bucket).
    pub message_rate: &'a RateLimiter,
}

/// Why a `say` was not posted.
#[derive(Debug, thiserror::Error)]
pub enum SayError {
    /// The chat rules refused it, or the member is saying too much (42901,
    /// [`SystemCode::TooFast`]).
    #[error("{}", refusal_text(.0))]
    Refused(SayRefusal),
    /// The `chat.message_posted` event was not stored.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

/// The text a refusal is answered with.
fn refusal_text(refusal: &SayRefusal) -> &str {
    match refusal {
        SayRefusal::System(code) => code.message(),
        SayRefusal::Invalid(reason) => reason,
    }
}

/// Says a message: checks it with [`check_say`], then the member's rate (`messages_per_minute`,
/// see [`may_say`]), then publishes `chat.message_posted` and waits for its ack. Returns the
/// message as broadcast.
#[tracing::instrument(skip_all, fields(chat.room = %say.room, connection.id = %say.connection_id), err(level = "info"))]
pub async fn say(
    store: &EventStore,
    db: &PgPool,
    now: OffsetDateTime,
    say: Say<'_>,
) -> Result<ChatMessage, SayError> {
    say_pipelined(store, db, now, say).await?.await
}

/// [`say`] in two steps, so one connection's messages can be pipelined: checks, counts the rate
/// and sends `chat.message_posted` (messages sent one after another are stored in that order),
/// then returns a future of its JetStream ack that resolves to the message as broadcast; the
/// caller answers the `say` only after it (src/chat/pipeline.rs answers in order).
pub async fn say_pipelined(
    store: &EventStore,
    db: &PgPool,
    now: OffsetDateTime,
    say: Say<'_>,
) -> Result<impl Future<Output = Result<ChatMessage, SayError>> + Send + 'static, SayError> {
    // A room that is not a streamer's chat room has no streamer: nobody speaks as one there.
    let room = ChatroomName::parse(say.room).ok();
    let chat = check_say(
        say.speaker,
        room.as_ref().map(ChatroomName::streamer),
        say.moderation,
        say.maintenance,
        say.raw,
        say.max_text_chars,
        now,
    )
    .map_err(SayError::Refused)?;
    if !may_say(
        db,
        say.message_rate,
        &chat.member_id,
        say.messages_per_minute,
    )
    .await
    {
        return Err(SayError::Refused(SayRefusal::System(SystemCode::TooFast)));
    }
    let event = Event::ChatMessagePosted(ChatMessagePosted {
        room: say.room.to_owned(),
        from: say.connection_id.to_owned(),
        member_id: chat.member_id.clone(),
        message: serde_json::to_string(&chat).expect("chat serializes"),
    });
    let ack = store.publish_pipelined(NewEvent::new(now, event)).await?;
    Ok(async move {
        ack.await?;
        Ok(chat)
    })
}

/// Whether `member` may say one more message now: the GCRA of [`crate::records::rate_limit`],
/// shared by every instance in Postgres and spent in leased slices (when Postgres does not
/// answer the message is allowed and the failure logged).
async fn may_say(
    db: &PgPool,
    limiter: &RateLimiter,
    member: &str,
    messages_per_minute: u32,
) -> bool {
    let bucket = derived_event_id(&["chat-messages", member]);
    let limit = i32::try_from(messages_per_minute).unwrap_or(i32::MAX);
    match limiter.check(db, bucket, limit).await {
        Ok(decision) => decision.allowed,
        Err(e) => {
            tracing::warn!(error = %e, "chat rate check failed; allowing the message");
            true
        }
    }
}

/// A verified member's connection joins a room.
#[derive(Clone, Copy, Debug)]
pub struct JoinRoom<'a> {
    /// The room.
    pub room: &'a str,
    /// The member's record (nickname, avatar, ... of the `joinRoom` notice).
    pub member: &'a MemberRecord,
    /// The connection (socket) id.
    pub connection_id: &'a str,
    /// The chat instance holding the connection (the presence reactor reaps silent ones).
    pub instance_id: &'a str,
    /// The room's moderation, as this instance knows it (the `relationship` codes).
    pub moderation: &'a RoomModeration,
    /// Whether the member follows the room's streamer (the `following` relationship code), as
    /// the caller read it.
    pub following: bool,
    /// A member's `welcome` is shown at most once per room per this window.
    pub welcome_window: Duration,
}

/// Publishes `member_joined_room`, the `joinRoom` notice and, at most once per welcome window on
/// every instance (`chat_welcomes`), the `welcome` notice; the notices' ids derive from the
/// fact's. Returns whether the welcome was published. A failed read of the welcome row reads as
/// "no welcome".
#[tracing::instrument(skip_all, fields(chat.room = %join.room, member.id = %join.member.member_id, connection.id = %join.connection_id), err(level = "warn"))]
pub async fn join_room(
    store: &EventStore,
    db: &PgPool,
    now: OffsetDateTime,
    join: JoinRoom<'_>,
) -> Result<bool, EventStoreError> {
    let record = join.member;
    let streamer = chatroom_streamer(join.room);
    let following = join.following;
    let is_streamer = streamer.as_ref().map(MemberId::as_str) == Some(record.member_id.as_str());
    let presence = Presence {
        member: record.member_id.clone(),
        relationship: join
            .moderation
            .relationship(&record.member_id, following, now),
        nickname: record.nickname.clone(),
        account_id: record.account_id.clone(),
        avatar: record.avatar.clone(),
        equipment_bar: record.equipment_bar.clone(),
        vip: record.vip.clone(),
        role: if is_streamer { "streamer" } else { "member" }.to_owned(),
    };
    let fact = NewEvent::new(
        now,
        Event::MemberJoinedRoom(MemberJoinedRoom {
            room: join.room.to_owned(),
            member_id: record.member_id.clone(),
            connection_id: join.connection_id.to_owned(),
            instance_id: Some(join.instance_id.to_owned()),
        }),
    );
    let fact_id = fact.id.to_string();
    let notice = |message: ChatNotice, kind: &str| {
        NewEvent::new(
            now,
            Event::RoomNoticePublished(RoomNoticePublished {
                room: join.room.to_owned(),
                message,
            }),
        )
        .with_id(derived_event_id(&[kind, &fact_id]))
    };
    let mut events = vec![
        fact,
        notice(ChatNotice::JoinRoom(presence.clone()), "joinRoom"),
    ];
    let welcome = crate::records::chat_presence::claim_welcome(
        db,
        join.room,
        &record.member_id,
        join.welcome_window,
    )
    .await
    .unwrap_or(false);
    if welcome {
        events.push(notice(ChatNotice::Welcome(presence), "welcome"));
    }
    store.publish_all(events).await?;
    Ok(welcome)
}

/// `member_left_room` and its `leaveRoom` notice (id derived from the fact's). `fact_id` sets the
/// fact's id (derived ids make a repeated publish a duplicate); `None`: a fresh one.
pub fn leave_events(
    fact: MemberLeftRoom,
    nickname: String,
    now: OffsetDateTime,
    fact_id: Option<Uuid>,
) -> Vec<NewEvent> {
    let room = fact.room.clone();
    let member = fact.member_id.clone();
    let mut fact = NewEvent::new(now, Event::MemberLeftRoom(fact));
    if let Some(id) = fact_id {
        fact = fact.with_id(id);
    }
    let notice_id = derived_event_id(&["leaveRoom", &fact.id.to_string()]);
    let notice = NewEvent::new(
        now,
        Event::RoomNoticePublished(RoomNoticePublished {
            room,
            message: ChatNotice::LeaveRoom { member, nickname },
        }),
    )
    .with_id(notice_id);
    vec![fact, notice]
}

/// A verified member's connection leaves a room (`roomLeave`, or the socket closed): publishes
/// [`leave_events`] with a fresh id.
#[tracing::instrument(skip_all, fields(chat.room = %room, member.id = %member_id, connection.id = %connection_id), err(level = "warn"))]
pub async fn leave_room(
    store: &EventStore,
    now: OffsetDateTime,
    room: &str,
    member_id: &str,
    nickname: &str,
    connection_id: &str,
) -> Result<Vec<Published>, EventStoreError> {
    let fact = MemberLeftRoom {
        room: room.to_owned(),
        member_id: member_id.to_owned(),
        connection_id: connection_id.to_owned(),
    };
    store
        .publish_all(leave_events(fact, nickname.to_owned(), now, None))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn given_a_leave_when_its_events_are_built_then_the_notice_id_derives_from_the_fact() {
        let fact = MemberLeftRoom {
            room: "room".into(),
            member_id: "ben@mabu.mabumaster".into(),
            connection_id: "c1".into(),
        };
        let id = derived_event_id(&["presence-expired", "room", "c1"]);
        let now = datetime!(2026-11-22 12:00 UTC);
        let events = leave_events(fact.clone(), "Ben".into(), now, Some(id));
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id, id);
        assert_eq!(
            events[1].id,
            derived_event_id(&["leaveRoom", &id.to_string()])
        );
        assert_eq!(events[0].event, Event::MemberLeftRoom(fact));
        assert_eq!(
            events[1].event,
            Event::RoomNoticePublished(RoomNoticePublished {
                room: "room".into(),
                message: ChatNotice::LeaveRoom {
                    member: "ben@mabu.mabumaster".into(),
                    nickname: "Ben".into()
                },
            })
        );
    }
}
