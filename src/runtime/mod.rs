//! The plumbing every role shares: settings, startup and the supervised background tasks, logs
//! and traces, `/metrics` recording.

pub mod clock;
pub mod config;
pub mod connection_limits;
pub mod leadership;
pub mod memory;
pub mod metrics;
pub mod startup;
pub mod supervisor;
pub mod telemetry;
