//! Settings: command-line flags, each with an `ONAIR_*` environment variable and a default for
//! local use. Secrets (the database password) are redacted in `Debug` output and logs.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::domain::stage_pool::{PoolLimits, ScaleDownPolicy};
use crate::runtime::postgres::redact_url;

/// Where the services are.
#[derive(Args, Clone)]
pub struct ConnectionSettings {
    /// PostgreSQL URL (read models, API keys, signing key).
    #[arg(
        long,
        global = true,
        env = "ONAIR_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:25432/onair"
    )]
    pub database_url: String,
    /// NATS URL (JetStream must be enabled); the servers of a cluster comma-separated.
    #[arg(
        long,
        global = true,
        env = "ONAIR_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// Replicas of the JetStream stream (1 on a single node, 3 in a cluster). `onair serve`
    /// applies them to the stream (never lowering a running stream's); other commands use them
    /// only to create a stream that does not exist yet; `/health` is `degraded` while the stream
    /// runs with fewer.
    #[arg(
        long,
        global = true,
        env = "ONAIR_STREAM_REPLICAS",
        default_value_t = 1
    )]
    pub stream_replicas: usize,
}

impl std::fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("database_url", &redact_url(&self.database_url))
            .field("nats_url", &redact_url(&self.nats_url))
            .field("stream_replicas", &self.stream_replicas)
            .finish()
    }
}

/// A secret setting: shown as `***` in `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(pub String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Which stage provider serves stages and tokens.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageProviderKind {
    /// No AWS: onair keeps the stages and signs the tokens itself.
    Local,
    /// Amazon IVS real-time; credentials from the usual AWS chain.
    Aws,
}

/// What one `onair serve` process does (docs/design.md#scale-path: one process runs every role;
/// roles split with a flag so API instances and workers scale apart).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeRole {
    /// The HTTP API, the chat WebSocket and the stats WebSocket (stateless; scale out behind a
    /// load balancer). Without it, the listener serves only `/health` and `/metrics`.
    Api,
    /// The projectors that build the read models (one instance applies each projection at a
    /// time; others stand by).
    Projectors,
    /// Heartbeat expiry, scale-down, the IVS reconciler, popularity and chat presence.
    Reactors,
    /// The analytics lake writer (needs `--lake-dir`; one instance writes at a time, others
    /// stand by). Not in the default roles.
    Lake,
}

/// Settings of `onair serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeSettings {
    /// Where PostgreSQL and NATS are.
    #[command(flatten)]
    pub connection: ConnectionSettings,
    /// Address the HTTP API listens on.
    #[arg(long, env = "ONAIR_LISTEN", default_value = "0.0.0.0:3000")]
    pub listen: SocketAddr,
    /// Hard cap of viewers per stage (the Stage API's default: 50).
    #[arg(long, env = "ONAIR_MAX_VIEWERS_PER_STAGE", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_viewers_per_stage: u32,
    /// Viewers on every stage at which a new stage is created (the Stage API's default: 45).
    #[arg(long, env = "ONAIR_SCALE_UP_THRESHOLD", default_value_t = 45, value_parser = clap::value_parser!(u32).range(1..))]
    pub scale_up_threshold: u32,
    /// Most stages in the pool, master included (the Stage API's default: 20).
    #[arg(long, env = "ONAIR_MAX_STAGES", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_stages: u32,
    /// Seconds without a heartbeat after which a viewer loses the seat (the Stage API's default:
    /// 60).
    #[arg(long, env = "ONAIR_HEARTBEAT_TIMEOUT_SECS", default_value_t = 60.0, value_parser = seconds)]
    pub heartbeat_timeout_secs: f64,
    /// How often the expiry reactor looks for silent viewers, in milliseconds.
    #[arg(long, env = "ONAIR_EXPIRY_CHECK_INTERVAL_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(10..))]
    pub expiry_check_interval_ms: u64,
    /// An auto-scaled stage with fewer viewers than this drains (the Stage API's default: 5).
    #[arg(long, env = "ONAIR_SCALE_DOWN_THRESHOLD", default_value_t = 5)]
    pub scale_down_threshold: u32,
    /// ... once it is at least this many seconds old (the Stage API's default: 5 minutes).
    #[arg(long, env = "ONAIR_SCALE_DOWN_MIN_AGE_SECS", default_value_t = 300.0, value_parser = seconds)]
    pub scale_down_min_age_secs: f64,
    /// How often the scale-down reactor runs, in milliseconds.
    #[arg(long, env = "ONAIR_SCALE_DOWN_CHECK_INTERVAL_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub scale_down_check_interval_ms: u64,
    /// How often the stats WebSocket pushes `stats_update`, in milliseconds (the Stage API's
    /// default: 5 s).
    #[arg(long, env = "ONAIR_STATS_PUSH_INTERVAL_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(50..))]
    pub stats_push_interval_ms: u64,
    /// Publisher token lifetime in seconds (the Stage API's default: 4 h).
    #[arg(long, env = "ONAIR_PUBLISHER_TOKEN_TTL_SECS", default_value_t = 14_400, value_parser = clap::value_parser!(u64).range(60..=1_209_600))]
    pub publisher_token_ttl_secs: u64,
    /// Viewer token lifetime in seconds (the Stage API's default: 1 h).
    #[arg(long, env = "ONAIR_VIEWER_TOKEN_TTL_SECS", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(60..=1_209_600))]
    pub viewer_token_ttl_secs: u64,
    /// Where stages and tokens come from: `local` (no AWS; self-signed tokens) or `aws` (Amazon IVS
    /// real-time through aws-sdk-ivsrealtime; credentials from the usual AWS chain).
    #[arg(long, env = "ONAIR_STAGE_PROVIDER", value_enum, default_value_t = StageProviderKind::Local)]
    pub stage_provider: StageProviderKind,
    /// `aws`: the ARN IVS gave our public key (`ImportPublicKey` of `GET /api/token/public-key`).
    /// When set, tokens are self-signed (no AWS call per viewer); else each token is a
    /// `CreateParticipantToken` call.
    #[arg(long, env = "ONAIR_IVS_PUBLIC_KEY_ARN")]
    pub ivs_public_key_arn: Option<String>,
    /// `aws`: another IVS endpoint (tests, proxies).
    #[arg(long, env = "ONAIR_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// `aws`: attempts per IVS call (throttling and 5xx are retried).
    #[arg(long, env = "ONAIR_AWS_MAX_ATTEMPTS", default_value_t = 3)]
    pub aws_max_attempts: u32,
    /// How often the reconciler compares the pool with the provider, in seconds.
    #[arg(long, env = "ONAIR_RECONCILE_INTERVAL_SECS", default_value_t = 300)]
    pub reconcile_interval_secs: u64,
    /// Delete orphans: provider stages tagged `ManagedBy=onair` that the pool does not hold.
    #[arg(long, env = "ONAIR_RECONCILE_DELETE_ORPHANS", default_value_t = false)]
    pub reconcile_delete_orphans: bool,
    /// AWS region written into stage and public-key ARNs.
    #[arg(long, env = "ONAIR_IVS_REGION", default_value = "us-east-1")]
    pub ivs_region: String,
    /// AWS account id written into ARNs of the local provider.
    #[arg(long, env = "ONAIR_IVS_ACCOUNT_ID", default_value = "000000000000")]
    pub ivs_account_id: String,
    /// `events_url` claim of participant tokens.
    #[arg(
        long,
        env = "ONAIR_IVS_EVENTS_URL",
        default_value = "wss://global.events.live-video.net"
    )]
    pub ivs_events_url: String,
    /// `whip_url` claim of participant tokens.
    #[arg(
        long,
        env = "ONAIR_IVS_WHIP_URL",
        default_value = "https://global.whip.live-video.net"
    )]
    pub ivs_whip_url: String,
    /// `Environment` tag of the stages onair creates.
    #[arg(long, env = "ONAIR_ENVIRONMENT", default_value = "development")]
    pub environment: String,
    /// Seconds a verified API key is remembered; a revoked key stops working within this time
    /// (0: check the database on every request).
    #[arg(long, env = "ONAIR_API_KEY_CACHE_SECS", default_value_t = 5)]
    pub api_key_cache_secs: u64,
    /// Enforce each API key's rate limit (`onair apikey set-limit`); `false` when a gateway in
    /// front already does.
    #[arg(long, env = "ONAIR_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub rate_limits: bool,
    /// Lifetime of member `Authorization` tokens (`loginAction`, `loginStreamer`), in seconds.
    #[arg(long, env = "ONAIR_MEMBER_TOKEN_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub member_token_ttl_secs: u64,
    /// Secret that signs member tokens; when unset, one is generated and kept in Postgres
    /// (`auth_secrets`), shared by every instance.
    #[arg(long, env = "ONAIR_MEMBER_TOKEN_SECRET", hide_env_values = true)]
    pub member_token_secret: Option<SecretString>,
    /// How often room popularity is recomputed, in milliseconds (src/domain/popularity.rs).
    #[arg(long, env = "ONAIR_POPULARITY_INTERVAL_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(50..))]
    pub popularity_interval_ms: u64,
    /// Chat: Primus heartbeat interval, in milliseconds (clients give up after 1.5 × this).
    #[arg(long, env = "ONAIR_CHAT_PING_INTERVAL_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(50..))]
    pub chat_ping_interval_ms: u64,
    /// Chat: longest chat text, in characters.
    #[arg(long, env = "ONAIR_CHAT_MAX_TEXT_CHARS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub chat_max_text_chars: u64,
    /// Chat: a member's `welcome` is shown at most once per room per this many seconds.
    #[arg(long, env = "ONAIR_CHAT_WELCOME_WINDOW_SECS", default_value_t = 600)]
    pub chat_welcome_window_secs: u64,
    /// Chat: messages a member may say per minute (also the burst), across all instances.
    #[arg(long, env = "ONAIR_CHAT_MESSAGES_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub chat_messages_per_minute: u32,
    /// Chat: an instance silent this long (milliseconds) is taken as gone and the leaves of its
    /// members are published, so presence and popularity stop counting them. Instances announce
    /// themselves every third of it.
    #[arg(long, env = "ONAIR_CHAT_INSTANCE_TIMEOUT_MS", default_value_t = 45_000, value_parser = clap::value_parser!(u64).range(300..))]
    pub chat_instance_timeout_ms: u64,
    /// Chat: frames queued for one socket; a socket that falls this far behind (it stopped
    /// reading) is dropped as a slow consumer, and its member leaves its rooms.
    #[arg(long, env = "ONAIR_CHAT_SOCKET_QUEUE_FRAMES", default_value_t = 256, value_parser = clap::value_parser!(u64).range(8..=100_000))]
    pub chat_socket_queue_frames: u64,
    /// Chat: where the compatible client script is served (and its `.min.js` twin).
    #[arg(
        long,
        env = "ONAIR_CHAT_CLIENT_PATH",
        default_value = "/public/javascript/ActionheroWebsocketClient.js"
    )]
    pub chat_client_path: String,
    /// Chat: the origin the client script connects to (e.g. `https://chat.example.com`); empty:
    /// the page's own origin.
    #[arg(long, env = "ONAIR_CHAT_CLIENT_URL", default_value = "")]
    pub chat_client_url: String,
    /// How long a request with `X-Min-Sequence` waits for the read models, in milliseconds
    /// (docs/api.md#read-your-writes: 2 s).
    #[arg(long, env = "ONAIR_MIN_SEQUENCE_WAIT_MS", default_value_t = 2000)]
    pub min_sequence_wait_ms: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ONAIR_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// HTTP hygiene: seconds a client has to send a complete request head, from the accept (or
    /// from the head's first byte on a kept-alive connection); a slowloris client that trickles
    /// its headers is disconnected after it. 0 turns it off (src/runtime/connection_limits.rs).
    #[arg(long, env = "ONAIR_HEADER_READ_TIMEOUT_SECS", default_value_t = 10.0, value_parser = seconds)]
    pub header_read_timeout_secs: f64,
    /// HTTP hygiene: seconds a keep-alive connection may sit idle between a response and the next
    /// request (above a load balancer's usual 60 s idle timeout, so the balancer closes first).
    /// 0 turns it off (src/runtime/connection_limits.rs).
    #[arg(long, env = "ONAIR_KEEP_ALIVE_TIMEOUT_SECS", default_value_t = 75.0, value_parser = seconds)]
    pub keep_alive_timeout_secs: f64,
    /// HTTP hygiene: most connections open at once on the listener (WebSockets included); one
    /// more is answered 503 and closed (src/runtime/connection_limits.rs).
    #[arg(long, env = "ONAIR_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// WebSockets (`/primus` and `/ws` together): sockets one IP address (an IPv6 /64) may hold
    /// open; more are answered 429 before the upgrade. The address is the client's: behind a
    /// proxy listed in `ONAIR_TRUSTED_PROXIES`, the one it forwarded (src/runtime/socket_limits.rs).
    #[arg(long, env = "ONAIR_WS_MAX_SOCKETS_PER_IP", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_max_sockets_per_ip: u32,
    /// WebSockets: new sockets one IP address may open per second (also the burst); faster ones
    /// are answered 429 with `Retry-After` before the upgrade. The address is the client's, as
    /// for `ONAIR_WS_MAX_SOCKETS_PER_IP`.
    #[arg(long, env = "ONAIR_WS_NEW_SOCKETS_PER_IP_PER_SECOND", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_new_sockets_per_ip_per_second: u32,
    /// WebSockets: frames one socket may send per second; over it a frame is not handled and the
    /// client is told (chat: system message 42901), past twice it the socket is closed (1008).
    #[arg(long, env = "ONAIR_WS_FRAMES_PER_SECOND", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_frames_per_second: u32,
    /// WebSockets: frames one socket may send at once before `ONAIR_WS_FRAMES_PER_SECOND` applies.
    #[arg(long, env = "ONAIR_WS_FRAMES_BURST", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_frames_burst: u32,
    /// WebSockets: largest message (and frame) in bytes; a larger one is refused from its header,
    /// before it is read, and the socket closed with 1009.
    #[arg(long, env = "ONAIR_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(256..=(64 << 20)))]
    pub ws_max_message_bytes: u64,
    /// WebSockets: a `/ws` socket from which nothing (not even a pong) arrives this many
    /// milliseconds is closed; it is pinged every third of it. (`/primus` sockets that answer no
    /// Primus ping are closed after 2 to 3 × `ONAIR_CHAT_PING_INTERVAL_MS`.)
    #[arg(long, env = "ONAIR_WS_IDLE_TIMEOUT_MS", default_value_t = 90_000, value_parser = clap::value_parser!(u64).range(150..))]
    pub ws_idle_timeout_ms: u64,
    /// The analytics lake, for the `lake` role (src/lake/).
    #[command(flatten)]
    pub lake: crate::lake::LakeSettings,
    /// What this process does, comma-separated: `api`, `projectors`, `reactors` (the default),
    /// and `lake`.
    #[arg(
        long,
        env = "ONAIR_ROLES",
        value_enum,
        value_delimiter = ',',
        default_value = "api,projectors,reactors"
    )]
    pub roles: Vec<ServeRole>,
    /// Rate limits: share of a key's per-minute limit an instance leases from the shared bucket
    /// at once and spends in memory, in percent (a slice is at least 1 request; 1 asks Postgres on
    /// every request). Instances may together exceed a key's limit by at most instances × slice
    /// per window (src/records/rate_limit.rs).
    #[arg(long, env = "ONAIR_RATE_LIMIT_SLICE_PERCENT", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub rate_limit_slice_percent: u32,
    /// Rate limits: most requests one lease takes.
    #[arg(long, env = "ONAIR_RATE_LIMIT_MAX_SLICE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_max_slice: u32,
    /// Rate limits: milliseconds a leased slice may be spent; what is left after it is dropped.
    #[arg(long, env = "ONAIR_RATE_LIMIT_LEASE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub rate_limit_lease_ms: u64,
    /// Milliseconds between checks of the memory the allocator holds free; above 8 MiB it is
    /// given back to the system (`malloc_trim`, src/runtime/memory.rs). 0: never.
    #[arg(long, env = "ONAIR_MEMORY_TRIM_INTERVAL_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub memory_trim_interval_ms: u64,
    /// Heartbeat group commit: microseconds the first heartbeat of a message waits for others to
    /// share it (`onair.viewer.heartbeats_recorded.v1`); 0 (the default): no timer, a message
    /// holds what queued while the earlier ones were being stored.
    #[arg(long, env = "ONAIR_HEARTBEAT_BATCH_WINDOW_US", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub heartbeat_batch_window_us: u64,
    /// Heartbeat group commit: most heartbeats in one message; 1 turns group commit off (every
    /// heartbeat its own `onair.viewer.heartbeat_recorded.v1`).
    #[arg(long, env = "ONAIR_HEARTBEAT_BATCH_MAX", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub heartbeat_batch_max: u32,
    /// Heartbeat group commit: messages that may await their JetStream acknowledgement at once;
    /// while they all wait, arriving heartbeats queue up for the next message.
    #[arg(long, env = "ONAIR_HEARTBEAT_BATCH_IN_FLIGHT", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub heartbeat_batch_in_flight: u32,
    /// Projection group commit: milliseconds a projector, while events keep coming (its last
    /// batch ended within this time), gathers them before it applies them as one transaction.
    /// A lone event after a quiet spell is applied at once. Under a steady flow the read models
    /// lag by up to this much more, and each batch's fixed cost (its transaction, checkpoint and
    /// acknowledgement) is shared by more events; 0: apply what has arrived at once.
    #[arg(long, env = "ONAIR_PROJECTION_LINGER_MS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub projection_linger_ms: u64,
    /// The longest a viewer's seat decision takes, waiting for its turn included, in
    /// milliseconds, before it answers 503 `SERVICE_UNAVAILABLE` (a stalled event store, a NATS
    /// failover): under the 10 s a client or nginx waits (`deploy/nginx.conf`).
    #[arg(long, env = "ONAIR_SEAT_DECISION_DEADLINE_MS", default_value_t = 8000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub seat_decision_deadline_ms: u64,
    /// Decide the viewer token requests queued on this instance together and store their seats
    /// as one chain of events in one round trip (`commands/pool/seat_batch.rs`); `false`: one
    /// guarded publish per seat.
    #[arg(long, env = "ONAIR_SEAT_BATCHES", default_value_t = true, action = clap::ArgAction::Set)]
    pub seat_batches: bool,
    /// The longest an API request runs, in milliseconds, before it is answered 503
    /// `SERVICE_UNAVAILABLE` (a stalled dependency): under the 10 s a client or nginx waits
    /// (`deploy/nginx.conf`).
    #[arg(long, env = "ONAIR_REQUEST_DEADLINE_MS", default_value_t = 9000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub request_deadline_ms: u64,
    /// How long a publish that fails for a transient reason (no stream leader during a NATS
    /// election, an ack timeout, a reconnect) is retried with the same `Nats-Msg-Id`, in
    /// milliseconds, before the request answers 503 `SERVICE_UNAVAILABLE`; 0 disables the
    /// retry. Under the request deadline, so a failover shows as a slower answer.
    #[arg(long, env = "ONAIR_PUBLISH_RETRY_MS", default_value_t = 8000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub publish_retry_ms: u64,
    /// Browsers: origins whose pages may call the API and open the WebSockets, comma-separated
    /// (`https://app.example.com,http://localhost:5173`), or `*` for any (development only).
    /// Empty (the default): no CORS headers, and a WebSocket upgrade is accepted only without an
    /// `Origin` (a non-browser client) or from the server's own origin; others get 403
    /// (src/http/cors.rs).
    #[arg(long, env = "ONAIR_CORS_ORIGINS", value_delimiter = ',', value_parser = cors_origin)]
    pub cors_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` (or RFC 7239 `Forwarded`) names the client:
    /// CIDRs or single addresses, comma-separated (`127.0.0.1/32,10.0.0.0/8,2001:db8::/32`).
    /// For a request from one of them the client is the rightmost forwarded address that is not
    /// a trusted proxy (nginx's `real_ip_recursive on`); the per-IP socket limits, the chat's
    /// `remoteIP` and the logs' `client.address` use it. Empty (the default): nobody is trusted,
    /// the client is the TCP peer and forwarded addresses are ignored. An entry that is neither
    /// a CIDR nor an address stops the start (src/runtime/client_addr.rs).
    #[arg(long, env = "ONAIR_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::runtime::client_addr::TrustedProxies,
    /// Chat: bytes of each socket's read buffer, allocated when it opens (chat frames are small;
    /// a larger frame is read in several pieces). Most of an idle socket's memory.
    #[arg(long, env = "ONAIR_CHAT_SOCKET_READ_BUFFER_BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(256..=(1 << 20)))]
    pub chat_socket_read_buffer_bytes: u64,
    /// Chat: bytes a socket's writer gathers before writing them out (queued frames are sent
    /// together, then flushed).
    #[arg(long, env = "ONAIR_CHAT_SOCKET_WRITE_BUFFER_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(0..=(1 << 20)))]
    pub chat_socket_write_buffer_bytes: u64,
    /// Chat: milliseconds a socket's writer waits after its first due frame for more, then writes
    /// them together (fewer `send`s per delivery, that much more latency); 0 writes at once.
    #[arg(long, env = "ONAIR_CHAT_WRITE_DELAY_MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub chat_write_delay_ms: u64,
    /// Chat: `say`s of one socket that may wait for their JetStream acks at once; they are
    /// published in order and answered in order, each after its own ack.
    #[arg(long, env = "ONAIR_CHAT_SAY_PIPELINE", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub chat_say_pipeline: u64,
}

impl ServeSettings {
    /// Whether this process takes `role` (see [`ServeRole`]).
    pub fn has_role(&self, role: ServeRole) -> bool {
        self.roles.contains(&role)
    }

    /// The pool's seating limits: viewers per stage, scale-up threshold, most stages.
    pub fn pool_limits(&self) -> PoolLimits {
        PoolLimits {
            max_viewers_per_stage: self.max_viewers_per_stage,
            scale_up_threshold: self.scale_up_threshold,
            max_stages: self.max_stages,
        }
    }

    /// When an auto-scaled stage drains: fewer than `scale_down_threshold` viewers and at least
    /// `scale_down_min_age_secs` old (a negative age counts as 0).
    pub fn scale_down_policy(&self) -> ScaleDownPolicy {
        ScaleDownPolicy {
            min_viewers: self.scale_down_threshold,
            min_age: Duration::from_secs_f64(self.scale_down_min_age_secs.max(0.0)),
        }
    }

    /// The WebSocket flood and size limits (`ws_*`).
    pub fn socket_limits(&self) -> crate::runtime::socket_limits::SocketLimitSettings {
        crate::runtime::socket_limits::SocketLimitSettings {
            max_sockets_per_ip: self.ws_max_sockets_per_ip,
            new_sockets_per_ip_per_second: self.ws_new_sockets_per_ip_per_second,
            frames_per_second: self.ws_frames_per_second,
            frames_burst: self.ws_frames_burst,
            max_message_bytes: usize::try_from(self.ws_max_message_bytes).unwrap_or(usize::MAX),
            idle_timeout: Duration::from_millis(self.ws_idle_timeout_ms),
        }
    }

    /// The chat WebSocket's settings, with the `chat_*` milliseconds and seconds as durations.
    pub fn chat_settings(&self) -> crate::chat::ChatSettings {
        crate::chat::ChatSettings {
            ping_interval: Duration::from_millis(self.chat_ping_interval_ms),
            max_text_chars: self.chat_max_text_chars as usize,
            welcome_window: Duration::from_secs(self.chat_welcome_window_secs),
            messages_per_minute: self.chat_messages_per_minute,
            client_path: self.chat_client_path.clone(),
            client_url: self.chat_client_url.clone(),
            instance_timeout: Duration::from_millis(self.chat_instance_timeout_ms),
            queue_size: self.chat_socket_queue_frames as usize,
            read_buffer_bytes: self.chat_socket_read_buffer_bytes as usize,
            write_buffer_bytes: self.chat_socket_write_buffer_bytes as usize,
            write_delay: Duration::from_millis(self.chat_write_delay_ms),
            say_pipeline: self.chat_say_pipeline as usize,
            message_rate_lease: self.rate_limit_lease(),
        }
    }

    /// The listener's connection limit, request-head and keep-alive timeouts (0 s: none).
    pub fn connection_limits(&self) -> crate::runtime::connection_limits::ConnectionLimits {
        let positive = |secs: f64| (secs > 0.0).then(|| Duration::from_secs_f64(secs));
        crate::runtime::connection_limits::ConnectionLimits {
            max_connections: self.max_connections as usize,
            header_read_timeout: positive(self.header_read_timeout_secs),
            keep_alive_timeout: positive(self.keep_alive_timeout_secs),
        }
    }

    /// How the rate limiter leases slices of a key's budget (`rate_limit_*`).
    pub fn rate_limit_lease(&self) -> crate::records::rate_limit::LeaseSettings {
        crate::records::rate_limit::LeaseSettings {
            slice_percent: self.rate_limit_slice_percent,
            max_slice: self.rate_limit_max_slice,
            ttl: Duration::from_millis(self.rate_limit_lease_ms),
        }
    }

    /// The heartbeat group commit's window and largest batch (`heartbeat_batch_*`).
    pub fn heartbeat_batch(&self) -> crate::commands::pool::HeartbeatBatchSettings {
        crate::commands::pool::HeartbeatBatchSettings {
            window: Duration::from_micros(self.heartbeat_batch_window_us),
            max: self.heartbeat_batch_max as usize,
            in_flight: self.heartbeat_batch_in_flight as usize,
        }
    }

    /// Silence after which a viewer loses the seat; at least 1 ms.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_timeout_secs.max(0.001))
    }

    /// How often the expiry reactor looks for silent viewers.
    pub fn expiry_check_interval(&self) -> Duration {
        Duration::from_millis(self.expiry_check_interval_ms)
    }

    /// Settings with every default and the given services (used by tests and tools).
    pub fn with_connection(database_url: &str, nats_url: &str) -> Self {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: ServeSettings,
        }
        use clap::Parser;
        Wrapper::parse_from([
            "onair",
            "--database-url",
            database_url,
            "--nats-url",
            nats_url,
        ])
        .settings
    }
}

/// Parses one entry of `ONAIR_CORS_ORIGINS`: `*`, or an origin as a browser sends it in
/// `Origin` (`scheme://host[:port]`, no path), lowercased; an empty entry (a trailing comma) is
/// kept empty and ignored.
fn cors_origin(raw: &str) -> Result<String, String> {
    let origin = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    if origin.is_empty() || origin == "*" {
        return Ok(origin);
    }
    match origin.split_once("://") {
        Some((scheme, authority))
            if !scheme.is_empty()
                && !authority.is_empty()
                && !authority.contains(['/', '?', '#', '*', ' ']) =>
        {
            Ok(origin)
        }
        _ => Err(format!(
            "must be `*` or an origin such as https://app.example.com, got {raw:?}"
        )),
    }
}

/// Parses a number of seconds for a duration setting: finite, 0 to 31,536,000 (a year), so that a
/// typo such as `inf` or `1e30` is refused at start instead of overflowing a timer.
fn seconds(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=31_536_000.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("must be between 0 and 31536000 seconds, got {raw}")),
        Err(_) => Err(format!("must be a number of seconds, got {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/onair"),
            "postgres://app:***@db:5432/onair"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/onair"),
            "postgres://postgres@127.0.0.1/onair"
        );
        let s = ConnectionSettings {
            database_url: "postgres://a:b@c/d".into(),
            nats_url: "nats://u:p@n:4222".into(),
            stream_replicas: 1,
        };
        let debug = format!("{s:?}");
        assert!(!debug.contains(":b@") && !debug.contains(":p@"), "{debug}");
    }

    #[test]
    fn cors_origins_are_origins_or_a_star() {
        assert_eq!(
            cors_origin(" HTTP://Localhost:5173/ "),
            Ok("http://localhost:5173".into())
        );
        assert_eq!(cors_origin("*"), Ok("*".into()));
        assert_eq!(cors_origin(""), Ok(String::new()));
        for bad in [
            "localhost:5173",
            "https://a.example/path",
            "https://*.example.com",
            "://x",
        ] {
            assert!(cors_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_default_to_nobody_and_a_bad_entry_stops_the_start() {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: ServeSettings,
        }
        use clap::Parser;
        let defaults = ServeSettings::with_connection("postgres://db/onair", "nats://nats");
        assert!(defaults.trusted_proxies.is_empty());
        let set = Wrapper::try_parse_from(["onair", "--trusted-proxies", "127.0.0.1/32, ::1"])
            .expect("two entries");
        assert!(set.settings.trusted_proxies.contains([127, 0, 0, 1].into()));
        let error = Wrapper::try_parse_from(["onair", "--trusted-proxies", "10.0.0.0/8,nginx"])
            .err()
            .expect("a name is refused");
        let text = error.to_string();
        assert!(
            text.contains("ONAIR_TRUSTED_PROXIES") && text.contains("nginx"),
            "{text}"
        );
    }

    #[test]
    fn duration_settings_refuse_what_no_timer_can_hold() {
        assert_eq!(seconds("60"), Ok(60.0));
        assert_eq!(seconds("0.5"), Ok(0.5));
        for bad in ["inf", "NaN", "-1", "1e30", "sixty"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
