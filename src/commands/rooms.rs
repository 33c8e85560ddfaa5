//! The command side of rooms: going live, following. Each reads its aggregate's state from the
//! stream (the last event on the aggregate's subjects), decides with the rules of
//! [`crate::domain::room`], and publishes with `Nats-Expected-Last-Subject-Sequence` over the
//! aggregate's subjects, so two concurrent `startStream` (or `follow`) calls on any instances cannot
//! both succeed: the loser re-reads and is refused (`ALREADY_LIVE`, `ALREADY_FOLLOWING`).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::publish::{SubjectGuard, guarded_publish};
use crate::domain::room::{self, BroadcastState, RoomError};
use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::subject::{encode_token, subject};
use crate::events::{
    BroadcastEnded, BroadcastStarted, Event, StreamerFollowed, StreamerUnfollowed, follow_pair_id,
};

/// Attempts when another event lands on the aggregate between read and publish.
const ATTEMPTS: usize = 5;

/// Why a room command failed; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum RoomCommandError {
    /// The room rules refused it: already live, not live, already following or not following
    /// (HTTP 409), or following oneself (HTTP 400).
    #[error(transparent)]
    Rule(#[from] RoomError),
    /// The event was not stored, or the aggregate stayed contended for 5 attempts (HTTP 503).
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

/// The state of a two-event aggregate: which of `on` / `off` came last, and the last sequence.
async fn last_of_two(
    store: &EventStore,
    on_subject: &str,
    off_subject: &str,
) -> Result<(Option<crate::events::EventEnvelope>, u64), EventStoreError> {
    let on = store.last_on_subject(on_subject).await?;
    let off = store.last_on_subject(off_subject).await?;
    let on_seq = on.as_ref().map_or(0, |e| e.sequence);
    let off_seq = off.as_ref().map_or(0, |e| e.sequence);
    let latest = if on_seq > off_seq { on } else { None };
    Ok((latest, on_seq.max(off_seq)))
}

/// A streamer's broadcast state and the guard sequence of `onair.broadcast.<streamer>.*`.
pub async fn broadcast_state(
    store: &EventStore,
    streamer: &str,
) -> Result<(BroadcastState, u64), EventStoreError> {
    let (live, last) = last_of_two(
        store,
        &subject("broadcast", streamer, "started"),
        &subject("broadcast", streamer, "ended"),
    )
    .await?;
    let state = match live.map(|e| e.event) {
        Some(Event::BroadcastStarted(e)) => BroadcastState::Live {
            session_id: e.session_id,
        },
        _ => BroadcastState::Offline,
    };
    Ok((state, last))
}

/// Whether `follower` follows `streamer`, and the guard sequence of the pair's subjects.
pub async fn follow_state(
    store: &EventStore,
    follower: &str,
    streamer: &str,
) -> Result<(bool, u64), EventStoreError> {
    let pair = follow_pair_id(follower, streamer);
    let (followed, last) = last_of_two(
        store,
        &subject("follow", &pair, "followed"),
        &subject("follow", &pair, "unfollowed"),
    )
    .await?;
    Ok((followed.is_some(), last))
}

/// The guard over `filter`'s subjects at `last`.
fn guard(filter: &str, last: u64) -> SubjectGuard {
    SubjectGuard {
        subject_filter: filter.to_owned(),
        last_sequence: last,
    }
}

/// `startStream`: publishes `onair.broadcast.started.v1` with a new session id.
#[tracing::instrument(skip_all, fields(streamer = %streamer), err(level = "info"))]
pub async fn start_stream(
    store: &EventStore,
    streamer: &str,
    now: OffsetDateTime,
) -> Result<(Published, Uuid), RoomCommandError> {
    set_broadcast(store, streamer, true, now).await
}

/// `endStream`: publishes `onair.broadcast.ended.v1` for the live session.
#[tracing::instrument(skip_all, fields(streamer = %streamer), err(level = "info"))]
pub async fn end_stream(
    store: &EventStore,
    streamer: &str,
    now: OffsetDateTime,
) -> Result<(Published, Uuid), RoomCommandError> {
    set_broadcast(store, streamer, false, now).await
}

/// Starts (`live`) or ends a streamer's broadcast under the guard of its subjects; answers the
/// published event and the session id it started or ended.
async fn set_broadcast(
    store: &EventStore,
    streamer: &str,
    live: bool,
    now: OffsetDateTime,
) -> Result<(Published, Uuid), RoomCommandError> {
    let filter = format!("onair.broadcast.{}.*", encode_token(streamer));
    let filter = &filter;
    let decided = guarded_publish(
        store,
        ATTEMPTS,
        move || async move {
            let (state, last) = broadcast_state(store, streamer).await?;
            let (event, session_id) = if live {
                let session_id = room::start_stream(state, Uuid::now_v7())?;
                let event = Event::BroadcastStarted(BroadcastStarted {
                    streamer: streamer.to_owned(),
                    session_id,
                });
                (event, session_id)
            } else {
                let session_id = room::end_stream(state)?;
                let event = Event::BroadcastEnded(BroadcastEnded {
                    streamer: streamer.to_owned(),
                    session_id,
                });
                (event, session_id)
            };
            Ok::<_, RoomCommandError>((NewEvent::new(now, event), guard(filter, last), session_id))
        },
        || std::future::ready(()),
    )
    .await?;
    match decided {
        Some((session_id, published)) => Ok((published, session_id)),
        None => Err(EventStoreError::Unavailable("the room is busy; try again".into()).into()),
    }
}

/// `follow` (`true`) or `unfollow` (`false`).
#[tracing::instrument(skip_all, fields(follower = %follower, streamer = %streamer, follow), err(level = "info"))]
pub async fn set_following(
    store: &EventStore,
    follower: &str,
    streamer: &str,
    follow: bool,
    now: OffsetDateTime,
) -> Result<Published, RoomCommandError> {
    let filter = format!(
        "onair.follow.{}.*",
        encode_token(&follow_pair_id(follower, streamer))
    );
    let filter = &filter;
    let decided = guarded_publish(
        store,
        ATTEMPTS,
        move || async move {
            let (following, last) = follow_state(store, follower, streamer).await?;
            let event = if follow {
                room::follow(follower, streamer, following)?;
                Event::StreamerFollowed(StreamerFollowed {
                    streamer: streamer.to_owned(),
                    follower: follower.to_owned(),
                })
            } else {
                room::unfollow(follower, streamer, following)?;
                Event::StreamerUnfollowed(StreamerUnfollowed {
                    streamer: streamer.to_owned(),
                    follower: follower.to_owned(),
                })
            };
            Ok::<_, RoomCommandError>((NewEvent::new(now, event), guard(filter, last), ()))
        },
        || std::future::ready(()),
    )
    .await?;
    match decided {
        Some(((), published)) => Ok(published),
        None => Err(EventStoreError::Unavailable("busy; try again".into()).into()),
    }
}
