//! `onair bench tokens`: `POST /api/token/viewer` for `--users` users in turn, across every
//! `--url`: the first request of a user seats it (the pool's decision, published through the
//! pool's sequence guard), later ones renew its token. Seats are not freed by the bench: they
//! expire after the heartbeat timeout (60 s).

use std::time::Duration;

use serde_json::json;

use super::args::TokensArgs;
use super::report::Report;
use super::runner::{drive, http_client, send};
use super::scrape::Sampler;
use super::{reference, setup};

/// `onair bench tokens`.
pub async fn run(args: &TokensArgs) -> anyhow::Result<Report> {
    let common = &args.common;
    let run = setup::run_id();
    let key = setup::api_key(common, &run).await?;
    let client = http_client(args.load.connections);
    let urls = super::base_urls(common);
    let plan = super::plan(common, &args.load);
    let users = args.users.max(1) as u64;
    let sampler = Sampler::start(
        client.clone(),
        super::metrics_url(common),
        common.pids.clone(),
    )
    .await;
    let figures = {
        let (urls, key, client, run) = (urls.clone(), key.clone(), client.clone(), run.clone());
        drive(&plan, "tokens", move |i| {
            send(
                client
                    .post(format!(
                        "{}/api/token/viewer",
                        urls[i as usize % urls.len()]
                    ))
                    .header("x-api-key", &key)
                    .json(&json!({"userId": format!("bench-{run}-t{}", i % users)})),
            )
        })
        .await
    };
    let finished = sampler
        .finish(
            figures.last_sequence,
            Duration::from_secs_f64(common.catch_up_timeout),
        )
        .await;
    let mut report = Report::for_http("tokens", &urls, figures, finished);
    reference::attach(&mut report, reference::measure(common, &plan, &run).await?);
    Ok(report)
}
