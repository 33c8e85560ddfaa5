//! The stage pool's command side: it follows the pool's events from the stream into an in-memory
//! [`StagePool`](crate::domain::stage_pool::StagePool), decides with the pure domain rules, and
//! publishes with the pool's expected sequence (docs/design.md#invariants, 1). On a conflict
//! (another instance published first) it waits for its view to catch up and decides again, a
//! bounded number of times ([`crate::commands::publish`]).
//!
//! # Layout
//! - `service`: the [`PoolService`] handle, its settings, errors and the view it decides against;
//! - `follower`: the loop that keeps the view up to date from the stream;
//! - `heartbeat_batch`: the heartbeat group commit (many heartbeats, one message);
//! - `seat_batch`: seat decisions in batches (many seats decided at once, stored as one chain);
//! - `seats`: viewers (seat and token, heartbeat, leave, expiry) and publisher tokens;
//! - `stages`: stages (master, create, rename, delete, adopt, reconcile, scale-down).

mod follower;
mod heartbeat_batch;
mod seat_batch;
mod seats;
mod service;
mod stages;

pub use heartbeat_batch::HeartbeatBatchSettings;
pub use service::{
    MASTER_STAGE_NAME, PoolService, PoolServiceError, PoolServiceSettings, SeatGranted,
};
