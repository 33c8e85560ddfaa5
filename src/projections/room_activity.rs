//! Projection `room_activity` -> tables `rm_room_activity` (gift points and chat messages per room
//! per 10-second bucket of event time) and `rm_room_presence` (verified members in each chat room):
//! the inputs of the popularity (src/domain/popularity.rs).

use std::collections::BTreeMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::projection::ReadModelProjection;
use crate::domain::member::chatroom_streamer;
use crate::domain::popularity::bucket_start;
use crate::events::{CHAT_SUBJECT_FILTER, Event, EventEnvelope, GIFT_SUBJECT_FILTER};

/// The `room_activity` projection: `onair.gift.>` and `onair.chat.>` into `rm_room_activity` and
/// `rm_room_presence`.
pub struct RoomActivityProjection;

impl ReadModelProjection for RoomActivityProjection {
    const NAME: &'static str = "room_activity";

    const TABLES: &'static [&'static str] = &["rm_room_activity", "rm_room_presence"];

    fn subjects() -> Vec<String> {
        vec![
            GIFT_SUBJECT_FILTER.to_owned(),
            CHAT_SUBJECT_FILTER.to_owned(),
        ]
    }

    /// Gift points and chat messages are summed per room and bucket over the batch and added in
    /// one statement (additions commute); presence changes are applied in order.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        let mut sums: BTreeMap<(String, OffsetDateTime), (i64, i64)> = BTreeMap::new();
        for envelope in events {
            match activity(envelope) {
                Some((streamer, points, messages)) => {
                    let sum = sums.entry((streamer, bucket_of(envelope))).or_default();
                    sum.0 += points;
                    sum.1 += messages;
                }
                None => self.apply(tx, envelope).await?,
            }
        }
        add_activity(tx, sums).await
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
        if let Some((streamer, points, messages)) = activity(envelope) {
            let sums = BTreeMap::from([((streamer, bucket_of(envelope)), (points, messages))]);
            return add_activity(tx, sums).await;
        }
        let streamer_of = |room: &str| chatroom_streamer(room).map(|s| s.to_string());
        match &envelope.event {
            Event::MemberJoinedRoom(e) => {
                if let Some(streamer) = streamer_of(&e.room) {
                    sqlx::query(
                        "INSERT INTO rm_room_presence
                             (room, connection_id, streamer_id, member_id, since, instance_id)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(&e.room)
                    .bind(&e.connection_id)
                    .bind(streamer)
                    .bind(&e.member_id)
                    .bind(envelope.occurred_at)
                    .bind(&e.instance_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Event::MemberLeftRoom(e) => {
                sqlx::query("DELETE FROM rm_room_presence WHERE room = $1 AND connection_id = $2")
                    .bind(&e.room)
                    .bind(&e.connection_id)
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Adds gift points and chat messages to a room's bucket.
/// What an event adds to its room's activity: (streamer, gift points, chat messages).
fn activity(envelope: &EventEnvelope) -> Option<(String, i64, i64)> {
    match &envelope.event {
        Event::GiftSent(e) => Some((
            e.recipient.clone(),
            i64::from(e.points) * i64::from(e.count),
            0,
        )),
        Event::ChatMessagePosted(e) => {
            chatroom_streamer(&e.room).map(|streamer| (streamer.to_string(), 0, 1))
        }
        _ => None,
    }
}

/// The start of the 10 s bucket of the event's time (src/domain/popularity.rs).
fn bucket_of(envelope: &EventEnvelope) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(bucket_start(envelope.occurred_at.unix_timestamp()))
        .unwrap_or(envelope.occurred_at)
}

/// Adds `(gift points, chat messages)` per (streamer, bucket start).
async fn add_activity(
    tx: &mut PgConnection,
    sums: BTreeMap<(String, OffsetDateTime), (i64, i64)>,
) -> Result<(), sqlx::Error> {
    if sums.is_empty() {
        return Ok(());
    }
    let (mut streamers, mut buckets, mut points, mut messages) = (vec![], vec![], vec![], vec![]);
    for ((streamer, bucket), (p, m)) in sums {
        streamers.push(streamer);
        buckets.push(bucket);
        points.push(p);
        messages.push(m);
    }
    sqlx::query(
        "INSERT INTO rm_room_activity (streamer_id, bucket_start, gift_points, chat_messages)
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[])
         ON CONFLICT (streamer_id, bucket_start) DO UPDATE
         SET gift_points = rm_room_activity.gift_points + EXCLUDED.gift_points,
             chat_messages = rm_room_activity.chat_messages + EXCLUDED.chat_messages",
    )
    .bind(&streamers)
    .bind(&buckets)
    .bind(&points)
    .bind(&messages)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
