//! Stage routes (docs/api.md#routes). Lists come from the `stages` read model, never from
//! calling IVS per request (docs/design.md#decided-open-points); changes go through the stage pool
//! as events.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::api_error::ApiError;
use super::common::{IdempotencyHeader, idempotency_event_id, now_timestamp, require_stage};
use super::envelope::{Envelope, timestamp};
use super::field::{Checked, StageNameRule, TagsRule};
use super::security::ApiKeyAuth;
use super::tags::ApiTags;
use super::values;
use crate::app::AppState;
use crate::ivs::arn::StageArn;
use crate::read_models::{self, StageRow};

/// IVS limits on stage names and tags: a name of 1 to 128 characters of `[a-zA-Z0-9-_]`, at most
/// 50 tags, keys of 1 to 128 characters, values of at most 256.
const MAX_NAME_CHARS: usize = 128;
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

/// A stage of `GET /api/stage/list`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageListItem {
    /// The stage's ARN (`arn:aws:ivs:<region>:<account>:stage/<id>`).
    pub stage_arn: String,
    /// The stage's name, e.g. `master-stage`, or `auto-stage-<unix ms>` for an auto-scaled one.
    pub name: String,
    /// Viewers seated on the stage (joined, not yet left or expired).
    pub viewer_count: u32,
    /// True for a stage the pool created for more viewers (tag `AutoScaled=true`); false for
    /// the master and for stages made with `POST /api/stage`.
    pub auto_scaled: bool,
    /// True while a scale-down drains the stage (no new viewers; deleted when empty).
    pub draining: bool,
    /// RFC 3339 UTC with ms.
    pub created_at: String,
    /// The stage's tags: `Environment` and `ManagedBy=onair` on every stage onair creates,
    /// `AutoScaled=true` on auto-scaled ones, plus any given to `POST /api/stage`.
    pub tags: BTreeMap<String, String>,
}

/// A page of `GET /api/stage/list`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageList {
    /// This page's stages, in creation order (oldest first).
    pub stages: Vec<StageListItem>,
    /// All stages in the pool.
    pub total_stages: u32,
    /// Pass as `nextToken` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_token: Option<String>,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// A stage as `GET /api/stage/{stageArn}` and `GET /api/stage/master/info` show it.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageDetail {
    /// The stage's ARN.
    pub arn: String,
    /// The stage's name.
    pub name: String,
    /// IVS `activeSessionId` while the stage has an active session (always null with the local
    /// provider).
    #[oai(nullable)]
    pub active_session_id: Option<String>,
    /// The stage's tags.
    pub tags: BTreeMap<String, String>,
}

/// Answer of `GET /api/stage/master/info`: the stage the publisher broadcasts on.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct MasterStageInfo {
    /// The master stage.
    pub stage: StageDetail,
    /// Viewers seated on the master stage.
    pub viewer_count: u32,
    /// Always true.
    pub is_master: bool,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Answer of `GET /api/stage/{stageArn}`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageAnswer {
    /// The stage asked for.
    pub stage: StageDetail,
    /// Viewers seated on the stage.
    pub viewer_count: u32,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// A stage made by `POST /api/stage`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreatedStage {
    /// The new stage's ARN.
    pub arn: String,
    /// The name as given.
    pub name: String,
    /// The given tags plus `Environment` (`ONAIR_ENVIRONMENT`, default `development`) and
    /// `ManagedBy=onair`, which replace given tags of the same key.
    pub tags: BTreeMap<String, String>,
}

/// Answer of `POST /api/stage`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageCreatedAnswer {
    /// The stage created.
    pub stage: CreatedStage,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// A stage renamed by `PUT /api/stage/{stageArn}`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RenamedStage {
    /// The stage's ARN.
    pub arn: String,
    /// The new name.
    pub name: String,
}

/// Answer of `PUT /api/stage/{stageArn}`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageRenamedAnswer {
    /// The renamed stage.
    pub stage: RenamedStage,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// `{"success": true, "message": "Stage 已刪除", "timestamp": ...}` (the seed's shape).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct StageDeletedAnswer {
    /// Always `true`.
    pub success: bool,
    /// `Stage 已刪除` ("stage deleted").
    pub message: String,
    /// When this answer was made, RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Body of `POST /api/stage`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreateStageRequest {
    /// 1 to 128 characters of `[a-zA-Z0-9-_]` (IVS rule).
    pub name: Checked<String, StageNameRule>,
    /// Tags (at most 50; keys up to 128 characters, values up to 256); `Environment` and
    /// `ManagedBy=onair` are added.
    pub tags: Checked<Option<BTreeMap<String, String>>, TagsRule>,
}

/// Body of `PUT /api/stage/{stageArn}`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RenameStageRequest {
    /// The new name: 1 to 128 characters of `[a-zA-Z0-9-_]`.
    pub name: Checked<String, StageNameRule>,
}

/// Answer of `GET /api/stage/list`.
#[derive(ApiResponse)]
pub enum StageListResponse {
    /// A page of stages.
    #[oai(status = 200)]
    Ok(Json<Envelope<StageList>>),
}
/// Answer of `GET /api/stage/master/info`.
#[derive(ApiResponse)]
pub enum MasterStageResponse {
    /// The master stage and its viewer count.
    #[oai(status = 200)]
    Ok(Json<Envelope<MasterStageInfo>>),
}
/// Answer of `GET /api/stage/{stageArn}`.
#[derive(ApiResponse)]
pub enum StageResponse {
    /// The stage and its viewer count.
    #[oai(status = 200)]
    Ok(Json<Envelope<StageAnswer>>),
}
/// Answer of `POST /api/stage`.
#[derive(ApiResponse)]
pub enum CreateStageResponse {
    /// Created; `X-Event-Sequence` is the stream sequence of `stage.created`.
    #[oai(status = 200)]
    Ok(
        Json<Envelope<StageCreatedAnswer>>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
}
/// Answer of `PUT /api/stage/{stageArn}`.
#[derive(ApiResponse)]
pub enum RenameStageResponse {
    /// Renamed; `X-Event-Sequence` is the stream sequence of `stage.renamed`.
    #[oai(status = 200)]
    Ok(
        Json<Envelope<StageRenamedAnswer>>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
}
/// Answer of `DELETE /api/stage/{stageArn}`.
#[derive(ApiResponse)]
pub enum DeleteStageResponse {
    /// Deleted; `X-Event-Sequence` is the stream sequence of `stage.deleted`.
    #[oai(status = 200)]
    Ok(
        Json<StageDeletedAnswer>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
}

fn parse_stage_name(raw: &str) -> Result<String, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::validation(
            "name is required and must not be empty",
        ));
    }
    if raw.chars().count() > MAX_NAME_CHARS
        || !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::validation(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters of [a-zA-Z0-9-_] (IVS rule), got {raw:?}"
        )));
    }
    Ok(raw.to_owned())
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::validation(format!(
            "tags must hold at most {MAX_TAGS} entries"
        )));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > MAX_TAG_KEY_CHARS {
            return Err(ApiError::validation(format!(
                "tags: key {key:?} must be 1 to {MAX_TAG_KEY_CHARS} characters"
            )));
        }
        if value.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(ApiError::validation(format!(
                "tags: value of {key:?} must be at most {MAX_TAG_VALUE_CHARS} characters"
            )));
        }
        if key.chars().chain(value.chars()).any(char::is_control) {
            return Err(ApiError::validation(format!(
                "tags: {key:?} must not contain control characters in its key or value"
            )));
        }
    }
    Ok(())
}

fn encode_token(row: &StageRow) -> String {
    let created = row.created_at.format(&Rfc3339).expect("RFC 3339 formats");
    URL_SAFE_NO_PAD.encode(format!("{created}|{}", row.stage_arn))
}

fn decode_token(token: &str) -> Option<(OffsetDateTime, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (created, arn) = text.split_once('|')?;
    Some((
        OffsetDateTime::parse(created, &Rfc3339).ok()?,
        arn.to_owned(),
    ))
}

async fn active_session_id(state: &AppState, arn: &str) -> Option<String> {
    match state.provider.get_stage(arn.to_owned()).await {
        Ok(stage) => stage.and_then(|s| s.active_session_id),
        Err(e) => {
            tracing::warn!(stage_arn = arn, error = %e, "active session unknown");
            None
        }
    }
}

/// The Stage API (`/api/stage/*`): list, inspect, create, rename and delete the pool's stages.
#[derive(Default)]
pub struct StageApi;

#[OpenApi]
impl StageApi {
    /// List stages
    ///
    /// Stages in creation order, `maxResults` (1 to 100, default 50) per page; pass the answer's
    /// `nextToken` to get the next page.
    #[oai(
        path = "/api/stage/list",
        method = "get",
        tag = "ApiTags::Stage",
        operation_id = "listStages"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        /// Page size, 1 to 100 (default 50).
        #[oai(
            name = "maxResults",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        max_results: Query<Option<u32>>,
        /// The `nextToken` of the previous page.
        #[oai(name = "nextToken")]
        next_token: Query<Option<String>>,
    ) -> Result<StageListResponse, ApiError> {
        let limit = max_results.0.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::validation(format!(
                "maxResults must be between 1 and 100, got {limit}"
            )));
        }
        let after = match next_token.0.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(decode_token(token).ok_or_else(|| {
                ApiError::validation("nextToken is not a token this API gave out")
            })?),
            None => None,
        };
        let (rows, total) = read_models::stage_page(&state.db, after, limit + 1).await?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        Ok(StageListResponse::Ok(Json(Envelope::ok(StageList {
            next_token: if more {
                rows.last().map(encode_token)
            } else {
                None
            },
            stages: rows
                .iter()
                .map(|s| StageListItem {
                    stage_arn: s.stage_arn.clone(),
                    name: s.name.clone(),
                    viewer_count: s.viewer_count.max(0) as u32,
                    auto_scaled: s.auto_scaled,
                    draining: s.draining,
                    created_at: timestamp(s.created_at),
                    tags: s.tags.0.clone(),
                })
                .collect(),
            total_stages: total as u32,
            timestamp: now_timestamp(&state.clock),
        }))))
    }

    /// Master stage information
    #[oai(
        path = "/api/stage/master/info",
        method = "get",
        tag = "ApiTags::Stage",
        operation_id = "getMasterStage"
    )]
    async fn master(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
    ) -> Result<MasterStageResponse, ApiError> {
        let arn = state
            .pool
            .read(|p| p.master().map(|s| s.arn.clone()))
            .ok_or_else(|| ApiError::unavailable("the master stage is not ready yet"))?;
        let stage = require_stage(&state, &arn).await?;
        Ok(MasterStageResponse::Ok(Json(Envelope::ok(
            MasterStageInfo {
                stage: StageDetail {
                    active_session_id: active_session_id(&state, &arn).await,
                    arn,
                    name: stage.name,
                    tags: stage.tags.0,
                },
                viewer_count: stage.viewer_count.max(0) as u32,
                is_master: true,
                timestamp: now_timestamp(&state.clock),
            },
        ))))
    }

    /// Stage information
    ///
    /// `stageArn` is URL-encoded. 404 `NOT_FOUND` for an unknown stage.
    #[oai(
        path = "/api/stage/:stageArn",
        method = "get",
        tag = "ApiTags::Stage",
        operation_id = "getStage"
    )]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        /// Stage ARN, URL-encoded.
        #[oai(name = "stageArn")]
        stage_arn: values::Path<StageArn>,
    ) -> Result<StageResponse, ApiError> {
        let arn = &stage_arn.0;
        let stage = require_stage(&state, arn).await?;
        Ok(StageResponse::Ok(Json(Envelope::ok(StageAnswer {
            stage: StageDetail {
                active_session_id: active_session_id(&state, arn).await,
                arn: stage.stage_arn,
                name: stage.name,
                tags: stage.tags.0,
            },
            viewer_count: stage.viewer_count.max(0) as u32,
            timestamp: now_timestamp(&state.clock),
        }))))
    }

    /// Create a stage
    ///
    /// 503 `STAGE_LIMIT_REACHED` when the pool holds its stage limit (default 20) or IVS refuses
    /// (quota).
    #[oai(
        path = "/api/stage",
        method = "post",
        tag = "ApiTags::Stage",
        operation_id = "createStage"
    )]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        auth: ApiKeyAuth,
        body: Json<CreateStageRequest>,
        /// Optional idempotency key.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyHeader,
    ) -> Result<CreateStageResponse, ApiError> {
        let body = body.0;
        let name = parse_stage_name(&body.name.get("name")?)?;
        let tags = body.tags.get("tags")?.unwrap_or_default();
        check_tags(&tags)?;
        let event_id = idempotency_event_id(&auth, "stage-create", &idempotency_key);
        let (stage, published) = state.pool.create_stage(&name, tags, event_id).await?;
        Ok(CreateStageResponse::Ok(
            Json(Envelope::ok(StageCreatedAnswer {
                stage: CreatedStage {
                    arn: stage.arn,
                    name: stage.name,
                    tags: stage.tags,
                },
                timestamp: now_timestamp(&state.clock),
            })),
            published.sequence,
        ))
    }

    /// Rename a stage
    #[oai(
        path = "/api/stage/:stageArn",
        method = "put",
        tag = "ApiTags::Stage",
        operation_id = "renameStage"
    )]
    async fn rename(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        /// Stage ARN, URL-encoded.
        #[oai(name = "stageArn")]
        stage_arn: values::Path<StageArn>,
        body: Json<RenameStageRequest>,
    ) -> Result<RenameStageResponse, ApiError> {
        let arn = &stage_arn.0;
        let name = parse_stage_name(&body.0.name.get("name")?)?;
        let published = state.pool.rename_stage(arn, &name).await?;
        Ok(RenameStageResponse::Ok(
            Json(Envelope::ok(StageRenamedAnswer {
                stage: RenamedStage {
                    arn: arn.to_string(),
                    name,
                },
                timestamp: now_timestamp(&state.clock),
            })),
            published.sequence,
        ))
    }

    /// Delete a stage
    ///
    /// 403 `FORBIDDEN` for the master stage, 400 `VALIDATION_ERROR` while viewers remain, 404
    /// `NOT_FOUND` for an unknown stage.
    #[oai(
        path = "/api/stage/:stageArn",
        method = "delete",
        tag = "ApiTags::Stage",
        operation_id = "deleteStage"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        /// Stage ARN, URL-encoded.
        #[oai(name = "stageArn")]
        stage_arn: values::Path<StageArn>,
    ) -> Result<DeleteStageResponse, ApiError> {
        let arn = &stage_arn.0;
        let published = state.pool.delete_stage(arn).await?;
        Ok(DeleteStageResponse::Ok(
            Json(StageDeletedAnswer {
                success: true,
                message: "Stage 已刪除".to_owned(),
                timestamp: timestamp(state.clock.now()),
            }),
            published.sequence,
        ))
    }
}
