//! Projection `stages` -> table `rm_stages`: every stage of the pool with its active viewer count.

use sqlx::PgConnection;

use super::projection::ReadModelProjection;
use crate::events::{Event, EventEnvelope, pool_subject_filter};

/// The `stages` projection: the pool's events (`onair.pool.default.*`) into `rm_stages`.
pub struct StagesProjection;

impl ReadModelProjection for StagesProjection {
    const NAME: &'static str = "stages";

    const TABLES: &'static [&'static str] = &["rm_stages"];

    fn subjects() -> Vec<String> {
        vec![pool_subject_filter()]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
        match &envelope.event {
            Event::StageCreated(e) => {
                sqlx::query(
                    "INSERT INTO rm_stages (stage_arn, name, auto_scaled, is_master, tags, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stage_arn) DO NOTHING",
                )
                .bind(&e.stage_arn)
                .bind(&e.name)
                .bind(e.auto_scaled)
                .bind(e.is_master)
                .bind(sqlx::types::Json(&e.tags))
                .bind(envelope.occurred_at)
                .execute(&mut *tx)
                .await?;
            }
            Event::StageRenamed(e) => {
                sqlx::query("UPDATE rm_stages SET name = $2 WHERE stage_arn = $1")
                    .bind(&e.stage_arn)
                    .bind(&e.name)
                    .execute(&mut *tx)
                    .await?;
            }
            Event::StageDrainStarted(e) => {
                sqlx::query("UPDATE rm_stages SET draining = true WHERE stage_arn = $1")
                    .bind(&e.stage_arn)
                    .execute(&mut *tx)
                    .await?;
            }
            Event::StageDrainEnded(e) => {
                sqlx::query("UPDATE rm_stages SET draining = false WHERE stage_arn = $1")
                    .bind(&e.stage_arn)
                    .execute(&mut *tx)
                    .await?;
            }
            Event::StageDeleted(e) => {
                sqlx::query("DELETE FROM rm_stages WHERE stage_arn = $1")
                    .bind(&e.stage_arn)
                    .execute(&mut *tx)
                    .await?;
            }
            Event::ViewerJoined(e) => {
                sqlx::query(
                    "UPDATE rm_stages SET viewer_count = viewer_count + 1 WHERE stage_arn = $1",
                )
                .bind(&e.stage_arn)
                .execute(&mut *tx)
                .await?;
            }
            Event::ViewerLeft(crate::events::ViewerLeft { stage_arn, .. })
            | Event::ViewerExpired(crate::events::ViewerExpired { stage_arn, .. }) => {
                sqlx::query(
                    "UPDATE rm_stages SET viewer_count = GREATEST(viewer_count - 1, 0)
                     WHERE stage_arn = $1",
                )
                .bind(stage_arn)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
