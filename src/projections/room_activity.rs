//! Projection `room_activity` -> tables `rm_room_activity` (gift points and chat messages per room
//! per 10-second bucket of event time) and `rm_room_presence` (verified members in each chat room):
//! the inputs of the popularity (src/domain/popularity.rs).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::Projection;
use crate::domain::member::chatroom_streamer;
use crate::domain::popularity::bucket_start;
use crate::events::{CHAT_SUBJECT_FILTER, Event, EventEnvelope, GIFT_SUBJECT_FILTER};

pub struct RoomActivityProjection;

impl Projection for RoomActivityProjection {
    fn name(&self) -> &'static str {
        "room_activity"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_room_activity", "rm_room_presence"]
    }

    fn subjects(&self) -> Vec<String> {
        vec![
            GIFT_SUBJECT_FILTER.to_owned(),
            CHAT_SUBJECT_FILTER.to_owned(),
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        envelope: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        async move {
            let bucket = OffsetDateTime::from_unix_timestamp(bucket_start(
                envelope.occurred_at.unix_timestamp(),
            ))
            .unwrap_or(envelope.occurred_at);
            let streamer_of = |room: &str| chatroom_streamer(room).map(|s| s.to_string());
            match &envelope.event {
                Event::GiftSent(e) => {
                    let points = i64::from(e.points) * i64::from(e.count);
                    add_activity(tx, &e.recipient, bucket, points, 0).await?;
                }
                Event::ChatMessagePosted(e) => {
                    if let Some(streamer) = streamer_of(&e.room) {
                        add_activity(tx, &streamer, bucket, 0, 1).await?;
                    }
                }
                Event::MemberJoinedRoom(e) => {
                    if let Some(streamer) = streamer_of(&e.room) {
                        sqlx::query(
                            "INSERT INTO rm_room_presence
                                 (room, connection_id, streamer_id, member_id, since)
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        )
                        .bind(&e.room)
                        .bind(&e.connection_id)
                        .bind(streamer)
                        .bind(&e.member_id)
                        .bind(envelope.occurred_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Event::MemberLeftRoom(e) => {
                    sqlx::query(
                        "DELETE FROM rm_room_presence WHERE room = $1 AND connection_id = $2",
                    )
                    .bind(&e.room)
                    .bind(&e.connection_id)
                    .execute(&mut *tx)
                    .await?;
                }
                _ => {}
            }
            Ok(())
        }
        .boxed()
    }
}

/// Adds gift points and chat messages to a room's bucket.
async fn add_activity(
    tx: &mut PgConnection,
    streamer: &str,
    bucket: OffsetDateTime,
    gift_points: i64,
    chat_messages: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rm_room_activity (streamer_id, bucket_start, gift_points, chat_messages)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (streamer_id, bucket_start) DO UPDATE
         SET gift_points = rm_room_activity.gift_points + EXCLUDED.gift_points,
             chat_messages = rm_room_activity.chat_messages + EXCLUDED.chat_messages",
    )
    .bind(streamer)
    .bind(bucket)
    .bind(gift_points)
    .bind(chat_messages)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
