//! The HTTP edge: poem-openapi APIs, one file per tag, combined into one service with the spec at
//! `/openapi.json` / `/openapi.yaml` and Swagger UI at `/docs`.

pub mod action_query;
pub mod api_error;
pub mod backoffice;
pub mod body_limit;
pub mod common;
pub mod consistency;
pub mod cors;
pub mod dashboard;
pub mod deadline;
pub mod envelope;
pub mod error_code;
pub mod error_text;
pub mod field;
pub mod gateway;
pub mod health;
pub mod idempotency;
pub mod ingest;
pub mod metrics;
pub mod rate_limit;
pub mod request_span;
pub mod security;
pub mod security_headers;
pub mod stage;
pub mod stats;
pub mod stats_socket;
pub mod tags;
pub mod token;
pub mod upgrade_required;
pub mod values;
pub mod viewer;
pub mod views;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, Response, Route};
use poem_openapi::OpenApiService;

use self::api_error::framework_error_to_response;
pub use crate::app::{AppState, PublicKeyInfo};
use crate::runtime::client_addr;

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
         `{success: false, error, message, details}` with a stable `error` code; a \
         `VALIDATION_ERROR`'s `details` names the field first (`userId is required`).",
    )
}

/// The spec as YAML, as committed in `openapi/openapi.yaml`.
pub fn openapi_yaml() -> String {
    openapi_service().spec_yaml()
}

/// What the chat edge serves among these routes, handed in by the composition root
/// (src/server/routes.rs), so that this edge imports no other.
pub struct ChatMounts {
    /// The chat socket: `/primus` and every path below it.
    pub primus: Arc<BoxEndpoint<'static, Response>>,
    /// The chat's client script.
    pub client_script: Arc<BoxEndpoint<'static, Response>>,
    /// Where the client script is served (`ONAIR_CHAT_CLIENT_PATH`).
    pub client_script_path: String,
    /// The same path ending in `.min.js`, where it is served too.
    pub client_script_min_path: String,
}

/// Every route of the server. `cors_origins` is `ONAIR_CORS_ORIGINS`: the origins whose pages
/// may call the API and open its WebSockets (src/http/cors.rs); `trusted_proxies` is
/// `ONAIR_TRUSTED_PROXIES`: the proxies whose `X-Forwarded-For` names the client
/// (src/runtime/client_addr.rs); `chat` is the chat socket and client script mounted among them.
pub fn routes(
    state: Arc<AppState>,
    max_body_bytes: usize,
    cors_origins: Vec<String>,
    trusted_proxies: client_addr::TrustedProxies,
    chat: ChatMounts,
) -> impl Endpoint<Output = Response> {
    let api = openapi_service();
    let docs = api.swagger_ui();
    let spec_json = api.spec_endpoint();
    let spec_yaml = api.spec_endpoint_yaml();
    // Rate limits count the API's requests only, not the docs and the spec.
    let limited_state = state.clone();
    let idempotency_state = state.clone();
    let consistency_state = state.clone();
    let templates = Arc::new(request_span::RouteTemplates::from_apis(
        &<AllApis as poem_openapi::OpenApi>::meta(),
    ));
    let allow_templates = templates.clone();
    let request_deadline = state.request_deadline;
    let trusted_proxies = Arc::new(trusted_proxies);
    let api = api
        .around(move |ep, req| idempotency::replay_or_record(ep, req, idempotency_state.clone()))
        .around(move |ep, req| rate_limit::enforce(ep, req, limited_state.clone()))
        .around(move |ep, req| {
            consistency::wait_for_min_sequence(ep, req, consistency_state.clone())
        })
        .around(move |ep, req| deadline::bound(ep, req, request_deadline))
        .around(metrics::track)
        .around(move |ep, req| request_span::trace(ep, req, templates.clone()));
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .at("/metrics", metrics::serve)
        .nest("/dashboard", dashboard::routes(&state))
        .at(&chat.client_script_path, chat.client_script.clone())
        .at(&chat.client_script_min_path, chat.client_script)
        // Every path that begins with /primus is the chat socket, as Primus claims them
        // (docs/chat.md#transport-and-framing).
        .around(move |ep, req| {
            let primus = chat.primus.clone();
            async move {
                if req.uri().path().starts_with("/primus") {
                    // Boxed: the upgrade's future would otherwise enlarge every request's.
                    Box::pin(primus.call(req)).await
                } else {
                    ep.call(req).await.map(poem::IntoResponse::into_response)
                }
            }
        })
        .around(move |ep, req| body_limit::limit_body(ep, req, max_body_bytes))
        .data(state)
        .catch_all_error(framework_error_to_response)
        .around(move |ep, req| request_span::allow_on_405(ep, req, allow_templates.clone()))
        // Outside the rate limits, authentication and error mapping: a preflight is answered
        // here, and every answer (errors too) gets the CORS headers.
        .with(cors::CorsLayer::new(cors::OriginPolicy::new(&cors_origins)))
        .around(security_headers::secure_html)
        // Outermost: everything inside (the request span, the socket limits) reads the client.
        .around(move |ep, req| client_addr::attach(ep, req, trusted_proxies.clone()))
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
        .around(security_headers::secure_html)
}
