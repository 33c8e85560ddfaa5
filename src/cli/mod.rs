//! The `onair` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::commands::{gift_catalog, members};
use crate::domain::member::{MemberId, Role};
use crate::http;
use crate::records::{api_keys, operators};
use crate::runtime::config::{ConnectionSettings, ServeSettings};
use crate::runtime::startup::{Application, connect_postgres, migrate};

/// onair: event-sourced backend for live-streaming platforms (Stage API on Amazon IVS real-time,
/// NATS JetStream, PostgreSQL).
#[derive(Parser, Debug)]
#[command(name = "onair", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
}

/// Which events `tail` and `export` read.
#[derive(clap::Args, Debug)]
struct EventFilter {
    /// From this stream sequence or RFC 3339 event time, compared with each event's `ce-time`
    /// (default: the start; `tail`: now).
    #[arg(long)]
    since: Option<crate::ops::events::Position>,
    /// Up to this stream sequence or RFC 3339 event time, inclusive (default: the end as it is
    /// now).
    #[arg(long)]
    until: Option<crate::ops::events::Position>,
    /// Only these event types (`onair.viewer.joined.v1`); repeat for several.
    #[arg(long = "type")]
    types: Vec<String>,
    /// Only events on this subject filter (`onair.viewer.>`).
    #[arg(long)]
    subject: Option<String>,
}

impl EventFilter {
    fn selection(self) -> crate::ops::events::Selection {
        crate::ops::events::Selection {
            since: self.since,
            until: self.until,
            types: self.types,
            subject: self.subject,
        }
    }
}

#[derive(Subcommand, Debug)]
enum EventsCommand {
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
enum OperatorCommand {
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
enum MemberCommand {
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
enum RoleArg {
    Member,
    Streamer,
}

#[derive(Subcommand, Debug)]
enum GiftCommand {
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
enum SpecFormat {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
enum ApiKeyCommand {
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

impl Cli {
    /// Runs the command; an error is printed to standard error and exits 1.
    pub async fn run(self) -> ExitCode {
        match self.command.run().await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

impl Command {
    async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Serve(settings) => {
                tracing::info!(?settings, "starting");
                let app = Application::build(*settings).await?;
                app.run_until_stopped(shutdown_signal()).await?;
                tracing::info!("stopped");
            }
            Command::Migrate(connection) => {
                let pool = connect_postgres(&connection.database_url).await?;
                migrate(&pool).await?;
                eprintln!("migrations applied");
            }
            Command::Openapi { format } => {
                let api = http::openapi_service();
                match format {
                    SpecFormat::Yaml => print!("{}", api.spec_yaml()),
                    SpecFormat::Json => println!("{}", api.spec()),
                }
            }
            Command::Replay {
                connection,
                projections,
                all,
            } => {
                let chosen = crate::ops::replay::select((!all).then_some(projections.as_slice()))?;
                let (pool, store) = connect_all(&connection).await?;
                let report = crate::ops::replay::run(&pool, &store, chosen).await?;
                for (name, checkpoint) in &report.checkpoints {
                    println!("{name}: rebuilt and swapped in at sequence {checkpoint}");
                }
                println!("{} events replayed", report.events);
            }
            Command::Audit {
                connection,
                keep_schema,
            } => {
                let (pool, store) = connect_all(&connection).await?;
                let report = crate::ops::audit::run(&pool, &store, keep_schema).await?;
                println!("{} events read", report.events);
                for d in &report.differences {
                    println!("{}: {} rows differ", d.table, d.count);
                    for row in &d.only_live {
                        println!("  live only:    {row}");
                    }
                    for row in &d.only_rebuilt {
                        println!("  rebuilt only: {row}");
                    }
                }
                for (first, last) in &report.gaps {
                    println!("gap: sequences {first} to {last} are missing");
                }
                for (sequence, reason) in &report.unknown {
                    println!("sequence {sequence}: no projector can read it: {reason}");
                }
                if report.is_clean() {
                    println!("0 differences");
                } else {
                    return Ok(ExitCode::FAILURE);
                }
            }
            Command::Schemas { out } => {
                let files = crate::events::schema::files();
                for (path, content) in &files {
                    let path = out.join(path);
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(&path, content)?;
                }
                eprintln!("{} files written under {}", files.len(), out.display());
            }
            Command::Apikey {
                connection,
                command,
            } => {
                let pool = connect_postgres(&connection.database_url).await?;
                migrate(&pool).await?;
                return api_key_command(&pool, command).await;
            }
            Command::Operator {
                connection,
                command,
            } => {
                let pool = connect_postgres(&connection.database_url).await?;
                migrate(&pool).await?;
                return operator_command(&pool, command).await;
            }
            Command::Member {
                connection,
                command,
            } => return member_command(&connection, command).await,
            Command::Gift {
                connection,
                command,
            } => return gift_command(&connection, command).await,
            Command::Events {
                connection,
                command,
            } => {
                return match events_command(&connection, command).await {
                    // The reader went away (`onair events tail | head`): not an error.
                    Err(e)
                        if e.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
                            == Some(std::io::ErrorKind::BrokenPipe) =>
                    {
                        Ok(ExitCode::SUCCESS)
                    }
                    other => other,
                };
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

async fn api_key_command(pool: &sqlx::PgPool, command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeyCommand::Create {
            name,
            rate_limit_per_minute,
        } => {
            let (record, key) = api_keys::create(pool, &name, rate_limit_per_minute).await?;
            eprintln!(
                "created API key {} ({}); store it now, it is not shown again:",
                record.id, record.name
            );
            println!("{key}");
        }
        ApiKeyCommand::List => {
            println!("id\tname\tprefix\trate_limit_per_minute\tcreated_at\trevoked_at");
            for k in api_keys::list(pool).await? {
                println!(
                    "{}\t{}\t{}…\t{}\t{}\t{}",
                    k.id,
                    k.name,
                    k.key_prefix,
                    k.rate_limit_per_minute,
                    crate::events::cloudevents::format_time(k.created_at),
                    k.revoked_at
                        .map(crate::events::cloudevents::format_time)
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        ApiKeyCommand::Revoke { id } => {
            if api_keys::revoke(pool, id).await? {
                eprintln!("revoked {id}");
            } else {
                eprintln!("no active key with id {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
        ApiKeyCommand::SetLimit { id, per_minute } => {
            if api_keys::set_rate_limit(pool, id, per_minute).await? {
                eprintln!("rate limit of {id} set to {per_minute} requests per minute");
            } else {
                eprintln!("no active key with id {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
        ApiKeyCommand::Verify { key } => {
            return Ok(match api_keys::verify(pool, &key).await? {
                Some(record) => {
                    eprintln!("valid: {} ({})", record.id, record.name);
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("not a valid active key");
                    ExitCode::FAILURE
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn operator_command(
    pool: &sqlx::PgPool,
    command: OperatorCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        OperatorCommand::Create {
            website,
            master_agent,
        } => {
            let key = operators::create(pool, &website, master_agent.as_deref()).await?;
            eprintln!("created operator {website}; store the key now, it is not shown again:");
            println!("{key}");
        }
        OperatorCommand::List => {
            println!("website\tmaster_agent\tcreated_at\trevoked_at");
            for o in operators::list(pool).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    o.website,
                    o.master_agent.as_deref().unwrap_or("*"),
                    crate::events::cloudevents::format_time(o.created_at),
                    o.revoked_at
                        .map(crate::events::cloudevents::format_time)
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        OperatorCommand::Revoke { website } => {
            if operators::revoke(pool, &website).await? {
                eprintln!("revoked {website}");
            } else {
                eprintln!("no active operator {website}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Postgres (migrated) and the event stream, for commands that publish.
async fn connect_all(
    connection: &ConnectionSettings,
) -> anyhow::Result<(sqlx::PgPool, crate::event_store::EventStore)> {
    let pool = connect_postgres(&connection.database_url).await?;
    migrate(&pool).await?;
    let store = crate::event_store::EventStore::connect(&connection.nats_url, "/onair/cli").await?;
    store.ensure_stream(1).await.ok();
    Ok((pool, store))
}

async fn member_command(
    connection: &ConnectionSettings,
    command: MemberCommand,
) -> anyhow::Result<ExitCode> {
    let MemberCommand::Create {
        member_id,
        nickname,
        role,
        password,
        password_stdin,
        avatar,
        vip,
        equipment_bar,
        account_id,
    } = command;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        password.unwrap_or_default()
    };
    let member_id = MemberId::parse(&member_id, "member-id")?;
    let (pool, store) = connect_all(connection).await?;
    let (profile, _) = members::register(
        &pool,
        &store,
        members::NewMember {
            member_id,
            role: match role {
                RoleArg::Member => Role::Member,
                RoleArg::Streamer => Role::Streamer,
            },
            password,
            nickname,
            avatar,
            vip,
            equipment_bar,
            account_id,
        },
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    eprintln!("registered {} ({})", profile.member_id, profile.role);
    Ok(ExitCode::SUCCESS)
}

async fn gift_command(
    connection: &ConnectionSettings,
    command: GiftCommand,
) -> anyhow::Result<ExitCode> {
    let (pool, store) = connect_all(connection).await?;
    match command {
        GiftCommand::Set {
            gift_id,
            name,
            points,
            anime_url,
            disabled,
        } => {
            let (gift, _) = gift_catalog::define(
                &pool,
                &store,
                gift_catalog::Gift {
                    gift_id,
                    name,
                    points,
                    anime_url,
                    enabled: !disabled,
                },
                time::OffsetDateTime::now_utc(),
            )
            .await?;
            eprintln!(
                "gift {} set: {} ({} points)",
                gift.gift_id, gift.name, gift.points
            );
        }
        GiftCommand::List => {
            println!("gift_id\tname\tpoints\tanime_url\tenabled");
            for g in gift_catalog::list(&pool).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    g.gift_id, g.name, g.points, g.anime_url, g.enabled
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn events_command(
    connection: &ConnectionSettings,
    command: EventsCommand,
) -> anyhow::Result<ExitCode> {
    let store = crate::event_store::EventStore::connect(&connection.nats_url, "/onair/cli").await?;
    match command {
        EventsCommand::Tail {
            filter,
            durable: Some(name),
            count,
        } => {
            let mut out = std::io::stdout().lock();
            crate::ops::events::tail_durable(&store, &filter.selection(), &name, count, &mut out)
                .await?;
        }
        EventsCommand::Tail { filter, .. } => {
            let mut out = std::io::stdout().lock();
            crate::ops::events::export(&store, &filter.selection(), true, &mut out).await?;
        }
        EventsCommand::Export { filter, output } => {
            let written = match output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    crate::ops::events::export(&store, &filter.selection(), false, &mut file)
                        .await?
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    crate::ops::events::export(&store, &filter.selection(), false, &mut out).await?
                }
            };
            eprintln!("{written} events exported");
        }
        EventsCommand::Import { file } => {
            store.ensure_stream(1).await?;
            let loaded = if file.as_os_str() == "-" {
                let mut input = std::io::stdin().lock();
                crate::ops::events::import(&store, &mut input).await?
            } else {
                let mut input = std::io::BufReader::new(std::fs::File::open(&file)?);
                crate::ops::events::import(&store, &mut input).await?
            };
            eprintln!("{loaded} events imported");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
