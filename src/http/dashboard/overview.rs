//! The figures of the dashboard (`GET /dashboard/api/overview`, and the `overview` events of the
//! feed), gathered from the read models, the pool, the stream's consumers, the supervisor and the
//! viewer history.
//!
//! Shape (JSON, camelCase): `{timestamp, totalViewers, publisherLive, scaleUpThreshold,
//! maxViewersPerStage, stages: [{stageArn, name, viewerCount, isMaster, autoScaled, draining}],
//! viewerHistory: [[unixSeconds, viewers]], liveRooms, rooms: [{streamerId, nickname, viewers,
//! followers, popularity, liveSince, topGivers: [{memberId, nickname, score}]}], rates:
//! {windowSeconds, chatMessagesPerSecond, giftsPerSecond}, projections: [{name, checkpoint,
//! pending}], instances: [{instanceId, lastSeen, thisInstance}], tasks: [{name, state,
//! restarts}]}`.

use std::time::Duration;

use serde_json::{Value, json};

use super::history::ViewerHistory;
use crate::app::AppState;
use crate::http::api_error::ApiError;
use crate::http::common::is_publisher_live;
use crate::http::envelope::timestamp;
use crate::{projections, read_models};

/// Live rooms shown, most popular first.
pub const ROOMS_SHOWN: i64 = 10;
/// Givers shown per room (its current session's ranking).
pub const GIVERS_SHOWN: i64 = 3;
/// The window of the chat and gift rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The dashboard's figures now.
pub async fn overview(state: &AppState, history: &ViewerHistory) -> Result<Value, ApiError> {
    let now = state.clock.now();
    let limits = state.pool.limits();
    let stages = read_models::stages(&state.db).await?;
    let total_viewers: i64 = stages
        .iter()
        .map(|s| i64::from(s.viewer_count.max(0)))
        .sum();
    let stages: Vec<Value> = stages
        .into_iter()
        .map(|s| {
            json!({
                "stageArn": s.stage_arn,
                "name": s.name,
                "viewerCount": s.viewer_count.max(0),
                "isMaster": s.is_master,
                "autoScaled": s.auto_scaled,
                "draining": s.draining,
            })
        })
        .collect();

    let (rooms, live_rooms) =
        read_models::dashboard::live_rooms(&state.db, ROOMS_SHOWN, GIVERS_SHOWN).await?;
    let rooms: Vec<Value> = rooms
        .into_iter()
        .map(|r| {
            json!({
                "streamerId": r.room.streamer_id,
                "nickname": r.room.nickname,
                "title": r.room.title,
                "viewers": r.room.viewers,
                "followers": r.room.followers,
                "popularity": r.room.popularity,
                "liveSince": r.room.live_since.map(timestamp),
                "topGivers": r.top_givers.into_iter().map(|g| json!({
                    "memberId": g.member_id,
                    "nickname": g.nickname,
                    "score": g.score,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();

    let (messages, gifts) =
        read_models::dashboard::activity_since(&state.db, now - RATE_WINDOW).await?;
    let window = RATE_WINDOW.as_secs_f64();

    let stream = state.store.stream().await.ok();
    let mut lags = Vec::new();
    for name in &state.projection_names {
        let checkpoint = projections::checkpoint(&state.db, name).await?;
        let pending = match &stream {
            Some(stream) => projections::consumer_backlog(stream, name).await,
            None => None,
        };
        lags.push(json!({"name": name, "checkpoint": checkpoint, "pending": pending}));
    }

    let this_instance = state.chat.instance_id();
    let instances: Vec<Value> =
        read_models::dashboard::live_instances(&state.db, state.chat.settings().instance_timeout)
            .await?
            .into_iter()
            .map(|i| {
                json!({
                    "instanceId": i.instance_id,
                    "lastSeen": timestamp(i.last_seen),
                    "thisInstance": i.instance_id == this_instance,
                })
            })
            .collect();
    let mut tasks = state.supervisor.statuses();
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    let tasks: Vec<Value> = tasks
        .into_iter()
        .map(|t| json!({"name": t.name, "state": t.state.as_str(), "restarts": t.restarts}))
        .collect();

    Ok(json!({
        "timestamp": timestamp(now),
        "totalViewers": total_viewers,
        "publisherLive": is_publisher_live(state).await?,
        "scaleUpThreshold": limits.scale_up_threshold,
        "maxViewersPerStage": limits.max_viewers_per_stage,
        "stages": stages,
        "viewerHistory": history.samples(),
        "liveRooms": live_rooms,
        "rooms": rooms,
        "rates": {
            "windowSeconds": RATE_WINDOW.as_secs(),
            "chatMessagesPerSecond": messages as f64 / window,
            "giftsPerSecond": gifts as f64 / window,
        },
        "projections": lags,
        "instances": instances,
        "tasks": tasks,
    }))
}
