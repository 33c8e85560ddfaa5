//! What the handlers of several tags share: the write answer (`write_response!`), parameter
//! checks, idempotency event ids, "now" as answers write it, and the stage lookups of the Stage,
//! Viewer and Stats APIs.

use uuid::Uuid;

use super::api_error::ApiError;
use super::envelope;
use super::security::ApiKeyAuth;
use crate::app::AppState;
use crate::domain::idempotency::{self, IdempotencyKey};
use crate::read_models::{self, StageRow};

/// Declares the answer of a write route: the body, and `X-Event-Sequence`, the stream sequence
/// of the event it stored (docs/api.md#read-your-writes).
macro_rules! write_response {
    ($name:ident, $answer:ty, $doc:literal) => {
        /// The answer of a write route: the body and its `X-Event-Sequence` header.
        #[derive(poem_openapi::ApiResponse)]
        pub enum $name {
            #[doc = $doc]
            #[oai(status = 200)]
            Ok(
                poem_openapi::payload::Json<$crate::http::envelope::Envelope<$answer>>,
                #[oai(header = "X-Event-Sequence")] u64,
            ),
        }
    };
}
pub(crate) use write_response;

/// The stage from the read model, or 404 `NOT_FOUND`. A stage the pool knows but the read model
/// has not caught up with yet is looked up again briefly.
pub async fn require_stage(state: &AppState, stage_arn: &str) -> Result<StageRow, ApiError> {
    let known_to_pool = state.pool.read(|p| p.stage(stage_arn).is_some());
    for _ in 0..20 {
        if let Some(stage) = read_models::stage(&state.db, stage_arn).await? {
            return Ok(stage);
        }
        if !known_to_pool {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(ApiError::not_found(format!("stage {stage_arn} not found")))
}

/// Whether the publisher is live on the master stage (stream status events: IVS EventBridge
/// `Participant Published` / `Unpublished` posted to `/api/ingest/eventbridge`).
pub async fn is_publisher_live(state: &AppState) -> Result<bool, ApiError> {
    let Some(master) = state.pool.read(|p| p.master().map(|s| s.arn.clone())) else {
        return Ok(false);
    };
    Ok(read_models::is_publisher_live(&state.db, &master).await?)
}

/// The event id for a request with an `Idempotency-Key` (docs/api.md#idempotency): the same key
/// from the same API key on the same route always gives the same id, so JetStream's duplicate
/// window (2 min) stores the event once.
pub fn idempotency_event_id(
    auth: &ApiKeyAuth,
    route: &str,
    key: &IdempotencyHeader,
) -> Option<Uuid> {
    idempotency::event_id(&auth.0.id.to_string(), route, key.0.as_ref())
}

/// The optional `Idempotency-Key` header of a route (`#[oai(name = "Idempotency-Key")]`), checked
/// by [`IdempotencyKey`]'s rule as it is read: 1 to 255 visible ASCII characters, else 400
/// `VALIDATION_ERROR`.
pub type IdempotencyHeader = poem_openapi::param::Header<Option<IdempotencyKey>>;

/// Now by the instance's clock, as the seed writes times (RFC 3339, UTC, ms).
pub fn now_timestamp(clock: &crate::runtime::clock::Clock) -> String {
    envelope::timestamp(clock.now())
}
