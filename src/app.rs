//! The shared application state: what the REST handlers of one instance hold (src/server/
//! startup.rs builds it). It holds the chat service too, so the REST edge reads the chat's
//! in-memory state (moderation, open sockets, this instance) without importing the chat edge;
//! the chat edge is handed only the chat service and the flood guards (src/server/routes.rs).

use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;

use crate::commands::pool::PoolService;
use crate::event_store::EventStore;

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
    pub stats_feed:
        tokio::sync::watch::Receiver<Option<crate::read_models::stats_feed::StatsSnapshot>>,
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
    pub api_keys: crate::records::api_keys::VerifiedKeyCache,
    /// Per-API-key rate limits (`ONAIR_RATE_LIMITS`), counted in Postgres.
    pub rate_limiter: crate::records::rate_limit::RateLimiter,
    /// Member `Authorization` tokens.
    pub member_tokens: crate::records::member_auth::MemberTokens,
    /// A hash checked for unknown members at login, so a failed login takes as long either way.
    pub dummy_password_hash: String,
    /// The chat gateway of this instance.
    pub chat: Arc<crate::chat::ChatService>,
    /// The clock every command and handler reads "now" from (tests move it forward).
    pub clock: crate::runtime::clock::Clock,
    /// How long a request with `X-Min-Sequence` waits for the read models.
    pub min_sequence_wait: std::time::Duration,
    /// The longest an API request runs before it is answered 503 (`ONAIR_REQUEST_DEADLINE_MS`).
    pub request_deadline: std::time::Duration,
    /// Per-IP socket counts and the per-socket limits of `/primus` and `/ws` (`ONAIR_WS_*`).
    pub socket_limits: crate::runtime::socket_limits::SocketLimits,
    /// The background tasks of this instance and their states (`tasks` of `/health`).
    pub supervisor: crate::runtime::supervisor::Supervisor,
    /// Replicas the stream should run with (`ONAIR_STREAM_REPLICAS`): `/health` is `degraded`
    /// while it runs with fewer.
    pub stream_replicas: usize,
    /// The projections this instance applies now (`projections.<name>.leader` of `/health`).
    pub projection_leaders: crate::projections::Leadership,
}
