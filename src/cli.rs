//! The `onair` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::config::{ConnectionSettings, ServeSettings};
use crate::startup::{Application, connect_postgres, migrate};
use crate::{api_keys, http};

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
    /// Manage API keys (header `x-api-key`).
    Apikey {
        #[command(flatten)]
        connection: ConnectionSettings,
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
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
            Command::Apikey {
                connection,
                command,
            } => {
                let pool = connect_postgres(&connection.database_url).await?;
                migrate(&pool).await?;
                return api_key_command(&pool, command).await;
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
