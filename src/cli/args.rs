//! The `onair` command line as clap declares it: subcommands, their flags and environment
//! variables. What each subcommand does is in [`super`] and its sibling modules.

use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::server::config::{ConnectionSettings, ServeSettings};

/// onair: event-sourced backend for live-streaming platforms (Stage API on Amazon IVS real-time,
/// NATS JetStream, PostgreSQL).
#[derive(Parser, Debug)]
#[command(name = "onair", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Run the API server, projectors and reactors (applies migrations and the stream config first).
    Serve(Box<ServeSettings>),
    /// Apply the database migrations and exit.
    Migrate(ConnectionSettings),
    /// Print the OpenAPI spec of the HTTP API.
    Openapi {
        #[arg(long, value_enum, default_value_t = SpecFormat::Yaml)]
        format: SpecFormat,
    },
    /// Rebuild read models from the stream into fresh tables and swap them in while servers keep
    /// serving (progress on standard error).
    Replay {
        #[command(flatten)]
        connection: ConnectionSettings,
        /// A projection to rebuild (repeat for several): stages, viewers, publisher, rooms,
        /// followers, gifts, room_activity.
        #[arg(
            long = "projection",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        projections: Vec<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
    /// Rebuild every read model from sequence 1 into a scratch schema, compare it with the live
    /// read models row by row, and report differences, stream gaps and unreadable events (exit 1
    /// when there is any).
    Audit {
        #[command(flatten)]
        connection: ConnectionSettings,
        /// Keep the scratch schema (`onair_audit_*`) for inspection.
        #[arg(long)]
        keep_schema: bool,
    },
    /// Write the event stream's JSON Schemas (`events/<type>.json`) and AsyncAPI document
    /// (`asyncapi.json`) into a folder (regenerate `openapi/` with it).
    Schemas {
        #[arg(long, default_value = "openapi")]
        out: std::path::PathBuf,
    },
    /// Manage API keys (header `x-api-key`).
    Apikey {
        #[command(flatten)]
        connection: ConnectionSettings,
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Manage back-office operators (`website` + `key` of /api/backoffice/*).
    Operator {
        #[command(flatten)]
        connection: ConnectionSettings,
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Register members and streamers (publishes `member.registered`).
    Member {
        #[command(flatten)]
        connection: ConnectionSettings,
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Read and load the event stream as CloudEvents JSON lines.
    Events {
        #[command(flatten)]
        connection: ConnectionSettings,
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Manage the gift catalog (publishes `gift_catalog.defined`).
    Gift {
        #[command(flatten)]
        connection: ConnectionSettings,
        #[command(subcommand)]
        command: GiftCommand,
    },
    /// Write the event stream into Parquet files for analysts, Hive-partitioned by event type, UTC
    /// date and hour (docs/analytics.md). Resumes where its files end; one writer per lake (a
    /// Postgres advisory lock), so a second one stands by.
    Lake {
        #[command(flatten)]
        connection: ConnectionSettings,
        #[command(flatten)]
        settings: crate::lake::LakeSettings,
        /// Write the events stored so far, then stop (a backfill), and print the rate.
        #[arg(long)]
        until_caught_up: bool,
    },
    /// Generate load against a running onair (heartbeats, tokens, chat, gifts) or measure this
    /// machine's reference handler; prints a table, or JSON with `--json`.
    Bench(crate::bench::BenchArgs),
}

/// Which events `tail` and `export` read.
#[derive(clap::Args, Debug)]
pub(super) struct EventFilter {
    /// From this stream sequence or RFC 3339 event time, compared with each event's `ce-time`
    /// (default: the start; `tail`: now).
    #[arg(long)]
    pub(super) since: Option<crate::ops::events::Position>,
    /// Up to this stream sequence or RFC 3339 event time, inclusive (default: the end as it is
    /// now).
    #[arg(long)]
    pub(super) until: Option<crate::ops::events::Position>,
    /// Only these event types (`onair.viewer.joined.v1`); repeat for several.
    #[arg(long = "type")]
    pub(super) types: Vec<String>,
    /// Only events on this subject filter (`onair.viewer.>`).
    #[arg(long)]
    pub(super) subject: Option<String>,
}

impl EventFilter {
    pub(super) fn selection(self) -> crate::ops::events::Selection {
        crate::ops::events::Selection {
            since: self.since,
            until: self.until,
            types: self.types,
            subject: self.subject,
        }
    }
}

#[derive(Subcommand, Debug)]
pub(super) enum EventsCommand {
    /// Print new events as they are stored (CloudEvents JSON lines) until interrupted.
    Tail {
        #[command(flatten)]
        filter: EventFilter,
        /// Read through the durable consumer `onair-tail-NAME`: a later run goes on after the
        /// last event this one printed (at least once; `--since` and `--subject` apply when it
        /// is created).
        #[arg(long, value_name = "NAME")]
        durable: Option<String>,
        /// Stop after this many events (with `--durable`).
        #[arg(long, requires = "durable")]
        count: Option<u64>,
    },
    /// Write the selected events as CloudEvents JSON lines (progress on standard error).
    Export {
        #[command(flatten)]
        filter: EventFilter,
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Load an export into an empty stream, keeping ids, sources and times.
    Import {
        /// The file to read (`-`: standard input).
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum OperatorCommand {
    /// Create the operator of a website (or re-key a revoked one); prints only the key on standard
    /// output (it is shown this once).
    Create {
        #[arg(long)]
        website: String,
        /// Scope the operator to one master agent: its members, agent lines and rooms only, and
        /// not the gift catalog, maintenance mode or messages to every room.
        #[arg(long)]
        master_agent: Option<String>,
    },
    /// List operators (website, master agent, created, revoked).
    List,
    /// Revoke a website's key.
    Revoke { website: String },
}

#[derive(Subcommand, Debug)]
pub(super) enum MemberCommand {
    /// Register a member or streamer.
    Create {
        /// `account@agent.masterAgent`.
        #[arg(long)]
        member_id: String,
        /// 1 to 50 characters.
        #[arg(long)]
        nickname: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Member)]
        role: RoleArg,
        /// The password (8 to 128 characters); prefer --password-stdin or the environment.
        #[arg(
            long,
            env = "ONAIR_MEMBER_PASSWORD",
            hide_env_values = true,
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, default_value = "")]
        avatar: String,
        #[arg(long, default_value = "")]
        vip: String,
        #[arg(long, default_value = "")]
        equipment_bar: String,
        /// Defaults to the account part of the member id.
        #[arg(long)]
        account_id: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum RoleArg {
    Member,
    Streamer,
}

#[derive(Subcommand, Debug)]
pub(super) enum GiftCommand {
    /// Create or replace a gift.
    Set {
        #[arg(long)]
        gift_id: i64,
        #[arg(long)]
        name: String,
        /// Ranking points per gift.
        #[arg(long)]
        points: i32,
        #[arg(long, default_value = "")]
        anime_url: String,
        /// Stop members from sending it.
        #[arg(long)]
        disabled: bool,
    },
    /// List the catalog.
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum SpecFormat {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
pub(super) enum ApiKeyCommand {
    /// Create a key; prints only the key on standard output (it is shown this once).
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Requests per minute allowed with this key.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..))]
        rate_limit_per_minute: i32,
    },
    /// List keys (id, name, prefix, limit, created, revoked).
    List,
    /// Revoke a key by id.
    Revoke { id: Uuid },
    /// Set a key's rate limit; running servers apply it within ONAIR_API_KEY_CACHE_SECS.
    SetLimit {
        id: Uuid,
        /// Requests per minute allowed with this key (also the burst).
        #[arg(value_parser = clap::value_parser!(i32).range(1..))]
        per_minute: i32,
    },
    /// Exit 0 if the key is valid and active, 1 otherwise.
    Verify { key: String },
}
