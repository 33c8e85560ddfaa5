//! `onair bench reference`: this machine's limit for an HTTP write that is answered after
//! JetStream's ack. A plain poem handler, in the bench's process on a loopback port, parses the
//! heartbeat body, publishes it with a `Nats-Msg-Id` to a stream of its own
//! (`ONAIR_BENCH_<run>`, on `onair-bench.<run>.>`, with the `ONAIR` stream's storage, replicas
//! and duplicate window; created and deleted by the bench) and answers after the ack. Every HTTP
//! scenario given `--nats-url` measures it in the same run, with the same load, and prints its
//! ratio to it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, handler, post};
use serde::{Deserialize, Serialize};

use super::args::{CommonArgs, HttpLoadArgs};
use super::report::{HttpFigures, Report};
use super::runner::{Plan, drive, http_client, send};
use super::scrape::pids_cpu;
use crate::event_store::STREAM_NAME;

/// The heartbeat body, as `POST /api/viewer/heartbeat` takes it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Heartbeat {
    user_id: String,
    stage_arn: String,
}

struct Reference {
    jetstream: jetstream::Context,
    subject: String,
}

#[handler]
async fn beat(body: Json<Heartbeat>, state: Data<&Arc<Reference>>) -> Response {
    let payload = serde_json::to_vec(&body.0).unwrap_or_default();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
    let ack = match state
        .jetstream
        .publish_with_headers(state.subject.clone(), headers, payload.into())
        .await
    {
        Ok(ack) => ack.await,
        Err(e) => {
            return (poem::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
        }
    };
    match ack {
        Ok(ack) => Json(serde_json::json!({"success": true, "data": {"userId": body.0.user_id}}))
            .with_header("X-Event-Sequence", ack.sequence)
            .into_response(),
        Err(e) => (poem::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// The name of the reference runtime's threads (at most 15 bytes: Linux's `comm`).
pub const THREAD_NAME: &str = "onair-reference";

/// The reference server while it runs.
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    jetstream: jetstream::Context,
    stream: String,
    /// Held so the runtime lives as long as the server; dropped last.
    _runtime: OwnRuntime,
}

/// The reference's runtime, shut down in the background when dropped (a runtime may not be
/// dropped, blocking, inside another runtime's task).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Running {
    /// Stops the server and deletes its stream.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.jetstream.delete_stream(&self.stream).await?;
        Ok(())
    }
}

/// CPU seconds the reference runtime's threads have used (0 where `/proc` is missing).
pub fn threads_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == THREAD_NAME)
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| crate::runtime::metrics::stat_cpu_seconds(&stat))
        .sum()
}

/// Creates the reference stream on `nats_url` and starts the handler on a loopback port, on a
/// runtime of its own.
pub async fn start(nats_url: &str, run: &str) -> anyhow::Result<Running> {
    let runtime = OwnRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()?,
    ));
    let (nats_url, run) = (nats_url.to_owned(), run.to_owned());
    let started = runtime
        .0
        .as_ref()
        .expect("just built")
        .spawn(async move { serve(&nats_url, &run).await })
        .await
        .map_err(|e| anyhow::anyhow!("the reference did not start: {e}"))?;
    let (url, stop, server, jetstream, stream) = started?;
    Ok(Running {
        url,
        stop,
        server,
        jetstream,
        stream,
        _runtime: runtime,
    })
}

type Serving = (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    jetstream::Context,
    String,
);

/// The reference's start, on its runtime: `(url, stop, server, jetstream, stream name)`.
async fn serve(nats_url: &str, run: &str) -> anyhow::Result<Serving> {
    let client = async_nats::ConnectOptions::new()
        .name("onair-bench")
        .connection_timeout(Duration::from_secs(5))
        .connect(nats_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {nats_url}: {e}"))?;
    let js = jetstream::new(client);
    // The ONAIR stream's storage and replicas, so that the ack costs the same.
    let (storage, replicas, window) = match js.get_stream(STREAM_NAME).await {
        Ok(mut s) => {
            let c = &s.info().await?.config;
            (c.storage, c.num_replicas, c.duplicate_window)
        }
        Err(_) => (stream::StorageType::File, 1, Duration::from_secs(120)),
    };
    let name = format!("ONAIR_BENCH_{}", run.to_uppercase());
    let subject_root = format!("onair-bench.{run}");
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{subject_root}.>")],
        storage,
        num_replicas: replicas,
        duplicate_window: window,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the reference stream {name}: {e}"))?;
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
        .ok_or_else(|| anyhow::anyhow!("the reference listener has no port"))?;
    let app = Route::new()
        .at("/api/viewer/heartbeat", post(beat))
        .data(Arc::new(Reference {
            jetstream: js.clone(),
            subject: format!("{subject_root}.heartbeat"),
        }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async move {
                    let _ = stopped.await;
                },
                Some(Duration::from_secs(1)),
            )
            .await;
    });
    Ok((format!("http://127.0.0.1:{port}"), stop, server, js, name))
}

/// Heartbeats of `users` users (a fixed stage ARN) sent to a reference at `url`.
pub async fn load(url: &str, plan: &Plan, users: usize) -> HttpFigures {
    let client = http_client(plan.connections);
    let endpoint = format!("{url}/api/viewer/heartbeat");
    let arn = "arn:aws:ivs:us-east-1:000000000000:stage/benchReference";
    drive(plan, "reference", move |i| {
        let body = serde_json::json!({"userId": format!("viewer-{}", i % users.max(1) as u64), "stageArn": arn});
        send(client.post(&endpoint).json(&body))
    })
    .await
}

/// The reference's figures in a run: its load's, and the CPU seconds it used (its runtime's
/// threads and the `--pid` processes).
pub struct Measured {
    figures: HttpFigures,
    cpu_seconds: f64,
}

/// Measures the reference with the plan (for a scenario's ratio); `None` without `--nats-url`.
pub async fn measure(
    common: &CommonArgs,
    plan: &Plan,
    run: &str,
) -> anyhow::Result<Option<Measured>> {
    let Some(nats) = &common.nats_url else {
        return Ok(None);
    };
    let reference = start(nats, run).await?;
    let before = threads_cpu_seconds() + pids_cpu(&common.pids);
    let figures = load(&reference.url, plan, 500).await;
    let cpu_seconds = threads_cpu_seconds() + pids_cpu(&common.pids) - before;
    reference.stop().await?;
    Ok(Some(Measured {
        figures,
        cpu_seconds,
    }))
}

/// Adds the reference's figures and the ratios to a report: requests per second, and CPU per
/// request when the report has the server's CPU.
pub fn attach(report: &mut Report, reference: Option<Measured>) {
    let Some(Measured {
        figures: r,
        cpu_seconds,
    }) = reference
    else {
        return;
    };
    let per_request = |cpu: f64, requests: u64| (requests > 0).then(|| cpu * 1e6 / requests as f64);
    report.reference_cpu_per_request_us = per_request(cpu_seconds, r.requests);
    if let Some(h) = &report.http {
        if r.requests_per_sec > 0.0 {
            report.ratio_to_reference = Some(h.requests_per_sec / r.requests_per_sec);
        }
        report.cpu_per_request_us = report
            .server
            .as_ref()
            .and_then(|s| s.cpu_seconds)
            .and_then(|cpu| per_request(cpu, h.requests));
    }
    if let (Some(server), Some(reference)) = (
        report.cpu_per_request_us,
        report.reference_cpu_per_request_us,
    ) && server > 0.0
    {
        report.cpu_ratio_to_reference = Some(reference / server);
    }
    report.reference = Some(r);
}

/// `onair bench reference`.
pub async fn run(common: &CommonArgs, load_args: &HttpLoadArgs) -> anyhow::Result<Report> {
    let nats = common
        .nats_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("the reference needs --nats-url"))?;
    let run = super::setup::run_id();
    let plan = super::plan(common, load_args);
    let reference = start(nats, &run).await?;
    let figures = load(&reference.url, &plan, 500).await;
    reference.stop().await?;
    Ok(Report {
        scenario: "reference".into(),
        target: format!("reference ({nats})"),
        http: Some(figures),
        ..Default::default()
    })
}
