//! The composition root: builds one `onair serve` process from its settings. [`config`] holds
//! the settings (flags and `ONAIR_*` variables), [`startup`] connects the services and starts the
//! roles' background tasks (pool follower, projectors, reactors, chat, stats feed, lake), and
//! [`routes`] mounts the edges' routes for the roles this process runs: the REST API with the
//! chat socket and its client script, or a worker's `/health` and `/metrics`.

pub mod config;
pub mod routes;
pub mod startup;
