//! Logging: `tracing` with `RUST_LOG`-style filtering (`ONAIR_LOG`, default
//! `info,sqlx=warn,async_nats=warn,poem=warn`); JSON lines with
//! `ONAIR_LOG_FORMAT=json`. Logs go to standard error, colored only when it is a terminal (and
//! `NO_COLOR` is unset), so log files and collectors get plain text.
//!
//! Spans: every API request runs in a root span `request{http.method, http.route,
//! http.status_code}` named by its route template ([`crate::http::request_span`]), and every
//! command in a span named after it with the ids it acts on (`#[tracing::instrument]` in
//! [`crate::commands`]); a line logged inside carries them.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber on standard error from `ONAIR_LOG` and `ONAIR_LOG_FORMAT`;
/// without a valid `ONAIR_LOG` the filter is `info`, with `sqlx`, `async_nats` and `poem` at
/// `warn`. A second call does nothing.
pub fn init() {
    let filter = EnvFilter::try_from_env("ONAIR_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn,poem=warn"));
    let colors = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colors)
        .with_writer(std::io::stderr);
    if std::env::var("ONAIR_LOG_FORMAT").as_deref() == Ok("json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}
