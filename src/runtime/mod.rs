//! The plumbing every layer may use, which imports nothing else of the crate: the injectable
//! clock, supervised background tasks, logs and traces, `/metrics` recording, memory trimming,
//! PostgreSQL connections and migrations, the client's address behind proxies, and the flood
//! guards of the listener (connections) and of the WebSockets (sockets and frames per IP).

pub mod client_addr;
pub mod clock;
pub mod connection_limits;
pub mod leadership;
pub mod memory;
pub mod metrics;
pub mod postgres;
pub mod socket_limits;
pub mod supervisor;
pub mod telemetry;
