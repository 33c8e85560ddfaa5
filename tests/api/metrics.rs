//! `/metrics` in the Prometheus text format: requests by operation and status, publish latency,
//! projector progress and backlog, open chat sockets.

use std::time::Duration;

use crate::chat_support::ChatClient;
use crate::helpers::{Services, eventually, spawn_app};

/// The value of the first sample line that starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_publishes_projections_and_sockets() {
    let services = Services::start().await;
    let app = spawn_app(&services).await;
    let before = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tokens_before = sample(
        &before,
        "onair_http_requests_total{operation=\"createViewerToken\",status=\"200\"}",
    )
    .unwrap_or(0.0);
    for i in 0..3 {
        assert_eq!(app.viewer_token(&format!("m{i}")).await.status, 200);
    }
    app.post("/api/token/viewer", &serde_json::json!({}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let _socket = ChatClient::connect(&app.address, "").await;
    app.wait_for_projections().await;

    let text = eventually(Duration::from_secs(10), || async {
        let response = reqwest::get(format!("{}/metrics", app.address))
            .await
            .unwrap();
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = response.text().await.unwrap();
        (sample(&text, "onair_chat_open_sockets").unwrap_or(0.0) >= 1.0).then_some(text)
    })
    .await;
    let tokens = sample(
        &text,
        "onair_http_requests_total{operation=\"createViewerToken\",status=\"200\"}",
    )
    .unwrap();
    assert!(tokens - tokens_before >= 3.0, "{tokens} vs {tokens_before}");
    assert!(
        sample(
            &text,
            "onair_http_requests_total{operation=\"createViewerToken\",status=\"400\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        text.contains("onair_http_request_duration_seconds_bucket{operation=\"createViewerToken\"")
    );
    assert!(sample(&text, "onair_event_publish_duration_seconds_count").unwrap() >= 3.0);
    assert!(
        sample(
            &text,
            "onair_projection_events_applied_total{projection=\"viewers\"}"
        )
        .unwrap()
            >= 3.0
    );
    assert!(sample(&text, "onair_projection_checkpoint{projection=\"viewers\"}").unwrap() >= 1.0);
    assert!(text.contains("onair_projection_lag_seconds{projection=\"viewers\"}"));
    assert!(text.contains("onair_projection_pending_events{projection=\"gifts\"}"));
}
