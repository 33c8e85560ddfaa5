//! Reconciler (docs/design.md#decided-open-points): compares the pool with the provider's stages
//! now and then. Stages tagged `ManagedBy=onair` that the pool does not hold are orphans (left by a
//! failed creation, for example): they are reported, and deleted when
//! `ONAIR_RECONCILE_DELETE_ORPHANS` is set. Pool stages the provider no longer has are reported.

use std::time::Duration;

use crate::commands::pool::PoolService;

/// Runs every `interval` until the task is dropped (the first run after one interval).
pub async fn run(pool: PoolService, interval: Duration, delete_orphans: bool) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = pool.reconcile(delete_orphans).await {
            tracing::warn!(error = %e, "reconciliation failed; will retry");
        }
    }
}
