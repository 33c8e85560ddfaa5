//! Projection `rooms` -> table `rm_rooms`: each streamer's room info, live status and popularity
//! (docs/api.md#client-gateway: `getRoomInfo`, `getRankingRoomList`). Derives the chat notices
//! `streamStatus` (to the room), `sub` (to the followers) and `popularity` (to the room).

use sqlx::PgConnection;

use super::projection::{Notices, ReadModelProjection};
use crate::domain::member::{MemberId, room_of};
use crate::events::notice::StreamStatus;
use crate::events::{
    BROADCAST_SUBJECT_FILTER, ChatNotice, Event, EventEnvelope, FollowerNoticePublished,
    POPULARITY_SUBJECT_FILTER, ROOM_SUBJECT_FILTER, RoomNoticePublished,
};

/// The `rooms` projection: `onair.broadcast.>`, `onair.room.>` and `onair.popularity.>` into
/// `rm_rooms`; derives `streamStatus`, `sub` and `popularity` notices.
#[derive(Default)]
pub struct RoomsProjection {
    notices: Notices,
}

fn agent_of(streamer: &str) -> String {
    MemberId::parse(streamer, "streamer")
        .map(|id| id.agent_id().to_string())
        .unwrap_or_default()
}

/// Ensures the streamer's row exists.
async fn ensure_room(
    tx: &mut PgConnection,
    streamer: &str,
    at: time::OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rm_rooms (streamer_id, agent_id, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (streamer_id) DO NOTHING",
    )
    .bind(streamer)
    .bind(agent_of(streamer))
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl RoomsProjection {
    fn stream_status(&self, source: &EventEnvelope, streamer: &str, status: StreamStatus) {
        if let Some(room) = room_of(streamer) {
            self.notices.push(
                source,
                "streamStatus",
                Event::RoomNoticePublished(RoomNoticePublished {
                    room,
                    message: ChatNotice::StreamStatus {
                        streamer: streamer.to_owned(),
                        status,
                    },
                }),
            );
        }
        self.notices.push(
            source,
            "sub",
            Event::FollowerNoticePublished(FollowerNoticePublished {
                streamer: streamer.to_owned(),
                message: ChatNotice::Sub {
                    streamer: streamer.to_owned(),
                    status,
                },
            }),
        );
    }
}

impl ReadModelProjection for RoomsProjection {
    const NAME: &'static str = "rooms";

    const TABLES: &'static [&'static str] = &["rm_rooms"];

    fn subjects() -> Vec<String> {
        vec![
            BROADCAST_SUBJECT_FILTER.to_owned(),
            ROOM_SUBJECT_FILTER.to_owned(),
            POPULARITY_SUBJECT_FILTER.to_owned(),
        ]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::RoomInfoSet(e) => {
                ensure_room(tx, &e.streamer, at).await?;
                sqlx::query(
                    "UPDATE rm_rooms SET title = $2, announcement = $3, cover = $4,
                         updated_at = $5
                     WHERE streamer_id = $1",
                )
                .bind(&e.streamer)
                .bind(&e.title)
                .bind(&e.announcement)
                .bind(&e.cover)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            Event::BroadcastStarted(e) => {
                ensure_room(tx, &e.streamer, at).await?;
                sqlx::query(
                    "UPDATE rm_rooms SET is_live = true, session_id = $2, live_since = $3,
                         updated_at = $3
                     WHERE streamer_id = $1",
                )
                .bind(&e.streamer)
                .bind(e.session_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                self.stream_status(envelope, &e.streamer, StreamStatus::Start);
            }
            Event::BroadcastEnded(e) => {
                ensure_room(tx, &e.streamer, at).await?;
                sqlx::query(
                    "UPDATE rm_rooms SET is_live = false, session_id = NULL,
                         live_since = NULL, updated_at = $2
                     WHERE streamer_id = $1",
                )
                .bind(&e.streamer)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                self.stream_status(envelope, &e.streamer, StreamStatus::Done);
            }
            Event::PopularityChanged(e) => {
                ensure_room(tx, &e.streamer, at).await?;
                sqlx::query(
                    "UPDATE rm_rooms SET popularity = $2, updated_at = $3
                     WHERE streamer_id = $1",
                )
                .bind(&e.streamer)
                .bind(i64::try_from(e.value).unwrap_or(i64::MAX))
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if let Some(room) = room_of(&e.streamer) {
                    self.notices.push(
                        envelope,
                        "popularity",
                        Event::RoomNoticePublished(RoomNoticePublished {
                            room,
                            message: ChatNotice::Popularity {
                                streamer: e.streamer.clone(),
                                value: e.value,
                            },
                        }),
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn notices(&self) -> Option<&Notices> {
        Some(&self.notices)
    }
}
