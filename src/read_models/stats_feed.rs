//! The live figures of the stats WebSocket `/ws` and of the dashboard's viewer history: one task
//! recomputes them from the `stages` read model every push interval and hands them to every
//! reader through a watch channel.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::events::cloudevents::format_time;
use crate::read_models;
use crate::runtime::clock::Clock;

/// The figures of a `stats_update`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Sum of the viewers of every stage.
    pub viewer_count: u32,
    /// Stages in the pool.
    pub active_stages: u32,
    /// RFC 3339 UTC with ms.
    pub timestamp: String,
}

/// Recomputes the snapshot every `interval` and publishes it to every socket; its `timestamp`
/// comes from `clock`.
pub async fn run_feed(
    db: PgPool,
    clock: Clock,
    interval: Duration,
    feed: Arc<watch::Sender<Option<StatsSnapshot>>>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match read_models::stages(&db).await {
            Ok(stages) => {
                feed.send_replace(Some(StatsSnapshot {
                    viewer_count: stages.iter().map(|s| s.viewer_count.max(0) as u32).sum(),
                    active_stages: stages.len() as u32,
                    timestamp: format_time(clock.now()),
                }));
            }
            Err(e) => tracing::warn!(error = %e, "stats feed could not read the read model"),
        }
    }
}
