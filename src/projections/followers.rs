//! Projection `followers` -> table `rm_followers`: who follows which streamer. Derives the chat
//! notice `follow` (`{streamer, follower}`) to the streamer's room.

use sqlx::PgConnection;

use super::projection::{Notices, ReadModelProjection};
use crate::domain::member::room_of;
use crate::events::{ChatNotice, Event, EventEnvelope, FOLLOW_SUBJECT_FILTER, RoomNoticePublished};

/// The `followers` projection: `onair.follow.>` into `rm_followers`; derives `follow` notices.
#[derive(Default)]
pub struct FollowersProjection {
    notices: Notices,
}

impl ReadModelProjection for FollowersProjection {
    const NAME: &'static str = "followers";

    const TABLES: &'static [&'static str] = &["rm_followers"];

    fn subjects() -> Vec<String> {
        vec![FOLLOW_SUBJECT_FILTER.to_owned()]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
        match &envelope.event {
            Event::StreamerFollowed(e) => {
                sqlx::query(
                    "INSERT INTO rm_followers (streamer_id, follower_id, since)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&e.streamer)
                .bind(&e.follower)
                .bind(envelope.occurred_at)
                .execute(&mut *tx)
                .await?;
                if let Some(room) = room_of(&e.streamer) {
                    self.notices.push(
                        envelope,
                        "follow",
                        Event::RoomNoticePublished(RoomNoticePublished {
                            room,
                            message: ChatNotice::Follow {
                                streamer: e.streamer.clone(),
                                follower: e.follower.clone(),
                            },
                        }),
                    );
                }
            }
            Event::StreamerUnfollowed(e) => {
                sqlx::query("DELETE FROM rm_followers WHERE streamer_id = $1 AND follower_id = $2")
                    .bind(&e.streamer)
                    .bind(&e.follower)
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    fn notices(&self) -> Option<&Notices> {
        Some(&self.notices)
    }
}
