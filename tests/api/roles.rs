//! `--roles` (docs/operations.md#running-roles-apart): API instances and projector/reactor workers
//! run apart, and together they behave as one process running every role.

use std::time::Duration;

use onair::server::config::ServeRole;
use serde_json::Value;

use crate::helpers::{Services, TestApp, encode, spawn_app_with};

/// `GET path` with `X-Min-Sequence: sequence`: the status and body.
async fn read_at(app: &TestApp, path: &str, sequence: u64) -> (u16, Value) {
    let answer = crate::read_your_writes::get_at(app, path, sequence).await;
    (answer.status.as_u16(), answer.body)
}

#[tokio::test]
async fn an_api_instance_serves_what_a_separate_worker_projects() {
    let services = Services::start().await;
    let api = spawn_app_with(&services, |s| {
        s.roles = vec![ServeRole::Api];
        s.min_sequence_wait_ms = 300;
    })
    .await;

    // Alone, the API instance stores the viewer but builds no read model: a read that must see
    // the write is refused as behind, naming the read model.
    let token = api.viewer_token("split-1").await;
    assert_eq!(token.status, 200, "{}", token.body);
    let sequence = token.event_sequence();
    let list = format!("/api/viewer/list/{}", encode(&api.master_stage_arn().await));
    let (status, body) = read_at(&api, &list, sequence).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "READ_MODEL_BEHIND");

    // A worker (projectors and reactors, no API) catches the read models up.
    let worker = spawn_app_with(&services, |s| {
        s.roles = vec![ServeRole::Projectors, ServeRole::Reactors];
    })
    .await;
    let seen = crate::helpers::eventually(Duration::from_secs(10), || async {
        let (status, body) = read_at(&api, &list, sequence).await;
        (status == 200).then_some(body)
    })
    .await;
    let users: Vec<&str> = seen["data"]["viewers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["userId"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["split-1"]);

    // The worker serves no API, only its health and metrics.
    assert_eq!(worker.get("/api/stats").await.status, 404);
    let health = worker.get("/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    let metrics = worker
        .client
        .get(format!("{}/metrics", worker.address))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
}
