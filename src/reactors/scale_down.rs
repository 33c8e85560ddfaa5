//! Scale-down (docs/design.md#decided-open-points): an auto-scaled stage with fewer than 5
//! viewers and older than 5 minutes drains (takes no new viewers) and is deleted once empty. Runs on
//! every instance; the pool's guard makes each step happen once.

use std::time::Duration;

use crate::commands::pool::PoolService;
use crate::domain::stage_pool::ScaleDownPolicy;

/// Checks every `interval` until the task is dropped.
pub async fn run(pool: PoolService, policy: ScaleDownPolicy, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = pool.scale_down(policy).await {
            tracing::warn!(error = %e, "scale-down failed; will retry");
        }
    }
}
