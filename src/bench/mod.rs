//! `onair bench`: a load generator that users run against their own deployment (as `nats bench`
//! is for NATS), and that this project uses to hold its figures.
//!
//! Scenarios, one file each: [`heartbeats`], [`tokens`], [`chat`] (with [`chat_socket`]),
//! [`gifts`] and [`reference`]. They share the HTTP load loop ([`runner`]), the result table
//! and JSON ([`report`]), the `/metrics` scraper ([`scrape`]) and the setup of keys, operators
//! and members ([`setup`]). Each run is bounded by `--duration` and `--count`, shows a progress
//! bar on standard error, and prints a table (or `--json`) on standard output.

use std::time::Duration;

pub mod args;
pub mod chat;
pub mod chat_socket;
pub mod gifts;
pub mod heartbeats;
pub mod reference;
pub mod report;
pub mod runner;
pub mod scrape;
pub mod setup;
pub mod tokens;

pub use self::args::{BenchArgs, Scenario};
pub use self::report::Report;

use self::args::{CommonArgs, HttpLoadArgs};

/// Runs a scenario and returns its report.
pub async fn run(scenario: &Scenario) -> anyhow::Result<Report> {
    match scenario {
        Scenario::Heartbeats(a) => heartbeats::run(a).await,
        Scenario::Tokens(a) => tokens::run(a).await,
        Scenario::Chat(a) => chat::run(a).await,
        Scenario::Gifts(a) => gifts::run(a).await,
        Scenario::Reference(a) => reference::run(&a.common, &a.load).await,
    }
}

impl Scenario {
    /// The flags every scenario takes.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Scenario::Heartbeats(a) => &a.common,
            Scenario::Tokens(a) => &a.common,
            Scenario::Chat(a) => &a.common,
            Scenario::Gifts(a) => &a.common,
            Scenario::Reference(a) => &a.common,
        }
    }
}

/// `onair bench <scenario>`: runs it and prints the table, or the JSON report with `--json`.
pub async fn command(args: BenchArgs) -> anyhow::Result<()> {
    let report = run(&args.scenario).await?;
    if args.scenario.common().json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The `--url`s without a trailing slash.
fn base_urls(common: &CommonArgs) -> Vec<String> {
    common
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect()
}

/// Where `/metrics` is scraped.
fn metrics_url(common: &CommonArgs) -> Option<String> {
    common
        .metrics_url
        .clone()
        .or_else(|| base_urls(common).into_iter().next())
}

/// The HTTP load of a scenario.
fn plan(common: &CommonArgs, load: &HttpLoadArgs) -> runner::Plan {
    runner::Plan {
        connections: load.connections.max(1),
        rate: load.rate,
        count: common.count,
        duration: Duration::from_secs_f64(common.duration.max(0.0)),
        quiet: common.quiet,
    }
}
