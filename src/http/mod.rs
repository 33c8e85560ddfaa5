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
pub mod security;
pub mod stage;
pub mod stats;
pub mod token;
pub mod viewer;

use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, EndpointExt, Response, Route};
use poem_openapi::{OpenApiService, Tags};
use sqlx::PgPool;
use uuid::Uuid;

use self::api_error::{ApiError, framework_error_to_response};
use self::security::ApiKeyAuth;
use crate::event_store::EventStore;
use crate::ivs::arn::is_stage_arn;
use crate::pool_service::{PoolService, derived_event_id};
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

/// The signing key's public half, as served.
#[derive(Clone, Debug)]
pub struct PublicKeyInfo {
    /// The `kid` header of every participant token: the public key's ARN
    /// (`arn:aws:ivs:<region>:<account>:public-key/<id>`).
    pub kid: String,
    /// SPKI PEM of the P-384 public key.
    pub pem: String,
}

/// What every handler shares.
pub struct AppState {
    /// Postgres: read models, operator records (API keys, members, gifts) and rate-limit state.
    pub db: PgPool,
    /// The JetStream event store every write publishes to.
    pub store: EventStore,
    /// The stage pool: seat assignment and stage changes, decided in memory and stored as events.
    pub pool: PoolService,
    /// The stage provider (`local` or `aws`): stages, participant tokens, active sessions.
    pub provider: Arc<dyn crate::ivs::StageProvider>,
    /// The latest figures pushed on the stats WebSocket.
    pub stats_feed: tokio::sync::watch::Receiver<Option<crate::stats_socket::StatsSnapshot>>,
    /// The stage provider's name, `local` or `aws` (`stageProvider` of `/health`).
    pub provider_name: &'static str,
    /// The token-signing key's public half, served at `GET /api/token/public-key`.
    pub public_key: PublicKeyInfo,
    /// When this instance started (`uptime` of `/health`).
    pub started_at: Instant,
    /// Every projection's name: what `/health`, `/metrics` and `X-Min-Sequence` check.
    pub projection_names: Vec<&'static str>,
    /// Recently verified API keys, kept `ONAIR_API_KEY_CACHE_SECS` (5 s by default): a revoked
    /// key stops working within that time.
    pub api_keys: crate::api_keys::VerifiedKeyCache,
    /// Per-API-key rate limits (`ONAIR_RATE_LIMITS`), counted in Postgres.
    pub rate_limiter: crate::rate_limit::RateLimiter,
    /// Member `Authorization` tokens.
    pub member_tokens: crate::member_auth::MemberTokens,
    /// A hash checked for unknown members at login, so a failed login takes as long either way.
    pub dummy_password_hash: String,
    /// The chat gateway of this instance.
    pub chat: Arc<crate::chat::ChatService>,
    /// How long a request with `X-Min-Sequence` waits for the read models.
    pub min_sequence_wait: std::time::Duration,
}

impl AppState {
    /// The stage from the read model, or 404 `NOT_FOUND`. A stage the pool knows but the read model
    /// has not caught up with yet is looked up again briefly.
    pub async fn require_stage(&self, stage_arn: &str) -> Result<StageRow, ApiError> {
        let known_to_pool = self.pool.read(|p| p.stage(stage_arn).is_some());
        for _ in 0..20 {
            if let Some(stage) = read_models::stage(&self.db, stage_arn).await? {
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
    pub async fn is_publisher_live(&self) -> Result<bool, ApiError> {
        let Some(master) = self.pool.read(|p| p.master().map(|s| s.arn.clone())) else {
            return Ok(false);
        };
        Ok(read_models::is_publisher_live(&self.db, &master).await?)
    }
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
        .around(move |ep, req| crate::rate_limit::enforce(ep, req, limited_state.clone()))
        .around(move |ep, req| {
            consistency::wait_for_min_sequence(ep, req, consistency_state.clone())
        })
        .around(crate::metrics::track);
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .at("/metrics", crate::metrics::serve)
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
        .at("/metrics", crate::metrics::serve)
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
