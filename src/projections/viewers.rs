//! Projection `viewers` -> tables `rm_viewer_seats` (who sits where, last heartbeat) and
//! `rm_watch_time` (completed watch time per user and stage).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;

use super::Projection;
use crate::events::{Event, EventEnvelope, HEARTBEAT_SUBJECT_FILTER, pool_subject_filter};

pub struct ViewersProjection;

impl ViewersProjection {
    async fn end_session(
        tx: &mut PgConnection,
        user_id: &str,
        stage_arn: &str,
        seconds: u64,
    ) -> Result<(), sqlx::Error> {
        let removed =
            sqlx::query("DELETE FROM rm_viewer_seats WHERE user_id = $1 AND stage_arn = $2")
                .bind(user_id)
                .bind(stage_arn)
                .execute(&mut *tx)
                .await?;
        if removed.rows_affected() > 0 {
            sqlx::query(
                "INSERT INTO rm_watch_time (user_id, stage_arn, completed_seconds, completed_sessions)
                 VALUES ($1, $2, $3, 1)
                 ON CONFLICT (user_id, stage_arn) DO UPDATE SET
                   completed_seconds = rm_watch_time.completed_seconds + EXCLUDED.completed_seconds,
                   completed_sessions = rm_watch_time.completed_sessions + 1",
            )
            .bind(user_id)
            .bind(stage_arn)
            .bind(seconds as i64)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

impl Projection for ViewersProjection {
    fn name(&self) -> &'static str {
        "viewers"
    }

    fn subjects(&self) -> Vec<String> {
        vec![pool_subject_filter(), HEARTBEAT_SUBJECT_FILTER.to_owned()]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        envelope: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        async move {
            let at = envelope.occurred_at;
            match &envelope.event {
                Event::ViewerJoined(e) => {
                    sqlx::query(
                        "INSERT INTO rm_viewer_seats (user_id, stage_arn, participant_id, joined_at, last_heartbeat_at)
                         VALUES ($1, $2, $3, $4, $4)
                         ON CONFLICT (user_id) DO UPDATE SET stage_arn = EXCLUDED.stage_arn,
                           participant_id = EXCLUDED.participant_id, joined_at = EXCLUDED.joined_at,
                           last_heartbeat_at = EXCLUDED.last_heartbeat_at",
                    )
                    .bind(&e.user_id)
                    .bind(&e.stage_arn)
                    .bind(&e.participant_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Event::ViewerTokenRenewed(e) => {
                    sqlx::query(
                        "UPDATE rm_viewer_seats SET participant_id = $3,
                           last_heartbeat_at = GREATEST(last_heartbeat_at, $4)
                         WHERE user_id = $1 AND stage_arn = $2",
                    )
                    .bind(&e.user_id)
                    .bind(&e.stage_arn)
                    .bind(&e.participant_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Event::ViewerHeartbeatRecorded(e) => {
                    sqlx::query(
                        "UPDATE rm_viewer_seats SET last_heartbeat_at = GREATEST(last_heartbeat_at, $3)
                         WHERE user_id = $1 AND stage_arn = $2",
                    )
                    .bind(&e.user_id)
                    .bind(&e.stage_arn)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Event::ViewerLeft(e) => {
                    Self::end_session(tx, &e.user_id, &e.stage_arn, e.watch_duration_seconds).await?
                }
                Event::ViewerExpired(e) => {
                    Self::end_session(tx, &e.user_id, &e.stage_arn, e.watch_duration_seconds).await?
                }
                _ => {}
            }
            Ok(())
        }
        .boxed()
    }
}
