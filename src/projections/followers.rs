//! Projection `followers` -> table `rm_followers`: who follows which streamer. Derives the chat
//! notice `follow` (`{streamer, follower}`) to the streamer's room.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;

use super::{Notices, Projection};
use crate::domain::member::room_of;
use crate::event_store::NewEvent;
use crate::events::{ChatNotice, Event, EventEnvelope, FOLLOW_SUBJECT_FILTER, RoomNoticePublished};

/// The `followers` projection: `onair.follow.>` into `rm_followers`; derives `follow` notices.
#[derive(Default)]
pub struct FollowersProjection {
    notices: Notices,
}

impl Projection for FollowersProjection {
    fn name(&self) -> &'static str {
        "followers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_followers"]
    }

    fn subjects(&self) -> Vec<String> {
        vec![FOLLOW_SUBJECT_FILTER.to_owned()]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        envelope: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        async move {
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
                    sqlx::query(
                        "DELETE FROM rm_followers WHERE streamer_id = $1 AND follower_id = $2",
                    )
                    .bind(&e.streamer)
                    .bind(&e.follower)
                    .execute(&mut *tx)
                    .await?;
                }
                _ => {}
            }
            Ok(())
        }
        .boxed()
    }

    fn take_notices(&self) -> Vec<NewEvent> {
        self.notices.take()
    }
}
