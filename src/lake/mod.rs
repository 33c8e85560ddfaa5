//! The analytics lake (docs/analytics.md): the event stream written as Parquet files,
//! Hive-partitioned by event type, UTC date and hour, for DuckDB, ClickHouse and any engine that
//! reads Parquet.
//!
//! - [`columns`]: each event type's columns, derived from its published JSON Schema, and the rows
//!   an event gives (pure).
//! - [`parquet_file`]: one file of rows, written with the `parquet` crate's column writers.
//! - [`layout`]: the directory, the temporary-name/fsync/rename flush, and the recovery that makes
//!   the files themselves the checkpoint.
//! - [`sink`]: the loop over the stream's durable consumer `onair-lake`, rolling by size and time.
//!
//! One writer per lake: it runs as `onair lake` or as the `lake` role of `onair serve`, and in both
//! it first takes the Postgres advisory lock `onair.lake` (as a projection leader takes its own),
//! so in a cluster one worker writes and the others stand by to take over.

pub mod columns;
pub mod layout;
pub mod parquet_file;
pub mod sink;

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};

use crate::event_store::EventStore;

pub use self::sink::{SinkOptions, SinkReport};

/// Where the lake is and when its files roll (`onair lake` and the `lake` role of `onair serve`).
#[derive(clap::Args, Clone, Debug)]
pub struct LakeSettings {
    /// The lake's root directory (created if missing); required by `onair lake` and the `lake`
    /// role.
    #[arg(long = "lake-dir", visible_alias = "dir", env = "ONAIR_LAKE_DIR")]
    pub lake_dir: Option<PathBuf>,
    /// Roll: write the buffered rows once they take this many MiB (values before encoding and
    /// compression; the files are several times smaller).
    #[arg(long, env = "ONAIR_LAKE_ROLL_MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub lake_roll_mib: u64,
    /// Roll: write the buffered rows once the oldest has waited this many seconds, so fresh events
    /// are queryable within it.
    #[arg(long, env = "ONAIR_LAKE_ROLL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub lake_roll_secs: u64,
}

impl LakeSettings {
    /// The writer's options; `until_caught_up` stops it once the events stored at its start are
    /// written.
    ///
    /// Errors: no lake directory is set.
    pub fn sink_options(&self, until_caught_up: bool) -> anyhow::Result<SinkOptions> {
        let dir = self.lake_dir.clone().ok_or_else(|| {
            anyhow::anyhow!("the lake needs a directory: --lake-dir DIR (or ONAIR_LAKE_DIR)")
        })?;
        Ok(SinkOptions {
            dir,
            roll_bytes: usize::try_from(self.lake_roll_mib << 20).unwrap_or(usize::MAX),
            roll_interval: Duration::from_secs(self.lake_roll_secs),
            until_caught_up,
        })
    }
}

/// The advisory-lock key of the lake writer: `hashtext('onair.lake')`.
const LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtext('onair.lake')::bigint)";

/// Waits to be the lake's one writer (the Postgres advisory lock `onair.lake`, on a connection of
/// its own), then writes until stopped, until caught up (`options.until_caught_up`) or until the
/// lock is lost. Metric `onair_lake_leader` is 1 while this process writes.
///
/// Errors: Postgres or NATS unreachable, the lock lost, the lake unreadable or unwritable.
pub async fn run_as_leader(
    db: &PgPool,
    store: &EventStore,
    options: &SinkOptions,
) -> anyhow::Result<SinkReport> {
    let mut lock = PgConnection::connect_with(&db.connect_options()).await?;
    let mut waiting_since: Option<std::time::Instant> = None;
    loop {
        let (locked,): (bool,) = sqlx::query_as(LOCK_SQL).fetch_one(&mut lock).await?;
        if locked {
            break;
        }
        if waiting_since.is_none() {
            tracing::info!("another process writes the lake; standing by");
            waiting_since = Some(std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    metrics::gauge!("onair_lake_leader").set(1.0);
    let result = {
        let lock = tokio::sync::Mutex::new(&mut lock);
        // Before each flush is made visible, the lock connection must still answer.
        let still_leader = || async {
            let mut connection = lock.lock().await;
            match tokio::time::timeout(crate::projections::LOCK_CHECK_TIMEOUT, connection.ping())
                .await
            {
                Ok(Ok(())) => Ok(()),
                _ => Err(anyhow::anyhow!(
                    "the lake's lock connection failed; flush abandoned"
                )),
            }
        };
        let held = async {
            loop {
                tokio::time::sleep(crate::projections::LOCK_CHECK_INTERVAL).await;
                if let Err(e) = still_leader().await {
                    return e;
                }
            }
        };
        tokio::select! {
            result = sink::run(store, options, still_leader) => result,
            lost = held => Err(lost),
        }
    };
    metrics::gauge!("onair_lake_leader").set(0.0);
    let _ = tokio::time::timeout(crate::projections::LOCK_CHECK_TIMEOUT, lock.close()).await;
    result
}

/// The `lake` role of `onair serve`: [`run_as_leader`] again and again (after an error, 1 s
/// later), until the task is dropped.
pub async fn run_role(db: PgPool, store: EventStore, options: SinkOptions) {
    loop {
        if let Err(e) = run_as_leader(&db, &store, &options).await {
            tracing::warn!(error.cause_chain = ?e, "lake writer stopped; restarting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
