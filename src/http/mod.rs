//! The HTTP edge: poem-openapi APIs, one file per tag, combined into one service with the spec at
//! `/openapi.json` / `/openapi.yaml` and Swagger UI at `/docs`.

pub mod action_query;
pub mod api_error;
pub mod backoffice;
pub mod consistency;
pub mod envelope;
pub mod field;
pub mod gateway;
pub mod health;
pub mod idempotency;
pub mod ingest;
pub mod metrics;
pub mod rate_limit;
pub mod security;
pub mod stage;
pub mod stats;
pub mod token;
pub mod viewer;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Response, Route};
use poem_openapi::{OpenApiService, Tags};
use uuid::Uuid;

use self::api_error::{ApiError, framework_error_to_response};
use self::security::ApiKeyAuth;
pub use crate::app::{AppState, PublicKeyInfo};
use crate::events::id::derived_event_id;
use crate::ivs::arn::is_stage_arn;
use crate::read_models::{self, StageRow};

/// Declares the answer of a write route: the body, and `X-Event-Sequence`, the stream sequence
/// of the event it stored (DESIGN.md §5).
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

/// The API's tags.
#[derive(Tags)]
pub enum ApiTags {
    /// Service health.
    Health,
    /// Publisher and viewer participant tokens.
    Token,
    /// Stages of the pool: list, inspect, create, rename, delete.
    Stage,
    /// Viewer heartbeats, leaving, lists and watch durations.
    Viewer,
    /// Live statistics.
    Stats,
    /// Events from Amazon IVS (EventBridge).
    Ingest,
    /// Client gateway: member actions (login, rooms, follows, live status, gifts).
    Gateway,
    /// Back-office gateway: members, the gift catalog, gift records (operator `website` + `key`).
    BackOffice,
}

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

/// Checks a `stageArn` parameter: IVS's stage ARN format, else 400 `VALIDATION_ERROR`.
pub fn parse_stage_arn(raw: &str) -> Result<&str, ApiError> {
    if raw.trim().is_empty() {
        return Err(ApiError::validation(
            "stageArn is required and must not be empty",
        ));
    }
    if !is_stage_arn(raw) {
        return Err(ApiError::validation(format!(
            "stageArn must be a stage ARN (arn:aws:ivs:<region>:<account>:stage/<id>), got {raw:?}"
        )));
    }
    Ok(raw)
}

/// The event id for a request with an `Idempotency-Key` (1 to 255 visible ASCII characters): the
/// same key from the same API key on the same route always gives the same id, so JetStream's
/// duplicate window (2 min) stores the event once.
pub fn idempotency_event_id(
    auth: &ApiKeyAuth,
    route: &str,
    key: Option<&str>,
) -> Result<Option<Uuid>, ApiError> {
    scoped_idempotency_event_id(&auth.0.id.to_string(), route, key)
}

/// The event id derived from an `Idempotency-Key` within `scope` (an API key id, a member id) and
/// `route`, or `None` without a key. 400 `VALIDATION_ERROR` unless the key is 1 to 255 visible
/// ASCII characters.
pub fn scoped_idempotency_event_id(
    scope: &str,
    route: &str,
    key: Option<&str>,
) -> Result<Option<Uuid>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(derived_event_id(&["idempotency", scope, route, key])))
}

/// Now, as the seed writes times.
pub fn now_timestamp() -> String {
    envelope::timestamp(time::OffsetDateTime::now_utc())
}

/// Every API of the server, in spec order.
pub type AllApis = (
    health::HealthApi,
    token::TokenApi,
    stage::StageApi,
    viewer::ViewerApi,
    stats::StatsApi,
    ingest::IngestApi,
    gateway::GatewayApi,
    backoffice::BackOfficeApi,
);

/// The OpenAPI service with every API.
pub fn openapi_service() -> OpenApiService<AllApis, ()> {
    OpenApiService::new(AllApis::default(), "onair API", env!("CARGO_PKG_VERSION")).description(
        "Publisher and viewer tokens for Amazon IVS real-time stages, a self-scaling stage pool, \
         viewer heartbeats and watch durations, live statistics; member and streamer login, rooms, \
         follows, gifts with gift rankings, and a back office for members, gifts and gift \
         records. Every write is an event on \
         NATS JetStream; reads come from read models projected into PostgreSQL. The Stage API \
         authenticates with the `x-api-key` header; the client gateway (`/api/action/*`) with a \
         member `Authorization` token from `loginAction` / `loginStreamer`; the back-office \
         gateway (`/api/backoffice/*`) with the operator's `website` and `key`. Errors are \
         `{error, message, details}` with a stable `error` code.",
    )
}

/// The spec as YAML, as committed in `openapi/openapi.yaml`.
pub fn openapi_yaml() -> String {
    openapi_service().spec_yaml()
}

/// Every route of the server.
pub fn routes(state: Arc<AppState>, max_body_bytes: usize) -> impl Endpoint<Output = Response> {
    let api = openapi_service();
    let docs = api.swagger_ui();
    let spec_json = api.spec_endpoint();
    let spec_yaml = api.spec_endpoint_yaml();
    // Rate limits count the API's requests only, not the docs and the spec.
    let client_path = state.chat.settings().client_path.clone();
    let limited_state = state.clone();
    let idempotency_state = state.clone();
    let consistency_state = state.clone();
    let api = api
        .around(move |ep, req| idempotency::replay_or_record(ep, req, idempotency_state.clone()))
        .around(move |ep, req| rate_limit::enforce(ep, req, limited_state.clone()))
        .around(move |ep, req| {
            consistency::wait_for_min_sequence(ep, req, consistency_state.clone())
        })
        .around(metrics::track);
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .at("/metrics", metrics::serve)
        .at(&client_path, crate::chat::client_script::serve)
        .at(
            crate::chat::client_script::min_path(&client_path),
            crate::chat::client_script::serve,
        )
        // Every path that begins with /primus is the chat socket (protocols/actionhero.md §1.2).
        .around(|ep, req| async move {
            if req.uri().path().starts_with("/primus") {
                crate::chat::socket::primus.call(req).await
            } else {
                ep.call(req).await.map(poem::IntoResponse::into_response)
            }
        })
        .around(move |ep, req| limit_body(ep, req, max_body_bytes))
        .data(state)
        .catch_all_error(framework_error_to_response)
}

/// The routes of a process without the `api` role (a projector or reactor worker): `/health`
/// and `/metrics` only, for the orchestrator and the metrics scraper.
pub fn worker_routes(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let health = OpenApiService::new(health::HealthApi, "onair worker", env!("CARGO_PKG_VERSION"));
    Route::new()
        .nest("/", health)
        .at("/metrics", metrics::serve)
        .data(state)
        .catch_all_error(framework_error_to_response)
}

/// Refuses bodies above `max` bytes with 413 `PAYLOAD_TOO_LARGE`, whether or not they announce a
/// `Content-Length`.
async fn limit_body<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: poem::Request,
    max: usize,
) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    let too_large = || poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(len) if len > max => return Err(too_large()),
        Some(_) => {}
        None => {
            let bytes = req
                .take_body()
                .into_bytes_limit(max)
                .await
                .map_err(|_| too_large())?;
            req.set_body(bytes);
        }
    }
    Ok(ep.call(req).await?.into_response())
}
