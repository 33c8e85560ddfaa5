//! Projection `viewers` -> tables `rm_viewer_seats` (who sits where, last heartbeat) and
//! `rm_watch_time` (completed watch time per user and stage).

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::projection::ReadModelProjection;
use super::seat_batch::SeatBatch;
use crate::events::{Event, EventEnvelope, heartbeat_subject_filters, pool_subject_filter};

/// The `viewers` projection: the pool's events and heartbeats into `rm_viewer_seats` and
/// `rm_watch_time`.
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

impl ViewersProjection {
    /// Adds the heartbeats of `envelope` (one, or a batch) to `pending`, keeping each seat's
    /// latest time; `false` when it holds none.
    fn collect_heartbeats(
        envelope: &EventEnvelope,
        pending: &mut HashMap<(String, String), OffsetDateTime>,
    ) -> bool {
        let mut add = |user: &str, stage: &str, at: OffsetDateTime| {
            let latest = pending
                .entry((user.to_owned(), stage.to_owned()))
                .or_insert(at);
            *latest = (*latest).max(at);
        };
        match &envelope.event {
            Event::ViewerHeartbeatRecorded(e) => {
                add(&e.user_id, &e.stage_arn, envelope.occurred_at)
            }
            Event::ViewerHeartbeatsRecorded(batch) => {
                for beat in &batch.heartbeats {
                    add(&beat.user_id, &beat.stage_arn, beat.at);
                }
            }
            _ => return false,
        }
        true
    }

    /// Writes coalesced heartbeats: per seat, the latest time (the same as applying them one by one,
    /// since a heartbeat only ever raises `last_heartbeat_at`).
    async fn flush_heartbeats(
        tx: &mut PgConnection,
        pending: &mut HashMap<(String, String), OffsetDateTime>,
    ) -> Result<(), sqlx::Error> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut users = Vec::with_capacity(pending.len());
        let mut stages = Vec::with_capacity(pending.len());
        let mut times = Vec::with_capacity(pending.len());
        for ((user, stage), at) in pending.drain() {
            users.push(user);
            stages.push(stage);
            times.push(at);
        }
        sqlx::query(
            "UPDATE rm_viewer_seats s SET last_heartbeat_at = GREATEST(s.last_heartbeat_at, b.at)
             FROM UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS b(user_id, stage_arn, at)
             WHERE s.user_id = b.user_id AND s.stage_arn = b.stage_arn",
        )
        .bind(users)
        .bind(stages)
        .bind(times)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

impl ReadModelProjection for ViewersProjection {
    /// A batch of heartbeats only is one statement (per seat, the latest time). A batch with joins,
    /// renewals or leaves is folded in memory (see [`SeatBatch`]): the seats it touches are read
    /// once, the events applied to them in order, and the seats and watch times written back in
    /// one statement each.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        if events.iter().any(|e| SeatBatch::changes_seats(&e.event)) {
            return SeatBatch::apply(tx, events).await;
        }
        let mut pending: HashMap<(String, String), OffsetDateTime> = HashMap::new();
        for envelope in events {
            Self::collect_heartbeats(envelope, &mut pending);
        }
        Self::flush_heartbeats(tx, &mut pending).await
    }

    const NAME: &'static str = "viewers";

    const TABLES: &'static [&'static str] = &["rm_viewer_seats", "rm_watch_time"];

    fn subjects() -> Vec<String> {
        let mut subjects = vec![pool_subject_filter()];
        subjects.extend(heartbeat_subject_filters());
        subjects
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
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
            Event::ViewerHeartbeatsRecorded(_) => {
                let mut pending = HashMap::new();
                Self::collect_heartbeats(envelope, &mut pending);
                Self::flush_heartbeats(tx, &mut pending).await?;
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
}
