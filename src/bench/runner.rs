//! The HTTP load loop every HTTP scenario shares: `connections` workers, each with one request
//! in flight, at a fixed total rate or as fast as the server answers, bounded by a count and a
//! duration; a progress bar; latencies in an HDR histogram.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::report::{HttpFigures, Latency, micros_histogram};

/// How much load, for how long.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Workers, each with one request in flight.
    pub connections: usize,
    /// Requests per second in total; 0: as fast as answered.
    pub rate: f64,
    /// At most this many requests.
    pub count: Option<u64>,
    /// At most this long.
    pub duration: Duration,
    /// No progress bar.
    pub quiet: bool,
}

/// How one request ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The HTTP status; `None` when there was no answer.
    pub status: Option<u16>,
    /// The `error` code of an error answer.
    pub code: Option<String>,
    /// The answer's `X-Event-Sequence`.
    pub sequence: Option<u64>,
}

/// A progress bar on standard error (hidden with `--quiet`) over `len` steps or `secs` seconds.
pub fn progress(quiet: bool, what: &str, len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec}",
        )
        .expect("static template"),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Sends one request through `client` and reads the outcome.
pub async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let Ok(response) = request.send().await else {
        return Outcome::default();
    };
    let status = response.status().as_u16();
    let sequence = response
        .headers()
        .get("x-event-sequence")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response.bytes().await.unwrap_or_default();
    let code = if (200..300).contains(&status) {
        None
    } else {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
    };
    Outcome {
        status: Some(status),
        code,
        sequence,
    }
}

/// An HTTP client for `connections` connections per host, with `TCP_NODELAY`.
pub fn http_client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a plain HTTP client builds")
}

struct Tally {
    latency: hdrhistogram::Histogram<u64>,
    answers: BTreeMap<String, u64>,
    errors: u64,
    last_sequence: Option<u64>,
    requests: u64,
}

/// Runs `request(i)` for i = 0, 1, 2, ... as the plan says, with a progress bar titled `what`.
pub async fn drive<F, Fut>(plan: &Plan, what: &str, request: F) -> HttpFigures
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let bar = match plan.count {
        Some(n) => progress(plan.quiet, what, n),
        None => {
            let b = progress(plan.quiet, what, plan.duration.as_secs().max(1));
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}s/{len}s",
                )
                .expect("static template"),
            );
            b
        }
    };
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + plan.duration);
    let interval = (plan.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.rate));
    let ticker = (plan.count.is_none()).then(|| {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                bar.set_position(started.elapsed().as_secs());
            }
        })
    });
    let mut workers = Vec::new();
    for _ in 0..plan.connections.max(1) {
        let request = request.clone();
        let next = next.clone();
        let count = plan.count;
        let bar = bar.clone();
        let counting = plan.count.is_some();
        workers.push(tokio::spawn(async move {
            let mut t = Tally {
                latency: micros_histogram(),
                answers: BTreeMap::new(),
                errors: 0,
                last_sequence: None,
                requests: 0,
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|c| i >= c) {
                    break;
                }
                let due = match interval {
                    Some(every) => {
                        let due = tokio::time::Instant::from_std(started) + every.mul_f64(i as f64);
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due).await;
                        due
                    }
                    None => {
                        let now = tokio::time::Instant::now();
                        if now >= deadline {
                            break;
                        }
                        now
                    }
                };
                let outcome = request(i).await;
                t.latency
                    .saturating_record(due.elapsed().as_micros().max(1) as u64);
                t.requests += 1;
                let key = match (outcome.status, &outcome.code) {
                    (None, _) => "transport".to_owned(),
                    (Some(s), Some(code)) => format!("{s} {code}"),
                    (Some(s), None) => s.to_string(),
                };
                if !outcome.status.is_some_and(|s| (200..300).contains(&s)) {
                    t.errors += 1;
                }
                *t.answers.entry(key).or_default() += 1;
                if let Some(seq) = outcome.sequence {
                    t.last_sequence = Some(t.last_sequence.map_or(seq, |l| l.max(seq)));
                }
                if counting {
                    bar.inc(1);
                }
            }
            t
        }));
    }
    let mut latency = micros_histogram();
    let mut figures = HttpFigures::default();
    for w in workers {
        let Ok(t) = w.await else { continue };
        latency.add(&t.latency).expect("same bounds");
        for (k, v) in t.answers {
            *figures.answers.entry(k).or_default() += v;
        }
        figures.errors += t.errors;
        figures.requests += t.requests;
        figures.last_sequence = figures.last_sequence.max(t.last_sequence);
    }
    if let Some(t) = ticker {
        t.abort();
    }
    bar.finish_and_clear();
    figures.elapsed_secs = started.elapsed().as_secs_f64();
    figures.requests_per_sec = figures.requests as f64 / figures.elapsed_secs.max(1e-9);
    figures.latency = Latency::of(&latency);
    figures
}
