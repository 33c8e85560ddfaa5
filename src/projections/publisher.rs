//! Projection `publisher` -> table `rm_publisher_status`: is a publisher live on each stage
//! (`isPublisherLive` of the Stage API). The newest event time wins, so EventBridge's late or
//! out-of-order deliveries cannot flip a newer state back.

use sqlx::PgConnection;

use super::projection::ReadModelProjection;
use crate::events::{Event, EventEnvelope, STREAM_SUBJECT_FILTER};

/// The `publisher` projection: `onair.stream.>` into `rm_publisher_status`.
pub struct PublisherProjection;

impl ReadModelProjection for PublisherProjection {
    const NAME: &'static str = "publisher";

    const TABLES: &'static [&'static str] = &["rm_publisher_status"];

    fn subjects() -> Vec<String> {
        vec![STREAM_SUBJECT_FILTER.to_owned()]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
        let (stage_arn, participant_id, is_live) = match &envelope.event {
            Event::StreamStarted(e) => (&e.stage_arn, &e.participant_id, true),
            Event::StreamEnded(e) => (&e.stage_arn, &e.participant_id, false),
            _ => return Ok(()),
        };
        sqlx::query(
            "INSERT INTO rm_publisher_status (stage_arn, is_live, participant_id, changed_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (stage_arn) DO UPDATE SET is_live = EXCLUDED.is_live,
               participant_id = EXCLUDED.participant_id, changed_at = EXCLUDED.changed_at
             WHERE rm_publisher_status.changed_at <= EXCLUDED.changed_at",
        )
        .bind(stage_arn)
        .bind(is_live)
        .bind(participant_id)
        .bind(envelope.occurred_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
