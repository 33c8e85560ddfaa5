//! `setRoomInfo`: the streamer sets their room's title, announcement or cover. The command checks
//! who sets what ([`crate::domain::room_info`]), loads the room, applies the change and publishes
//! `onair.room.info_set.v1` with the whole info as it is now.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::domain::member::MemberId;
use crate::domain::room::RoomError;
use crate::domain::room_info::{self, RoomInfo, RoomInfoChange, RoomInfoRuleError};
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::{Event, RoomInfoSet};
use crate::read_models::rooms as room_queries;

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
    /// The event store did not answer (HTTP 503).
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Sets `streamer`'s room info: `named_room` is the `streamerID` the request named, if any (it
/// must be the streamer); absent fields of `change` keep their value. Returns the stored event
/// and its stream sequence.
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
    let room = room_queries::room(db, streamer.as_str())
        .await?
        .ok_or_else(|| RoomInfoError::StreamerNotFound(streamer.to_string()))?;
    let current = RoomInfo {
        title: room.title,
        announcement: room.announcement,
        cover: room.cover,
    };
    let next = room_info::apply(current, change)?;
    let event = RoomInfoSet {
        streamer: streamer.to_string(),
        title: next.title,
        announcement: next.announcement,
        cover: next.cover,
    };
    let published = store
        .publish(NewEvent::new(now, Event::RoomInfoSet(event.clone())))
        .await?;
    Ok((event, published.sequence))
}
