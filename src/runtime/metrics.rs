//! `/metrics` in the Prometheus text format (the `metrics` facade and
//! `metrics-exporter-prometheus`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `onair_http_requests_total` | counter | `operation` (the OpenAPI operation id, or `other`), `status` |
//! | `onair_http_request_duration_seconds` | histogram | `operation` |
//! | `onair_event_publish_duration_seconds` | histogram | — (send to JetStream ack, per call) |
//! | `onair_events_published_total` | counter | — |
//! | `onair_projection_events_applied_total` | counter | `projection` |
//! | `onair_projection_checkpoint` | gauge | `projection` (last stream sequence applied) |
//! | `onair_projection_lag_seconds` | gauge | `projection` (commit time minus the last applied event's time) |
//! | `onair_projection_pending_events` | gauge | `projection` (read from the consumer at scrape time) |
//! | `onair_chat_open_sockets` | gauge | — (this instance) |
//! | `onair_http_connections_refused_total` | counter | — (over `ONAIR_MAX_CONNECTIONS`) |
//! | `onair_http_header_timeouts_total` | counter | — (no request head within `ONAIR_HEADER_READ_TIMEOUT_SECS`) |
//!
//! The recorder is installed once per process; several applications in one process (tests)
//! share it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder (installed on first use).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be set (an embedding program's); ours then only renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
