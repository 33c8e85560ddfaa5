//! Statistics (docs/api.md#routes, `/api/stats*`), read from the `stages` read model, never from
//! IVS (docs/design.md#decided-open-points).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use poem::web::Data;
use poem::web::websocket::{WebSocket, WebSocketStream};
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::api_error::ApiError;
use super::common::{is_publisher_live, now_timestamp, require_stage};
use super::envelope::{Envelope, timestamp};
use super::security::ApiKeyAuth;
use super::tags::ApiTags;
use super::upgrade_required::{SocketAnswer, UpgradeRequired, asks_for_websocket};
use super::values;
use crate::app::AppState;
use crate::ivs::arn::StageArn;
use crate::read_models::{self, StageRow};

/// A stage of `GET /api/stats`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageSummary {
    /// The stage's ARN.
    pub stage_arn: String,
    /// The stage's name.
    pub stage_name: String,
    /// Viewers seated on the stage.
    pub viewer_count: u32,
    /// True for a stage the pool created for more viewers (tag `AutoScaled=true`).
    pub auto_scaled: bool,
    /// RFC 3339 UTC with ms.
    pub created_at: String,
}

/// A stage of `GET /api/stats/stages`, with its tags.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageSummaryWithTags {
    /// The stage's ARN.
    pub stage_arn: String,
    /// The stage's name.
    pub stage_name: String,
    /// Viewers seated on the stage.
    pub viewer_count: u32,
    /// True for a stage the pool created for more viewers (tag `AutoScaled=true`).
    pub auto_scaled: bool,
    /// When the stage was created, RFC 3339 UTC with ms.
    pub created_at: String,
    /// The stage's tags.
    pub tags: BTreeMap<String, String>,
}

/// Answer of `GET /api/stats`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct OverallStats {
    /// Sum of the viewers of every stage.
    pub total_viewers: u32,
    /// Stages in the pool (from the pool's events).
    pub active_stages: u32,
    /// Whether the publisher is live (from stream status events).
    pub is_publisher_live: bool,
    /// Every stage: the master first, then in creation order.
    pub stages: Vec<StageSummary>,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Answer of `GET /api/stats/viewers`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ViewerStats {
    /// Sum of the viewers of every stage.
    pub total_viewers: u32,
    /// `real-time sum`.
    pub calculated_from: String,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Answer of `GET /api/stats/stages`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageStats {
    /// Stages in the pool, draining ones included.
    pub total_stages: u32,
    /// Every stage: the master first, then in creation order.
    pub stages: Vec<StageSummaryWithTags>,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// A stage's name, origin and creation time.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageInfo {
    /// The stage's name.
    pub name: String,
    /// True for a stage the pool created for more viewers (tag `AutoScaled=true`).
    pub auto_scaled: bool,
    /// When the stage was created, RFC 3339 UTC with ms.
    pub created_at: String,
}

/// Answer of `GET /api/stats/stages/{stageArn}`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct OneStageStats {
    /// The stage's ARN.
    pub stage_arn: String,
    /// Viewers seated on the stage.
    pub viewer_count: u32,
    /// The stage's name, origin and creation time.
    pub info: StageInfo,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Answer of `GET /api/stats/publisher`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct PublisherStatus {
    /// Whether the publisher is live on the master stage: true after IVS's `Participant Published`
    /// (posted to `/api/ingest/eventbridge`), false after `Participant Unpublished` or before any.
    pub is_live: bool,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Answer of `GET /api/stats`.
#[derive(ApiResponse)]
pub enum OverallStatsResponse {
    /// Totals, the publisher status and every stage.
    #[oai(status = 200)]
    Ok(Json<Envelope<OverallStats>>),
}
/// Answer of `GET /api/stats/viewers`.
#[derive(ApiResponse)]
pub enum ViewerStatsResponse {
    /// The total viewer count.
    #[oai(status = 200)]
    Ok(Json<Envelope<ViewerStats>>),
}
/// Answer of `GET /api/stats/stages`.
#[derive(ApiResponse)]
pub enum StageStatsResponse {
    /// Every stage with its viewer count and tags.
    #[oai(status = 200)]
    Ok(Json<Envelope<StageStats>>),
}
/// Answer of `GET /api/stats/stages/{stageArn}`.
#[derive(ApiResponse)]
pub enum OneStageStatsResponse {
    /// The stage's viewer count and info.
    #[oai(status = 200)]
    Ok(Json<Envelope<OneStageStats>>),
}
/// Answer of `GET /api/stats/publisher`.
#[derive(ApiResponse)]
pub enum PublisherStatusResponse {
    /// Whether the publisher is live.
    #[oai(status = 200)]
    Ok(Json<Envelope<PublisherStatus>>),
}

fn summary(s: &StageRow) -> StageSummary {
    StageSummary {
        stage_arn: s.stage_arn.clone(),
        stage_name: s.name.clone(),
        viewer_count: s.viewer_count.max(0) as u32,
        auto_scaled: s.auto_scaled,
        created_at: timestamp(s.created_at),
    }
}

/// What runs on an upgraded stats socket.
pub type SocketHandler = Box<dyn FnOnce(WebSocketStream) -> BoxFuture<'static, ()> + Send + Sync>;

/// Live statistics (`/api/stats/*`, from the read models) and the stats WebSocket (`/ws`).
#[derive(Default)]
pub struct StatsApi;

#[OpenApi]
impl StatsApi {
    /// Overall statistics
    #[oai(
        path = "/api/stats",
        method = "get",
        tag = "ApiTags::Stats",
        operation_id = "getStats"
    )]
    async fn stats(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
    ) -> Result<OverallStatsResponse, ApiError> {
        let stages = read_models::stages(&state.db).await?;
        Ok(OverallStatsResponse::Ok(Json(Envelope::ok(OverallStats {
            total_viewers: stages.iter().map(|s| s.viewer_count.max(0) as u32).sum(),
            active_stages: stages.len() as u32,
            is_publisher_live: is_publisher_live(&state).await?,
            stages: stages.iter().map(summary).collect(),
            timestamp: now_timestamp(&state.clock),
        }))))
    }

    /// Viewer statistics
    #[oai(
        path = "/api/stats/viewers",
        method = "get",
        tag = "ApiTags::Stats",
        operation_id = "getViewerStats"
    )]
    async fn viewers(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
    ) -> Result<ViewerStatsResponse, ApiError> {
        let stages = read_models::stages(&state.db).await?;
        Ok(ViewerStatsResponse::Ok(Json(Envelope::ok(ViewerStats {
            total_viewers: stages.iter().map(|s| s.viewer_count.max(0) as u32).sum(),
            calculated_from: "real-time sum".to_owned(),
            timestamp: now_timestamp(&state.clock),
        }))))
    }

    /// Stage statistics
    #[oai(
        path = "/api/stats/stages",
        method = "get",
        tag = "ApiTags::Stats",
        operation_id = "getStageStats"
    )]
    async fn stages(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
    ) -> Result<StageStatsResponse, ApiError> {
        let stages = read_models::stages(&state.db).await?;
        Ok(StageStatsResponse::Ok(Json(Envelope::ok(StageStats {
            total_stages: stages.len() as u32,
            stages: stages
                .into_iter()
                .map(|s| StageSummaryWithTags {
                    stage_arn: s.stage_arn,
                    stage_name: s.name,
                    viewer_count: s.viewer_count.max(0) as u32,
                    auto_scaled: s.auto_scaled,
                    created_at: timestamp(s.created_at),
                    tags: s.tags.0,
                })
                .collect(),
            timestamp: now_timestamp(&state.clock),
        }))))
    }

    /// Statistics of one stage
    ///
    /// `stageArn` is URL-encoded. 404 `NOT_FOUND` for an unknown stage.
    #[oai(
        path = "/api/stats/stages/:stageArn",
        method = "get",
        tag = "ApiTags::Stats",
        operation_id = "getOneStageStats"
    )]
    async fn stage(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        /// Stage ARN, URL-encoded.
        #[oai(name = "stageArn")]
        stage_arn: values::Path<StageArn>,
    ) -> Result<OneStageStatsResponse, ApiError> {
        let stage_arn = &stage_arn.0;
        let stage = require_stage(&state, stage_arn).await?;
        Ok(OneStageStatsResponse::Ok(Json(Envelope::ok(
            OneStageStats {
                stage_arn: stage.stage_arn,
                viewer_count: stage.viewer_count.max(0) as u32,
                info: StageInfo {
                    name: stage.name,
                    auto_scaled: stage.auto_scaled,
                    created_at: timestamp(stage.created_at),
                },
                timestamp: now_timestamp(&state.clock),
            },
        ))))
    }

    /// Stats WebSocket
    ///
    /// Upgrades to a WebSocket (`ws://host/ws`). Send `{"type":"subscribe","channel":"stats"}` to
    /// get `{"type":"stats_update","data":{"viewerCount","activeStages","timestamp"}}` at once and
    /// every 5 s; `{"type":"unsubscribe","channel":"stats"}` stops them; `{"type":"ping"}` answers
    /// `{"type":"pong"}`. Bad frames get `{"type":"error","error":CODE,"message"}` (`INVALID_MESSAGE`,
    /// `UNKNOWN_TYPE`, `UNKNOWN_CHANNEL`). The API key goes in the `x-api-key` header or, from a
    /// browser, the `apiKey` query parameter.
    ///
    /// One IP address may hold 100 sockets open and open 20 per second (`ONAIR_WS_*`, counted with
    /// the chat's `/primus`); over that the upgrade is answered 429 with `Retry-After`. Messages
    /// are at most 64 KiB (close 1009), at most 20 frames a second (`TOO_FAST`, then close 1008),
    /// and a socket silent for 90 s (not even a pong) is closed.
    #[oai(
        path = "/ws",
        method = "get",
        tag = "ApiTags::Stats",
        operation_id = "statsSocket"
    )]
    async fn socket(
        &self,
        state: Data<&Arc<AppState>>,
        req: &poem::Request,
        ws: poem::Result<WebSocket>,
        /// API key (alternative to the header).
        #[oai(name = "apiKey")]
        api_key: Query<Option<String>>,
        /// API key.
        #[oai(name = "x-api-key")]
        header_key: Header<Option<String>>,
    ) -> Result<SocketAnswer<SocketHandler>, ApiError> {
        let ws = match ws {
            Ok(ws) => ws,
            Err(_) if !asks_for_websocket(req.headers()) => {
                return Ok(SocketAnswer::UpgradeRequired(UpgradeRequired::of("/ws")));
            }
            Err(e) => return Err(ApiError::validation(format!("invalid request: {e}"))),
        };
        // Counted before the key is checked: a flood costs no key lookup.
        let client = crate::runtime::client_addr::ClientAddr::of(req);
        let permit = state.socket_limits.admit(client.ip, "/ws")?;
        let key = header_key.0.or(api_key.0).ok_or_else(|| {
            ApiError::unauthorized("missing API key (header x-api-key or query apiKey)")
        })?;
        if state.api_keys.verify(&state.db, &key).await?.is_none() {
            return Err(ApiError::unauthorized("invalid API key"));
        }
        let feed = state.stats_feed.clone();
        let handler: SocketHandler =
            Box::new(move |socket| super::stats_socket::serve_socket(socket, feed, permit).boxed());
        Ok(SocketAnswer::Upgraded(
            ws.config(state.socket_limits.websocket_config())
                .on_upgrade(handler),
        ))
    }

    /// Publisher status
    ///
    /// `isLive` is true from a stream start until its end (stream status events).
    #[oai(
        path = "/api/stats/publisher",
        method = "get",
        tag = "ApiTags::Stats",
        operation_id = "getPublisherStatus"
    )]
    async fn publisher(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
    ) -> Result<PublisherStatusResponse, ApiError> {
        Ok(PublisherStatusResponse::Ok(Json(Envelope::ok(
            PublisherStatus {
                is_live: is_publisher_live(&state).await?,
                timestamp: now_timestamp(&state.clock),
            },
        ))))
    }
}
