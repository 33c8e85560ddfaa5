//! `setRoomInfo`: the streamer sets their room's title, announcement or cover.
//!
//! The command has the shape of every guarded command ([`crate::commands::rooms`]): it checks
//! who sets what ([`crate::domain::room_info::check_change`]), loads the room's info **from the
//! stream** (the last `onair.room.info_set.v1` on `onair.room.<streamer>.info_set`, with its
//! stream sequence; never the `rm_rooms` read model, which may lag), decides the new info in
//! [`crate::domain::room_info::apply`] and publishes it with
//! `Nats-Expected-Last-Subject-Sequence` = that sequence. When another `setRoomInfo` of the same
//! room was stored in between, the guard refuses ([`EventStoreError::Conflict`]): the command
//! reloads and decides again, so two concurrent edits of different fields both stay. It gives up
//! after [`RETRY_DEADLINE`] with [`EventStoreError::Unavailable`] (HTTP 503
//! `SERVICE_UNAVAILABLE`, nothing stored).

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::commands::members;
use crate::commands::publish::{SubjectGuard, publish_guarded};
use crate::domain::member::{MemberId, Role};
use crate::domain::room::RoomError;
use crate::domain::room_info::{self, RoomInfo, RoomInfoChange, RoomInfoRuleError};
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::subject::subject;
use crate::events::{Event, RoomInfoSet};

/// How long a `setRoomInfo` keeps reloading and deciding again while other edits of the same room
/// win the guard: 5 s, under the API's 9 s request deadline (`http/deadline.rs`).
pub const RETRY_DEADLINE: Duration = Duration::from_secs(5);

/// Why the room info was not set; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum RoomInfoError {
    /// Another streamer's room (HTTP 403 `FORBIDDEN`) or no field set (HTTP 400).
    #[error(transparent)]
    Rule(#[from] RoomInfoRuleError),
    /// A text is too long, holds control characters, or the cover is not a URL (HTTP 400).
    #[error(transparent)]
    Text(#[from] RoomError),
    /// The streamer is not registered (HTTP 404 `STREAMER_NOT_FOUND`).
    #[error("streamer {0} not found")]
    StreamerNotFound(String),
    /// The event store did not answer, or the room stayed contended for [`RETRY_DEADLINE`]
    /// (HTTP 503 `SERVICE_UNAVAILABLE`).
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// Postgres failed (reading the member record).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The stream subject of a room's info, `onair.room.<streamer>.info_set`.
fn info_subject(streamer: &str) -> String {
    subject("room", streamer, "info_set")
}

/// A room's info as the stream has it (empty fields before any `setRoomInfo`), and the guard
/// over its subject at the sequence of the event it was read from (0: none yet).
pub async fn room_info_state(
    store: &EventStore,
    streamer: &str,
) -> Result<(RoomInfo, SubjectGuard), EventStoreError> {
    let subject = info_subject(streamer);
    let last = store.last_on_subject(&subject).await?;
    let last_sequence = last.as_ref().map_or(0, |e| e.sequence);
    let info = match last.map(|e| e.event) {
        Some(Event::RoomInfoSet(e)) => RoomInfo {
            title: e.title,
            announcement: e.announcement,
            cover: e.cover,
        },
        _ => RoomInfo::default(),
    };
    Ok((
        info,
        SubjectGuard {
            subject_filter: subject,
            last_sequence,
        },
    ))
}

/// Sets `streamer`'s room info: `named_room` is the `streamerID` the request named, if any (it
/// must be the streamer); absent fields of `change` keep their value as the stream has it.
/// Returns the stored event and its stream sequence.
#[tracing::instrument(skip_all, fields(streamer.id = %streamer), err(level = "info"))]
pub async fn set_room_info(
    db: &PgPool,
    store: &EventStore,
    streamer: &MemberId,
    named_room: Option<&str>,
    change: RoomInfoChange,
    now: OffsetDateTime,
) -> Result<(RoomInfoSet, u64), RoomInfoError> {
    room_info::check_change(streamer.as_str(), named_room, &change)?;
    // The member record (operator record in Postgres, written before its event): the room exists
    // once its streamer is registered.
    match members::find(db, streamer.as_str()).await? {
        Some(member) if member.role() == Role::Streamer => {}
        _ => return Err(RoomInfoError::StreamerNotFound(streamer.to_string())),
    }
    let deadline = tokio::time::Instant::now() + RETRY_DEADLINE;
    loop {
        let (current, guard) = room_info_state(store, streamer.as_str()).await?;
        let next = room_info::apply(current, change.clone())?;
        let event = RoomInfoSet {
            streamer: streamer.to_string(),
            title: next.title,
            announcement: next.announcement,
            cover: next.cover,
        };
        let new = NewEvent::new(now, Event::RoomInfoSet(event.clone()));
        match publish_guarded(store, new, &guard).await? {
            Some(published) => return Ok((event, published.sequence)),
            None if tokio::time::Instant::now() < deadline => {
                tracing::debug!("another setRoomInfo came first; deciding again");
            }
            None => {
                return Err(EventStoreError::Unavailable(
                    "the room's info is being changed by other requests; try again".into(),
                )
                .into());
            }
        }
    }
}
