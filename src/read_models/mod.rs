//! Queries behind the GET routes, over the read models the projectors build.

use std::collections::BTreeMap;

use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;

/// A row of `rm_stages`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StageRow {
    /// The stage ARN (`arn:aws:ivs:<region>:<account>:stage/<id>`).
    pub stage_arn: String,
    /// Current stage name (renames apply).
    pub name: String,
    /// Created by scale-up (tag `AutoScaled=true`); only such stages are ever scaled down.
    pub auto_scaled: bool,
    /// The master stage, which publisher tokens are for.
    pub is_master: bool,
    /// The tags the stage was created with.
    pub tags: Json<BTreeMap<String, String>>,
    /// When the stage was created (event time, UTC).
    pub created_at: OffsetDateTime,
    /// Active viewers seated on the stage (joins minus leaves and expiries).
    pub viewer_count: i32,
    /// Scaling down: the stage takes no new viewers and is deleted once empty.
    pub draining: bool,
}

/// Every stage, master first, then by creation time.
pub async fn stages(db: &PgPool) -> Result<Vec<StageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stage_arn, name, auto_scaled, is_master, tags, created_at, viewer_count, draining
         FROM rm_stages ORDER BY is_master DESC, created_at, stage_arn",
    )
    .fetch_all(db)
    .await
}

/// One stage by ARN; `None` if no such stage exists (or it was deleted).
pub async fn stage(db: &PgPool, stage_arn: &str) -> Result<Option<StageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stage_arn, name, auto_scaled, is_master, tags, created_at, viewer_count, draining
         FROM rm_stages WHERE stage_arn = $1",
    )
    .bind(stage_arn)
    .fetch_optional(db)
    .await
}

/// A page of stages in creation order, starting after `after` (the `(created_at, stage_arn)` of
/// the last stage of the previous page), and the total number of stages.
pub async fn stage_page(
    db: &PgPool,
    after: Option<(OffsetDateTime, String)>,
    limit: u32,
) -> Result<(Vec<StageRow>, i64), sqlx::Error> {
    let (after_time, after_arn) = match after {
        Some((t, arn)) => (Some(t), Some(arn)),
        None => (None, None),
    };
    let rows: Vec<StageRow> = sqlx::query_as(
        "SELECT stage_arn, name, auto_scaled, is_master, tags, created_at, viewer_count, draining
         FROM rm_stages
         WHERE $1::timestamptz IS NULL OR (created_at, stage_arn) > ($1, $2)
         ORDER BY created_at, stage_arn LIMIT $3",
    )
    .bind(after_time)
    .bind(after_arn)
    .bind(limit as i64)
    .fetch_all(db)
    .await?;
    let (total,): (i64,) = sqlx::query_as("SELECT count(*) FROM rm_stages")
        .fetch_one(db)
        .await?;
    Ok((rows, total))
}

/// A row of `rm_viewer_seats`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ViewerRow {
    /// The client's user id, without the `viewer-` prefix of the IVS participant user id.
    pub user_id: String,
    /// IVS participant id of the viewer's latest token.
    pub participant_id: String,
    /// When the viewer took the seat (event time, UTC).
    pub joined_at: OffsetDateTime,
    /// The latest of join, heartbeat and token renewal (event time, UTC).
    pub last_heartbeat_at: OffsetDateTime,
}

/// The viewers seated on a stage, earliest join first.
pub async fn viewers(db: &PgPool, stage_arn: &str) -> Result<Vec<ViewerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, participant_id, joined_at, last_heartbeat_at FROM rm_viewer_seats
         WHERE stage_arn = $1 ORDER BY joined_at, user_id",
    )
    .bind(stage_arn)
    .fetch_all(db)
    .await
}

/// Watch time of a user on a stage, in whole seconds: completed sessions plus the current one up to
/// its last heartbeat. `None` if the user never watched that stage.
pub async fn watch_duration_seconds(
    db: &PgPool,
    user_id: &str,
    stage_arn: &str,
) -> Result<Option<u64>, sqlx::Error> {
    let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT w.completed_seconds,
                FLOOR(EXTRACT(EPOCH FROM (s.last_heartbeat_at - s.joined_at)))::bigint
         FROM (SELECT $1::text AS user_id, $2::text AS stage_arn) k
         LEFT JOIN rm_watch_time w ON w.user_id = k.user_id AND w.stage_arn = k.stage_arn
         LEFT JOIN rm_viewer_seats s ON s.user_id = k.user_id AND s.stage_arn = k.stage_arn
         WHERE w.user_id IS NOT NULL OR s.user_id IS NOT NULL",
    )
    .bind(user_id)
    .bind(stage_arn)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(completed, current)| {
        (completed.unwrap_or(0).max(0) + current.unwrap_or(0).max(0)) as u64
    }))
}

/// Whether a publisher is live on the stage (false when no stream status was ever recorded).
pub async fn is_publisher_live(db: &PgPool, stage_arn: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(bool,)> =
        sqlx::query_as("SELECT is_live FROM rm_publisher_status WHERE stage_arn = $1")
            .bind(stage_arn)
            .fetch_optional(db)
            .await?;
    Ok(row.is_some_and(|(live,)| live))
}

pub mod chat;
pub mod checkpoints;
pub mod dashboard;
pub mod gift_records;
pub mod health;
pub mod presence;
pub mod rooms;
pub mod stats_feed;
