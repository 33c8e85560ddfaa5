//! Viewer routes (docs/api.md#routes).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::api_error::ApiError;
use super::common::{IdempotencyHeader, idempotency_event_id, now_timestamp, require_stage};
use super::envelope::{Envelope, timestamp};
use super::field::{Checked, UserIdRule};
use super::security::ApiKeyAuth;
use super::tags::ApiTags;
use super::values;
use crate::app::AppState;
use crate::domain::user_id::UserId;
use crate::domain::watch_time::format_watch_duration;
use crate::ivs::arn::StageArn;
use crate::read_models;

/// A viewer on a stage.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ViewerOnStage {
    /// The app's user id.
    pub user_id: Checked<String, UserIdRule>,
    /// The stage ARN.
    pub stage_arn: Checked<StageArn>,
}

/// Answer of `POST /api/viewer/heartbeat`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct HeartbeatRecorded {
    /// The user id as sent (without the token's `viewer-` prefix).
    pub user_id: String,
    /// The stage the viewer is seated on.
    pub stage_arn: String,
    /// When the heartbeat was recorded, RFC 3339 UTC with ms.
    pub last_heartbeat: String,
}

/// A watch time: this session's for `POST /api/viewer/leave`, the total on the stage for
/// `GET /api/viewer/duration`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct WatchDuration {
    /// The user id as sent (without the token's `viewer-` prefix).
    pub user_id: String,
    /// The stage watched.
    pub stage_arn: String,
    /// Whole seconds.
    pub watch_duration: u64,
    /// e.g. `30分 50秒`.
    pub watch_duration_formatted: String,
}

/// A viewer seated on a stage.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ViewerEntry {
    /// The app's user id (without the token's `viewer-` prefix).
    pub user_id: String,
    /// IVS participant id of the viewer's latest token.
    pub participant_id: String,
    /// RFC 3339 UTC with ms.
    pub joined_at: String,
    /// RFC 3339 UTC with ms.
    pub last_heartbeat: String,
}

/// Answer of `GET /api/viewer/list/{stageArn}`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ViewerList {
    /// The stage asked about.
    pub stage_arn: String,
    /// The viewers seated on it, earliest join first.
    pub viewers: Vec<ViewerEntry>,
    /// Number of viewers listed.
    pub total_viewers: u32,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Answer of `POST /api/viewer/heartbeat`.
#[derive(ApiResponse)]
pub enum HeartbeatResponse {
    /// Recorded; `X-Event-Sequence` is the heartbeat event's stream sequence.
    #[oai(status = 200)]
    Ok(
        Json<Envelope<HeartbeatRecorded>>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
}

/// Answer of `POST /api/viewer/leave`.
#[derive(ApiResponse)]
pub enum LeaveResponse {
    /// The seat is free; `watchDuration` is this session's length.
    #[oai(status = 200)]
    Ok(
        Json<Envelope<WatchDuration>>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
}

/// Answer of `GET /api/viewer/list/{stageArn}`.
#[derive(ApiResponse)]
pub enum ViewerListResponse {
    /// The stage's viewers.
    #[oai(status = 200)]
    Ok(Json<Envelope<ViewerList>>),
}

/// Answer of `GET /api/viewer/duration`.
#[derive(ApiResponse)]
pub enum WatchDurationResponse {
    /// The user's total watch time on the stage.
    #[oai(status = 200)]
    Ok(Json<Envelope<WatchDuration>>),
}

/// The viewer API (`/api/viewer/*`): heartbeats, leaving, viewer lists and watch times.
#[derive(Default)]
pub struct ViewerApi;

#[OpenApi]
impl ViewerApi {
    /// Send a viewer heartbeat
    ///
    /// Keeps the viewer's seat: send one every 30 s; a viewer silent for 60 s loses the seat.
    /// 404 `NOT_FOUND` when the viewer holds no seat on that stage (ask for a new viewer token).
    #[oai(
        path = "/api/viewer/heartbeat",
        method = "post",
        tag = "ApiTags::Viewer",
        operation_id = "sendViewerHeartbeat"
    )]
    async fn heartbeat(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        body: Json<ViewerOnStage>,
    ) -> Result<HeartbeatResponse, ApiError> {
        let body = body.0;
        let user = UserId::parse(&body.user_id.get("userId")?, "userId")?;
        let stage_arn = body.stage_arn.get("stageArn")?;
        let (at, published) = state.pool.record_heartbeat(&user, &stage_arn).await?;
        Ok(HeartbeatResponse::Ok(
            Json(Envelope::ok(HeartbeatRecorded {
                user_id: user.to_string(),
                stage_arn: stage_arn.to_string(),
                last_heartbeat: timestamp(at),
            })),
            published.sequence,
        ))
    }

    /// Leave a stage
    ///
    /// Frees the viewer's seat and answers this session's watch duration.
    #[oai(
        path = "/api/viewer/leave",
        method = "post",
        tag = "ApiTags::Viewer",
        operation_id = "leaveStage"
    )]
    async fn leave(
        &self,
        state: Data<&Arc<AppState>>,
        auth: ApiKeyAuth,
        body: Json<ViewerOnStage>,
        /// Optional idempotency key.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyHeader,
    ) -> Result<LeaveResponse, ApiError> {
        let body = body.0;
        let user = UserId::parse(&body.user_id.get("userId")?, "userId")?;
        let stage_arn = body.stage_arn.get("stageArn")?;
        let event_id = idempotency_event_id(&auth, "viewer-leave", &idempotency_key);
        let (left, published) = state.pool.leave(&user, &stage_arn, event_id).await?;
        Ok(LeaveResponse::Ok(
            Json(Envelope::ok(WatchDuration {
                user_id: left.user_id,
                stage_arn: left.stage_arn,
                watch_duration: left.watch_duration_seconds,
                watch_duration_formatted: format_watch_duration(left.watch_duration_seconds),
            })),
            published.sequence,
        ))
    }

    /// List the viewers of a stage
    ///
    /// `stageArn` is URL-encoded. 404 `NOT_FOUND` for an unknown stage.
    #[oai(
        path = "/api/viewer/list/:stageArn",
        method = "get",
        tag = "ApiTags::Viewer",
        operation_id = "listStageViewers"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        /// Stage ARN, URL-encoded.
        #[oai(name = "stageArn")]
        stage_arn: values::Path<StageArn>,
    ) -> Result<ViewerListResponse, ApiError> {
        let stage_arn = &stage_arn.0;
        require_stage(&state, stage_arn).await?;
        let viewers = read_models::viewers(&state.db, stage_arn).await?;
        Ok(ViewerListResponse::Ok(Json(Envelope::ok(ViewerList {
            stage_arn: stage_arn.to_string(),
            total_viewers: viewers.len() as u32,
            viewers: viewers
                .into_iter()
                .map(|v| ViewerEntry {
                    user_id: v.user_id,
                    participant_id: v.participant_id,
                    joined_at: timestamp(v.joined_at),
                    last_heartbeat: timestamp(v.last_heartbeat_at),
                })
                .collect(),
            timestamp: now_timestamp(&state.clock),
        }))))
    }

    /// Get a viewer's watch duration
    ///
    /// Total watch time of the user on the stage: finished sessions plus the current one up to its
    /// last heartbeat, in whole seconds. 0 for a user who never watched it; 404 for an unknown stage.
    #[oai(
        path = "/api/viewer/duration",
        method = "get",
        tag = "ApiTags::Viewer",
        operation_id = "getWatchDuration"
    )]
    async fn duration(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        /// The app's user id.
        #[oai(
            name = "userId",
            validator(
                min_length = 1,
                max_length = 100,
                pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
            )
        )]
        user_id: Query<String>,
        /// Stage ARN.
        #[oai(name = "stageArn")]
        stage_arn: Query<StageArn>,
    ) -> Result<WatchDurationResponse, ApiError> {
        let user = UserId::parse(&user_id.0, "userId")?;
        let stage_arn = &stage_arn.0;
        require_stage(&state, stage_arn).await?;
        let seconds = read_models::watch_duration_seconds(&state.db, user.as_str(), stage_arn)
            .await?
            .unwrap_or(0);
        Ok(WatchDurationResponse::Ok(Json(Envelope::ok(
            WatchDuration {
                user_id: user.to_string(),
                stage_arn: stage_arn.to_string(),
                watch_duration: seconds,
                watch_duration_formatted: format_watch_duration(seconds),
            },
        ))))
    }
}
