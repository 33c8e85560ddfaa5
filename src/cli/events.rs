//! `onair events tail | export | import`: the stream as CloudEvents JSON lines.

use std::process::ExitCode;

use super::args::EventsCommand;
use crate::server::config::ConnectionSettings;

pub(super) async fn events_command(
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
            store.open_stream(connection.stream_replicas).await?;
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
