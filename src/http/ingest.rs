//! `POST /api/ingest/eventbridge`: Amazon EventBridge "IVS Stage Update" events (for example
//! through an EventBridge API destination with the `x-api-key` header) become stream status
//! events. Only `Participant Published` / `Participant Unpublished` on the master stage count; any
//! other IVS event is acknowledged and ignored, so EventBridge does not retry it. (IVS sends
//! "IVS Stage Update" events for publishers only, never for viewers joining or leaving.)

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::api_error::ApiError;
use super::envelope::Envelope;
use super::field::{AwsIvsSourceRule, Checked, DateTimeRule, NotEmptyRule, NullableRule};
use super::security::ApiKeyAuth;
use super::tags::ApiTags;
use crate::app::AppState;
use crate::commands::ingest::{self, Ingested, IvsStageEvent};

/// `detail` of an "IVS Stage Update" event (field names as IVS sends them).
#[derive(Object, Debug, Clone)]
pub struct IvsStageUpdateDetail {
    /// e.g. `Participant Published`, `Participant Unpublished`.
    pub event_name: Checked<String>,
    /// IVS participant id of the publisher; kept in the stream status event.
    pub participant_id: Checked<Option<String>, NullableRule>,
    /// IVS stage session id (`st-...`); kept in the stream status event.
    pub session_id: Checked<Option<String>, NullableRule>,
    /// The participant's user id (may be empty); ignored.
    pub user_id: Checked<Option<String>, NullableRule>,
    /// RFC 3339.
    pub event_time: Checked<Option<String>, DateTimeRule>,
}

/// An EventBridge event as delivered (`detail-type`, `source`, `resources`, `time`, `detail`).
#[derive(Object, Debug)]
pub struct EventBridgeEvent {
    /// Must be `IVS Stage Update` to count.
    #[oai(rename = "detail-type")]
    pub detail_type: Checked<String>,
    /// Must be `aws.ivs`.
    pub source: Checked<String, AwsIvsSourceRule>,
    /// `resources[0]` is the stage ARN.
    pub resources: Checked<Vec<String>, NotEmptyRule>,
    /// RFC 3339; used when `detail.event_time` is absent.
    pub time: Checked<Option<String>, DateTimeRule>,
    /// The event's `detail`; its `event_name` decides what is stored.
    pub detail: Checked<IvsStageUpdateDetail>,
}

/// What `POST /api/ingest/eventbridge` did with an event.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct IngestResult {
    /// Whether the event changed the publisher status (false: acknowledged and ignored).
    pub accepted: bool,
    /// The stored event type, e.g. `onair.stream.started.v1`.
    #[oai(nullable)]
    pub event_type: Option<String>,
    /// Why an event was ignored.
    #[oai(nullable)]
    pub reason: Option<String>,
}

/// Answer of `POST /api/ingest/eventbridge`: 200 when stored, 202 when ignored (both 2xx, so
/// EventBridge does not retry).
#[derive(ApiResponse)]
pub enum IngestResponse {
    /// Stored; `X-Event-Sequence` is its stream sequence.
    #[oai(status = 200)]
    Accepted(
        Json<Envelope<IngestResult>>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
    /// Acknowledged but not relevant (another event, another stage).
    #[oai(status = 202)]
    Ignored(Json<Envelope<IngestResult>>),
}

fn ignored(reason: impl Into<String>) -> IngestResponse {
    IngestResponse::Ignored(Json(Envelope::ok(IngestResult {
        accepted: false,
        event_type: None,
        reason: Some(reason.into()),
    })))
}

/// The ingest API: IVS events delivered by Amazon EventBridge.
#[derive(Default)]
pub struct IngestApi;

#[OpenApi]
impl IngestApi {
    /// Ingest an IVS EventBridge event
    ///
    /// `Participant Published` / `Participant Unpublished` on the master stage set
    /// `isPublisherLive`. Late or out-of-order deliveries never override a newer state (the
    /// event time decides).
    #[oai(
        path = "/api/ingest/eventbridge",
        method = "post",
        tag = "ApiTags::Ingest",
        operation_id = "ingestEventBridgeEvent"
    )]
    async fn eventbridge(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: ApiKeyAuth,
        body: Json<EventBridgeEvent>,
    ) -> Result<IngestResponse, ApiError> {
        let body = body.0;
        let source = body.source.get("source")?;
        if source != "aws.ivs" {
            return Err(ApiError::validation(format!(
                "source must be aws.ivs, got {source:?}"
            )));
        }
        let detail_type = body.detail_type.get("detail-type")?;
        let resources = body.resources.get("resources")?;
        let detail = body.detail.get("detail")?;
        let stage_arn = resources
            .first()
            .ok_or_else(|| ApiError::validation("resources must hold the stage ARN"))?
            .clone();
        let event_name = detail.event_name.get("detail.event_name")?;
        let event_time = detail.event_time.get("detail.event_time")?;
        let participant_id = detail.participant_id.get("detail.participant_id")?;
        let session_id = detail.session_id.get("detail.session_id")?;
        detail.user_id.get("detail.user_id")?;
        let time = body.time.get("time")?;
        // Both times must be RFC 3339 when given (the spec says `date-time`); the detail's decides.
        let parse = |field: &str, t: Option<&str>| {
            t.map(|t| {
                OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
                    ApiError::validation(format!("{field} must be RFC 3339, got {t:?}"))
                })
            })
            .transpose()
        };
        let event_at = parse("detail.event_time", event_time.as_deref())?;
        let delivered_at = parse("time", time.as_deref())?;
        let at = event_at
            .or(delivered_at)
            .unwrap_or_else(|| state.clock.now());
        let event = IvsStageEvent {
            detail_type,
            stage_arn,
            event_name,
            participant_id,
            session_id,
            at,
        };
        Ok(
            match ingest::ingest_stage_event(&state.store, &state.pool, event).await? {
                Ingested::Stored {
                    event_type,
                    sequence,
                } => IngestResponse::Accepted(
                    Json(Envelope::ok(IngestResult {
                        accepted: true,
                        event_type: Some(event_type),
                        reason: None,
                    })),
                    sequence,
                ),
                Ingested::Ignored { reason } => ignored(reason),
            },
        )
    }
}
