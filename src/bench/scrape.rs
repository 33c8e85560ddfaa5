//! Reading the target's `/metrics` (src/runtime/metrics.rs lists them): projection lag, pending
//! events and the process gauges; whether the read models caught up, from its `/health`; and
//! local processes' usage from /proc for `--pid`.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::report::{ProjectionFigures, ServerFigures};
use crate::runtime::metrics::process_usage;

/// One scrape of `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    /// Highest `onair_projection_lag_seconds` over the projections.
    pub lag_seconds: Option<f64>,
    /// Sum of `onair_projection_pending_events`.
    pub pending: Option<u64>,
    /// `process_resident_memory_bytes`.
    pub rss_bytes: Option<f64>,
    /// `process_cpu_seconds_total`.
    pub cpu_seconds: Option<f64>,
}

/// Reads the samples of the Prometheus text format that the bench uses.
pub fn parse(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let name = key.split('{').next().unwrap_or(key).trim();
        match name {
            "onair_projection_lag_seconds" => {
                s.lag_seconds = Some(s.lag_seconds.map_or(value, |v: f64| v.max(value)));
            }
            "onair_projection_pending_events" => {
                s.pending = Some(s.pending.unwrap_or(0) + value as u64);
            }
            "process_resident_memory_bytes" => s.rss_bytes = Some(value),
            "process_cpu_seconds_total" => s.cpu_seconds = Some(value),
            _ => {}
        }
    }
    s
}

/// Scrapes `<base>/metrics`.
pub async fn scrape(client: &reqwest::Client, base: &str) -> anyhow::Result<Scrape> {
    let text = client
        .get(format!("{}/metrics", base.trim_end_matches('/')))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(parse(&text))
}

/// Whether the read models have caught up, as the target's `/health` says: no projection has a
/// pending event, and the furthest checkpoint (kept in Postgres, so every instance reports the
/// leaders' progress) is at `last_sequence` or beyond. `/metrics`' checkpoint gauges come only
/// from the projections an instance leads, so an API instance beside a worker never showed them.
pub async fn caught_up(client: &reqwest::Client, base: &str, last_sequence: u64) -> bool {
    let health = client
        .get(format!("{}/health", base.trim_end_matches('/')))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match health {
        Ok(answer) => match answer.json::<serde_json::Value>().await {
            Ok(body) => projections_caught_up(&body, last_sequence),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// [`caught_up`] on a `/health` body: `projections.<name>.{checkpoint, pending}`.
pub fn projections_caught_up(health: &serde_json::Value, last_sequence: u64) -> bool {
    let Some(projections) = health["projections"].as_object() else {
        return false;
    };
    let none_pending = projections
        .values()
        .all(|p| p["pending"].as_u64() == Some(0));
    let furthest = projections
        .values()
        .filter_map(|p| p["checkpoint"].as_u64())
        .max()
        .unwrap_or(0);
    !projections.is_empty() && none_pending && furthest >= last_sequence
}

/// CPU seconds of the `--pid` processes (those that can be read).
pub fn pids_cpu(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|p| process_usage(Some(*p)))
        .map(|u| u.cpu_seconds)
        .sum()
}

/// Scrapes `/metrics` every 200 ms while the load runs.
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<Scrape>>,
    first: Option<Scrape>,
    pids: Vec<u32>,
    pids_cpu_before: f64,
    started: Instant,
    base: Option<String>,
    client: reqwest::Client,
}

impl Sampler {
    /// Starts sampling `base` (none: only the `pids` are measured).
    pub async fn start(client: reqwest::Client, base: Option<String>, pids: Vec<u32>) -> Self {
        let first = match &base {
            Some(b) => scrape(&client, b).await.ok(),
            None => None,
        };
        let (stop, mut stopped) = watch::channel(false);
        let task = {
            let client = client.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let Some(base) = base else {
                    return samples;
                };
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            if let Ok(s) = scrape(&client, &base).await {
                                samples.push(s);
                            }
                        }
                        _ = stopped.changed() => break,
                    }
                }
                samples
            })
        };
        Self {
            stop,
            task,
            first,
            pids_cpu_before: pids_cpu(&pids),
            pids,
            started: Instant::now(),
            base,
            client,
        }
    }

    /// Stops sampling when the load stops, waits for the read models to reach
    /// `last_sequence` (at most `catch_up_timeout`), and sums up.
    pub async fn finish(
        self,
        last_sequence: Option<u64>,
        catch_up_timeout: Duration,
    ) -> (Option<ProjectionFigures>, Option<ServerFigures>) {
        let load_secs = self.started.elapsed().as_secs_f64();
        let pids_cpu_after = pids_cpu(&self.pids);
        let _ = self.stop.send(true);
        let samples = self.task.await.unwrap_or_default();
        let last = match &self.base {
            Some(b) => scrape(&self.client, b).await.ok(),
            None => None,
        };
        let projections = match &self.base {
            Some(base) if self.first.as_ref().is_some_and(|f| f.pending.is_some()) => {
                let mut lag = super::report::micros_histogram();
                for s in &samples {
                    if let Some(l) = s.lag_seconds {
                        lag.saturating_record((l * 1e6) as u64);
                    }
                }
                let stopped = Instant::now();
                let mut catch_up = None;
                while stopped.elapsed() < catch_up_timeout {
                    if caught_up(&self.client, base, last_sequence.unwrap_or(0)).await {
                        catch_up = Some(stopped.elapsed().as_secs_f64());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(ProjectionFigures {
                    samples: lag.len(),
                    lag_p50_ms: lag.value_at_quantile(0.5) as f64 / 1000.0,
                    lag_p99_ms: lag.value_at_quantile(0.99) as f64 / 1000.0,
                    catch_up_secs: catch_up,
                })
            }
            _ => None,
        };
        let mib = |b: f64| b / (1024.0 * 1024.0);
        let server_cpu = match (&self.first, &last) {
            (Some(f), Some(l)) => match (f.cpu_seconds, l.cpu_seconds) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            _ => None,
        };
        let pids_cpu = (!self.pids.is_empty()).then_some(pids_cpu_after - self.pids_cpu_before);
        let cpu = match (server_cpu, pids_cpu) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        let rss_max = samples
            .iter()
            .chain(self.first.iter())
            .chain(last.iter())
            .filter_map(|s| s.rss_bytes)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let server = ServerFigures {
            rss_before_mib: self.first.as_ref().and_then(|s| s.rss_bytes).map(mib),
            rss_after_mib: last.as_ref().and_then(|s| s.rss_bytes).map(mib),
            rss_max_mib: rss_max.map(mib),
            cpu_seconds: cpu,
            cpu_cores: cpu.map(|c| c / load_secs.max(1e-9)),
        };
        let any = server.rss_before_mib.is_some() || server.cpu_seconds.is_some();
        (projections, any.then_some(server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_reads_the_gauges_it_needs() {
        let text = "# TYPE onair_projection_lag_seconds gauge\n\
            onair_projection_lag_seconds{projection=\"viewers\"} 0.004\n\
            onair_projection_lag_seconds{projection=\"gifts\"} 0.02\n\
            onair_projection_checkpoint{projection=\"viewers\"} 120\n\
            onair_projection_checkpoint{projection=\"gifts\"} 80\n\
            onair_projection_pending_events{projection=\"viewers\"} 3\n\
            onair_projection_pending_events{projection=\"gifts\"} 2\n\
            process_resident_memory_bytes 1048576\n\
            process_cpu_seconds_total 1.5\n\
            onair_http_requests_total{operation=\"x\",status=\"200\"} 9\n";
        assert_eq!(
            parse(text),
            Scrape {
                lag_seconds: Some(0.02),
                pending: Some(5),
                rss_bytes: Some(1048576.0),
                cpu_seconds: Some(1.5),
            }
        );
        assert_eq!(parse(""), Scrape::default());
    }

    #[test]
    fn caught_up_needs_nothing_pending_and_the_last_sequence_reached() {
        let health = |gifts: u64, pending: u64| {
            serde_json::json!({"projections": {
                "gifts": {"checkpoint": gifts, "pending": pending, "leader": false},
                "followers": {"checkpoint": 0, "pending": 0, "leader": false},
            }})
        };
        assert!(projections_caught_up(&health(120, 0), 120));
        assert!(!projections_caught_up(&health(119, 0), 120));
        assert!(!projections_caught_up(&health(120, 3), 120));
        assert!(!projections_caught_up(&serde_json::json!({}), 0));
    }
}
