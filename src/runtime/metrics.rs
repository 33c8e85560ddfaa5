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
//! | `onair_projection_lag_seconds` | gauge | `projection` (commit time minus the last applied event's time; 0 once the projector has had nothing to apply for 1 s) |
//! | `onair_projection_pending_events` | gauge | `projection` (read from the consumer at scrape time) |
//! | `onair_chat_open_sockets` | gauge | — (this instance) |
//! | `onair_chat_socket_writes_total` | counter | — (flushes of chat sockets' writers: one write of one or more frames) |
//! | `onair_chat_frames_written_total` | counter | — (frames those writes carried; over writes: frames per write, which `ONAIR_CHAT_WRITE_DELAY_MS` raises) |
//! | `onair_http_connections_refused_total` | counter | — (over `ONAIR_MAX_CONNECTIONS`) |
//! | `onair_http_header_timeouts_total` | counter | — (no request head within `ONAIR_HEADER_READ_TIMEOUT_SECS`) |
//! | `process_resident_memory_bytes` | gauge | — (this process's RSS, read from `/proc/self/status` at scrape time; Linux only) |
//! | `onair_memory_trimmed_bytes_total` | counter | — (free bytes of the allocator's arenas given back to the system, src/runtime/memory.rs) |
//! | `process_cpu_seconds_total` | gauge | — (user + system CPU time of this process, from `/proc/self/stat` at scrape time; Linux only) |
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

/// CPU time and resident memory of a process, read from Linux's `/proc`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessUsage {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux
/// architecture: proc(5)).
const USER_HZ: f64 = 100.0;

/// The usage of process `pid` (this process when `None`); `None` where `/proc` is missing
/// (non-Linux) or the process is gone.
pub fn process_usage(pid: Option<u32>) -> Option<ProcessUsage> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    parse_usage(&stat, &status)
}

/// Parses `/proc/<pid>/stat` (utime and stime, fields 14 and 15, counted after the
/// parenthesised command name, which may hold spaces) and `VmRSS` of `/proc/<pid>/status` (kB).
fn parse_usage(stat: &str, status: &str) -> Option<ProcessUsage> {
    let cpu_seconds = stat_cpu_seconds(stat)?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(ProcessUsage {
        cpu_seconds,
        resident_bytes: rss_kb * 1024,
    })
}

/// User plus system CPU seconds of a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` line
/// (utime and stime, fields 14 and 15, counted after the parenthesised command name, which may
/// hold spaces).
pub fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from the 3rd (state) on: utime is the 14th field of the line, the 12th here.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Sets `process_resident_memory_bytes` and `process_cpu_seconds_total` from this process's
/// usage (called when `/metrics` is scraped; nothing is set where `/proc` is missing).
pub fn record_process_gauges() {
    if let Some(usage) = process_usage(None) {
        metrics::gauge!("process_resident_memory_bytes").set(usage.resident_bytes as f64);
        metrics::gauge!("process_cpu_seconds_total").set(usage.cpu_seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (tokio (rt) x) S 1 42 42 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 \
                    100 2000000 3000 18446744073709551615";
        let status = "Name:\tonair\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        assert_eq!(
            parse_usage(stat, status),
            Some(ProcessUsage {
                cpu_seconds: 3.0,
                resident_bytes: 20480 * 1024
            })
        );
        assert_eq!(parse_usage("garbage", status), None);
    }

    #[test]
    fn this_process_has_a_usage_on_linux() {
        if cfg!(target_os = "linux") {
            let usage = process_usage(None).expect("/proc/self");
            assert!(usage.resident_bytes > 0);
        }
    }
}
