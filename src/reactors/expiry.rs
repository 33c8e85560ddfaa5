//! Heartbeat expiry: a viewer silent for longer than the timeout (the Stage API: 60 s) loses the
//! seat. The reactor runs on every instance; the pool's guard and derived event ids make sure each
//! expiry is stored once.

use std::time::Duration;

use crate::commands::pool::PoolService;

/// Checks every `interval` until the task is dropped.
pub async fn run(pool: PoolService, timeout: Duration, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match pool.expire_silent_viewers(timeout).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "silent viewers expired"),
            Err(e) => tracing::warn!(error = %e, "viewer expiry failed; will retry"),
        }
    }
}
