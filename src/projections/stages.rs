//! Projection `stages` -> table `rm_stages`: every stage of the pool with its active viewer count.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::projection::ReadModelProjection;
use crate::events::{Event, EventEnvelope, pool_subject_filter};

/// The `stages` projection: the pool's events (`onair.pool.default.*`) into `rm_stages`.
pub struct StagesProjection;

/// A change of a stage's viewer count: a viewer joined (+1) or left or expired (-1, never
/// below 0).
fn count_change(event: &Event) -> Option<(&str, bool)> {
    match event {
        Event::ViewerJoined(e) => Some((&e.stage_arn, true)),
        Event::ViewerLeft(crate::events::ViewerLeft { stage_arn, .. })
        | Event::ViewerExpired(crate::events::ViewerExpired { stage_arn, .. }) => {
            Some((stage_arn, false))
        }
        _ => None,
    }
}

/// Applies viewer-count changes (stream order) of stages: the counts are read once, changed in
/// memory one by one as the single statements would (`GREATEST(viewer_count - 1, 0)`), and
/// written back in one statement. A stage without a row is left alone, as by the statements.
async fn apply_counts(
    tx: &mut PgConnection,
    changes: &mut Vec<(String, bool)>,
) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut arns: Vec<String> = changes.iter().map(|c| c.0.clone()).collect();
    arns.sort();
    arns.dedup();
    let rows: Vec<(String, i32)> =
        sqlx::query_as("SELECT stage_arn, viewer_count FROM rm_stages WHERE stage_arn = ANY($1)")
            .bind(&arns)
            .fetch_all(&mut *tx)
            .await?;
    let mut counts: HashMap<String, i32> = rows.into_iter().collect();
    for (arn, joined) in changes.drain(..) {
        if let Some(count) = counts.get_mut(&arn) {
            *count = if joined {
                *count + 1
            } else {
                (*count - 1).max(0)
            };
        }
    }
    let (arns, counts): (Vec<String>, Vec<i32>) = counts.into_iter().unzip();
    sqlx::query(
        "UPDATE rm_stages s SET viewer_count = c.viewer_count
         FROM UNNEST($1::text[], $2::integer[]) AS c(stage_arn, viewer_count)
         WHERE s.stage_arn = c.stage_arn",
    )
    .bind(&arns)
    .bind(&counts)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl ReadModelProjection for StagesProjection {
    /// Viewer-count changes between two stage changes (create, rename, drain, delete) are applied
    /// together (see [`apply_counts`]); stage changes in order after the counts before them.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        let mut changes = Vec::new();
        for envelope in events {
            match count_change(&envelope.event) {
                Some((arn, joined)) => changes.push((arn.to_owned(), joined)),
                None => {
                    apply_counts(tx, &mut changes).await?;
                    self.apply(tx, envelope).await?;
                }
            }
        }
        apply_counts(tx, &mut changes).await
    }

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
