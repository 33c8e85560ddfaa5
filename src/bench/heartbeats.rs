//! `onair bench heartbeats`: seat `--viewers` viewers with `POST /api/token/viewer`, then beat
//! them in turn with `POST /api/viewer/heartbeat`; at the end they leave
//! (`POST /api/viewer/leave`), freeing their seats.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;

use super::args::HeartbeatsArgs;
use super::report::Report;
use super::runner::{drive, http_client, send};
use super::scrape::Sampler;
use super::{reference, setup};

/// Seats `n` viewers named `bench-<run>-<prefix><i>`, 16 at a time; `(user, stage ARN)`.
pub async fn seat(
    client: &reqwest::Client,
    urls: &[String],
    key: &str,
    run: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let user = format!("bench-{run}-{i}");
            let request = client
                .post(format!("{}/api/token/viewer", urls[i % urls.len()]))
                .header("x-api-key", key)
                .json(&json!({ "userId": user }));
            async move {
                let response = request.send().await?;
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if !status.is_success() {
                    anyhow::bail!("seating {user}: {status} {body}");
                }
                let arn = body["data"]["stageArn"]
                    .as_str()
                    .context("viewer token without stageArn")?
                    .to_owned();
                Ok((user, arn))
            }
        })
        .buffered(16)
        .try_collect()
        .await
}

/// `onair bench heartbeats`.
pub async fn run(args: &HeartbeatsArgs) -> anyhow::Result<Report> {
    let common = &args.common;
    let run = setup::run_id();
    let key = setup::api_key(common, &run).await?;
    let client = http_client(args.load.connections);
    let urls = super::base_urls(common);
    if !common.quiet {
        eprintln!("seating {} viewers", args.viewers);
    }
    let viewers = Arc::new(seat(&client, &urls, &key, &run, args.viewers.max(1)).await?);
    let plan = super::plan(common, &args.load);
    let sampler = Sampler::start(
        client.clone(),
        super::metrics_url(common),
        common.pids.clone(),
    )
    .await;
    let figures = {
        let (viewers, urls, key, client) =
            (viewers.clone(), urls.clone(), key.clone(), client.clone());
        drive(&plan, "heartbeats", move |i| {
            let (user, arn) = &viewers[i as usize % viewers.len()];
            send(
                client
                    .post(format!(
                        "{}/api/viewer/heartbeat",
                        urls[i as usize % urls.len()]
                    ))
                    .header("x-api-key", &key)
                    .json(&json!({"userId": user, "stageArn": arn})),
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
    futures_util::stream::iter(viewers.iter())
        .for_each_concurrent(16, |(user, arn)| {
            let request = client
                .post(format!("{}/api/viewer/leave", urls[0]))
                .header("x-api-key", &key)
                .json(&json!({"userId": user, "stageArn": arn}));
            async move {
                let _ = request.send().await;
            }
        })
        .await;
    let mut report = Report::for_http("heartbeats", &urls, figures, finished);
    reference::attach(&mut report, reference::measure(common, &plan, &run).await?);
    Ok(report)
}
