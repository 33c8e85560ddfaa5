//! Projection `room_activity` -> table `rm_room_activity`: gift points (and, with the chat, chat
//! messages) per room per 10-second bucket of event time: the inputs of the popularity window
//! (src/domain/popularity.rs).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::Projection;
use crate::domain::popularity::bucket_start;
use crate::events::{Event, EventEnvelope, GIFT_SUBJECT_FILTER};

pub struct RoomActivityProjection;

impl Projection for RoomActivityProjection {
    fn name(&self) -> &'static str {
        "room_activity"
    }

    fn subjects(&self) -> Vec<String> {
        vec![GIFT_SUBJECT_FILTER.to_owned()]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        envelope: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        async move {
            if let Event::GiftSent(e) = &envelope.event {
                let bucket = OffsetDateTime::from_unix_timestamp(bucket_start(
                    envelope.occurred_at.unix_timestamp(),
                ))
                .unwrap_or(envelope.occurred_at);
                let points = i64::from(e.points) * i64::from(e.count);
                sqlx::query(
                    "INSERT INTO rm_room_activity (streamer_id, bucket_start, gift_points)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (streamer_id, bucket_start)
                     DO UPDATE SET gift_points = rm_room_activity.gift_points + EXCLUDED.gift_points",
                )
                .bind(&e.recipient)
                .bind(bucket)
                .bind(points)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        }
        .boxed()
    }
}
