//! The `onair` command line.

use std::process::ExitCode;

use crate::http;
use crate::runtime::postgres::{connect_postgres, migrate};
use crate::server::startup::Application;

mod args;
mod events;
mod records;

pub use self::args::Cli;
use self::args::*;

use self::events::events_command;
use self::records::{api_key_command, connect_all, gift_command, member_command, operator_command};

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
                let db = connect_postgres(&connection.database_url).await?;
                migrate(&db).await?;
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
                let (db, store) = connect_all(&connection).await?;
                let started = std::time::Instant::now();
                let report = crate::ops::replay::run(&db, &store, chosen).await?;
                let took = started.elapsed().as_secs_f64();
                for (name, checkpoint) in &report.checkpoints {
                    println!("{name}: rebuilt and swapped in at sequence {checkpoint}");
                }
                println!(
                    "{} events replayed ({} of them on the projections' subjects) in {took:.2} s \
                     ({:.0} events/s, the swap included)",
                    report.through,
                    report.events,
                    report.through as f64 / took.max(0.001)
                );
            }
            Command::Audit {
                connection,
                keep_schema,
            } => {
                let (db, store) = connect_all(&connection).await?;
                let report = crate::ops::audit::run(&db, &store, keep_schema).await?;
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
                let db = connect_postgres(&connection.database_url).await?;
                migrate(&db).await?;
                return api_key_command(&db, command).await;
            }
            Command::Operator {
                connection,
                command,
            } => {
                let db = connect_postgres(&connection.database_url).await?;
                migrate(&db).await?;
                return operator_command(&db, command).await;
            }
            Command::Member {
                connection,
                command,
            } => return member_command(&connection, command).await,
            Command::Gift {
                connection,
                command,
            } => return gift_command(&connection, command).await,
            Command::Bench(args) => crate::bench::command(args).await?,
            Command::Lake {
                connection,
                settings,
                until_caught_up,
            } => {
                let options = settings.sink_options(until_caught_up)?;
                let db = connect_postgres(&connection.database_url).await?;
                let store =
                    crate::event_store::EventStore::connect(&connection.nats_url, "/onair/lake")
                        .await?;
                let started = std::time::Instant::now();
                let report = tokio::select! {
                    report = crate::lake::run_as_leader(&db, &store, &options) => report?,
                    // Rows not yet flushed are read again by the next run.
                    () = shutdown_signal() => return Ok(ExitCode::SUCCESS),
                };
                let took = started.elapsed().as_secs_f64();
                println!(
                    "{} events ({} rows) written to {} files ({} bytes) in {took:.2} s \
                     ({:.0} events/s); the lake holds sequences 1 to {}",
                    report.events,
                    report.rows,
                    report.files,
                    report.bytes,
                    report.events as f64 / took.max(0.001),
                    report.checkpoint
                );
                if report.skipped > 0 {
                    println!(
                        "{} events skipped (unknown type or unreadable)",
                        report.skipped
                    );
                }
            }
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
