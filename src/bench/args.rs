//! `onair bench` as clap declares it: the scenarios and their flags.

use clap::{Args, Subcommand};

/// `onair bench <scenario>`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The load `onair bench` can generate.
#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Seat `--viewers` viewers (`POST /api/token/viewer`), then beat them
    /// (`POST /api/viewer/heartbeat`) at `--rate` or as fast as the server answers.
    Heartbeats(HeartbeatsArgs),
    /// Viewer token requests (`POST /api/token/viewer`, the pool's decision path) for
    /// `--users` users in turn, across every `--url`.
    Tokens(TokensArgs),
    /// One chat room: `--listeners` sockets, `--senders` members saying `--rate` messages a
    /// second in total; deliveries/s, say-to-delivery latency, losses, slow sockets dropped.
    Chat(ChatArgs),
    /// A gift storm into one live room from `--members` members (`sendGift`); gifts/s and the
    /// time until the room's `giftRank` notice.
    Gifts(GiftsArgs),
    /// This machine's limit: a plain HTTP handler in this process that parses the heartbeat
    /// body, publishes it to JetStream (`--nats-url`) with a `Nats-Msg-Id` and answers after the
    /// ack.
    Reference(ReferenceArgs),
}

/// Flags every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The onair server's base URL; repeat for several instances (requests and sockets are
    /// spread over them in turn).
    #[arg(long = "url", default_value = "http://127.0.0.1:3000")]
    pub urls: Vec<String>,
    /// Where to scrape `/metrics` (projection lag, RSS, CPU); default: the first `--url`.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// How long the load runs, in seconds (the run stops at whichever of `--duration` and
    /// `--count` comes first).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// At most this many requests (heartbeats, tokens, gifts) or `say`s (chat).
    #[arg(long)]
    pub count: Option<u64>,
    /// Print the result as one JSON object on standard output instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The target's PostgreSQL: when given, the bench creates the API key or back-office
    /// operator it needs there (`bench-<run>`); otherwise pass `--api-key` /
    /// `--operator-website` and `--operator-key`. Use a development database.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The target's NATS: also measure the `reference` handler on it in the same run and print
    /// the ratio (HTTP scenarios).
    #[arg(long)]
    pub nats_url: Option<String>,
    /// An API key of the target (`onair apikey create --name bench --rate-limit-per-minute
    /// 100000000`).
    #[arg(long, env = "ONAIR_BENCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A back-office operator's website (`onair operator create --website bench`).
    #[arg(long)]
    pub operator_website: Option<String>,
    /// That operator's key.
    #[arg(long, env = "ONAIR_BENCH_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    /// Also count this local process's CPU time and RSS with the server's (for example the
    /// nats-server's); repeat for several. Read from /proc (Linux).
    #[arg(long = "pid")]
    pub pids: Vec<u32>,
    /// Longest wait for the read models to reach the last acknowledged sequence after the
    /// load, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub catch_up_timeout: f64,
}

/// How HTTP requests are sent.
#[derive(Args, Debug, Clone)]
pub struct HttpLoadArgs {
    /// Connections, each with one request in flight.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,
    /// Requests per second in total, spread over the connections (0: as fast as the server
    /// answers). At a fixed rate, latency counts from when a request was due.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

/// `onair bench heartbeats`.
#[derive(Args, Debug)]
pub struct HeartbeatsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: HttpLoadArgs,
    /// Viewers to seat, then beat in turn (at most the pool's capacity: 20 stages × 50).
    #[arg(long, default_value_t = 500)]
    pub viewers: usize,
}

/// `onair bench tokens`.
#[derive(Args, Debug)]
pub struct TokensArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: HttpLoadArgs,
    /// Users asking for tokens in turn: the first request of each seats it, later ones renew
    /// its token (keep it within the pool's capacity, 20 stages × 50, or expect 503
    /// `STAGE_FULL`).
    #[arg(long, default_value_t = 500)]
    pub users: usize,
}

/// `onair bench chat`.
#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Listening sockets in the room.
    #[arg(long, default_value_t = 200)]
    pub listeners: usize,
    /// Verify the listeners as members (each is created and logs in: slow for thousands);
    /// default: guests.
    #[arg(long)]
    pub verified: bool,
    /// Sockets that say (verified members on onair; guests on the peer). 0: the listeners only
    /// listen until `--duration` ends, for a room shared by several bench processes (each under
    /// the 20,000 open files a process may hold) with `--room` and `--marker`.
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Join this chat room instead of the run's own (`chatroomSystem-chatroom-…`): several
    /// bench processes then fill one room.
    #[arg(long)]
    pub room: Option<String>,
    /// The text the bench messages start with (default: the run's own, `bench<run>`): give the
    /// same to every process of a shared room so its listeners count the messages of its
    /// senders. Latency is measured from the sender's wall clock (µs since the UNIX epoch), so
    /// processes on one machine compare.
    #[arg(long)]
    pub marker: Option<String>,
    /// `say`s per second, all senders together (0: each sender says its next message as soon
    /// as the previous one is answered: the says-accepted-per-second mode).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Extra sockets in the room that stop reading (a small receive buffer): the server should
    /// drop them while the listeners keep their latency.
    #[arg(long, default_value_t = 0)]
    pub slow: usize,
    /// Open sockets from 127.0.0.1 to 127.0.0.N in turn, so that each address stays under
    /// the server's per-IP socket limits (loopback targets only).
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// With two `--url`s or more: the senders on the first, the listeners (and slow sockets) on
    /// the others, so every delivery crosses from one instance to another (say to delivery
    /// across instances); without it, every socket goes to the `--url`s in turn.
    #[arg(long)]
    pub split: bool,
    /// An actionhero server (`bench/peers/actionhero/run.sh` prints it): run the same
    /// scenario against it after onair and print both side by side.
    #[arg(long)]
    pub peer_url: Option<String>,
    /// The peer's chat room (created at its start).
    #[arg(long, default_value = "chatroomSystem-chatroom-bench")]
    pub peer_room: String,
    /// Count this local process's CPU time and RSS as the peer's (node, redis-server).
    #[arg(long = "peer-pid")]
    pub peer_pids: Vec<u32>,
}

/// `onair bench gifts`.
#[derive(Args, Debug)]
pub struct GiftsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: HttpLoadArgs,
    /// Members sending gifts in turn.
    #[arg(long, default_value_t = 20)]
    pub members: usize,
}

/// `onair bench reference`.
#[derive(Args, Debug)]
pub struct ReferenceArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub load: HttpLoadArgs,
}
