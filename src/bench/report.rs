//! What a bench run measured, as a table for people and as JSON (`--json`) for scripts.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds (zeros when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// A histogram of microseconds from 1 µs to 10 minutes, 3 significant digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid")
}

/// The figures of an HTTP load.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HttpFigures {
    /// Requests answered or failed.
    pub requests: u64,
    /// Seconds from the first request to the last answer.
    pub elapsed_secs: f64,
    /// `requests / elapsed_secs`.
    pub requests_per_sec: f64,
    /// Request to answer.
    pub latency: Latency,
    /// Answers by status and error code (`"200"`, `"429 TOO_MANY_REQUESTS"`), and
    /// `"transport"` for requests that got no answer.
    pub answers: BTreeMap<String, u64>,
    /// Requests not answered 2xx (transport failures included).
    pub errors: u64,
    /// The highest `X-Event-Sequence` answered.
    pub last_sequence: Option<u64>,
}

/// The read side during and after the load (from the target's `/metrics`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProjectionFigures {
    /// Scrapes during the load.
    pub samples: u64,
    /// `onair_projection_lag_seconds` (highest over the projections at each scrape), p50, ms.
    pub lag_p50_ms: f64,
    /// The same, p99, ms.
    pub lag_p99_ms: f64,
    /// From the end of the load until every projection had no pending event and the highest
    /// checkpoint had reached the last acknowledged sequence, in seconds (`None`: not within
    /// `--catch-up-timeout`, or the target exposes no projection).
    pub catch_up_secs: Option<f64>,
}

/// The server's process while the load ran.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerFigures {
    /// Resident memory before the load, MiB (`process_resident_memory_bytes`).
    pub rss_before_mib: Option<f64>,
    /// Resident memory after the load, MiB.
    pub rss_after_mib: Option<f64>,
    /// Highest resident memory seen, MiB.
    pub rss_max_mib: Option<f64>,
    /// CPU seconds the server used during the load (`process_cpu_seconds_total`), plus those of
    /// every `--pid`.
    pub cpu_seconds: Option<f64>,
    /// `cpu_seconds / elapsed`: cores busy on average.
    pub cpu_cores: Option<f64>,
}

/// The figures of a chat run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChatFigures {
    /// Listening sockets.
    pub listeners: usize,
    /// Saying sockets.
    pub senders: usize,
    /// Non-reading sockets (`--slow`).
    pub slow: usize,
    /// `say`s sent.
    pub says_sent: u64,
    /// `say`s answered `OK`.
    pub says_accepted: u64,
    /// `say`s refused (an error answer, such as onair's 42901 over the rate limits).
    pub says_refused: u64,
    /// `say`s not answered within 30 s of the last one.
    pub says_unanswered: u64,
    /// `says_accepted` per second of load.
    pub says_accepted_per_sec: f64,
    /// `say` to `OK` answer.
    pub say_answer: Latency,
    /// Messages received by listeners.
    pub deliveries: u64,
    /// Deliveries per second, from the first `say` to the last delivery.
    pub deliveries_per_sec: f64,
    /// `say` sent to message received by a listener.
    pub say_to_delivery: Latency,
    /// Accepted messages that a listener still open never received.
    pub deliveries_lost: u64,
    /// Listener sockets the server closed during the run.
    pub listeners_dropped: u64,
    /// `--slow` sockets the server closed (a slow consumer dropped).
    pub slow_dropped: u64,
    /// Seconds from the first `say` to the last delivery.
    pub elapsed_secs: f64,
    /// Deliveries per server CPU-second (with `--pid`/`--peer-pid` processes).
    pub deliveries_per_cpu_sec: Option<f64>,
}

/// The figures of a gift storm.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GiftFigures {
    /// `giftRank` notices the room's socket received.
    pub gift_rank_notices: u64,
    /// From the first gift's answer to the first `giftRank` notice, ms (0 when it came before).
    pub first_gift_rank_ms: Option<f64>,
    /// From the last gift's answer to the last `giftRank` notice, ms (0 when it came before).
    pub last_gift_rank_ms: Option<f64>,
}

/// One run of one scenario against one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// `heartbeats`, `tokens`, `chat`, `gifts` or `reference`.
    pub scenario: String,
    /// What was measured (`onair` or `actionhero`) and where.
    pub target: String,
    /// HTTP scenarios.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFigures>,
    /// The chat scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatFigures>,
    /// The gifts scenario (its requests are in `http`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gifts: Option<GiftFigures>,
    /// Projection lag and catch-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projections: Option<ProjectionFigures>,
    /// The server's RSS and CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerFigures>,
    /// The reference handler measured in the same run (`--nats-url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<HttpFigures>,
    /// Requests per second of this scenario divided by the reference's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_reference: Option<f64>,
    /// CPU per request, in microseconds: the server's CPU (with `--pid` processes) over the
    /// requests of the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_per_request_us: Option<f64>,
    /// The reference's CPU per request, in microseconds: its runtime's threads (with the same
    /// `--pid` processes) over its requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_cpu_per_request_us: Option<f64>,
    /// `reference_cpu_per_request_us / cpu_per_request_us`: above 1, a request costs the server
    /// less CPU than it costs the reference. Less sensitive than `ratio_to_reference` to other
    /// work on a shared machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ratio_to_reference: Option<f64>,
    /// The same chat scenario against the peer (`--peer-url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Box<Report>>,
}

impl Report {
    /// The report of an HTTP scenario against `urls`: its figures, and the projection and server
    /// figures the sampler gathered (`Sampler::finish`).
    pub fn for_http(
        scenario: &str,
        urls: &[String],
        figures: HttpFigures,
        (projections, server): (Option<ProjectionFigures>, Option<ServerFigures>),
    ) -> Self {
        Self {
            scenario: scenario.into(),
            target: format!("onair ({})", urls.join(", ")),
            http: Some(figures),
            projections,
            server,
            ..Default::default()
        }
    }

    /// Errors of the run: HTTP answers not 2xx, refused `say`s, lost deliveries and listeners
    /// dropped (slow sockets aside), the reference's included.
    pub fn errors(&self) -> u64 {
        let http = self.http.as_ref().map_or(0, |h| h.errors);
        let reference = self.reference.as_ref().map_or(0, |h| h.errors);
        let chat = self.chat.as_ref().map_or(0, |c| {
            c.says_refused + c.says_unanswered + c.deliveries_lost + c.listeners_dropped
        });
        http + reference + chat
    }

    /// The result table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let mut columns = vec![self.target.clone()];
        let reports: Vec<&Report> = std::iter::once(self).chain(self.peer.as_deref()).collect();
        if let Some(peer) = &self.peer {
            columns.push(peer.target.clone());
        }
        let mut row = |name: &str, f: &dyn Fn(&Report) -> Option<String>| {
            let cells: Vec<String> = reports
                .iter()
                .map(|r| f(r).unwrap_or_else(|| "-".into()))
                .collect();
            if cells.iter().any(|c| c != "-") {
                rows.push((name.to_owned(), cells));
            }
        };
        let n = |v: f64| format!("{v:.0}");
        let ms = |v: f64| format!("{v:.2} ms");
        row("requests", &|r| {
            r.http.as_ref().map(|h| h.requests.to_string())
        });
        row("requests/s", &|r| {
            r.http.as_ref().map(|h| n(h.requests_per_sec))
        });
        row("latency p50", &|r| {
            r.http.as_ref().map(|h| ms(h.latency.p50_ms))
        });
        row("latency p99", &|r| {
            r.http.as_ref().map(|h| ms(h.latency.p99_ms))
        });
        row("latency p99.9", &|r| {
            r.http.as_ref().map(|h| ms(h.latency.p999_ms))
        });
        row("answers", &|r| {
            r.http.as_ref().map(|h| {
                h.answers
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        });
        row("reference requests/s", &|r| {
            r.reference.as_ref().map(|h| n(h.requests_per_sec))
        });
        row("reference p99", &|r| {
            r.reference.as_ref().map(|h| ms(h.latency.p99_ms))
        });
        row("ratio to reference", &|r| {
            r.ratio_to_reference.map(|v| format!("{v:.2}"))
        });
        row("CPU per request", &|r| {
            r.cpu_per_request_us.map(|v| format!("{v:.0} µs"))
        });
        row("reference CPU per request", &|r| {
            r.reference_cpu_per_request_us.map(|v| format!("{v:.0} µs"))
        });
        row("CPU ratio to reference", &|r| {
            r.cpu_ratio_to_reference.map(|v| format!("{v:.2}"))
        });
        row("listeners / senders / slow", &|r| {
            r.chat
                .as_ref()
                .map(|c| format!("{} / {} / {}", c.listeners, c.senders, c.slow))
        });
        row("says sent / accepted / refused / unanswered", &|r| {
            r.chat.as_ref().map(|c| {
                format!(
                    "{} / {} / {} / {}",
                    c.says_sent, c.says_accepted, c.says_refused, c.says_unanswered
                )
            })
        });
        row("says accepted/s", &|r| {
            r.chat.as_ref().map(|c| n(c.says_accepted_per_sec))
        });
        row("say -> OK p50 / p99", &|r| {
            r.chat
                .as_ref()
                .map(|c| format!("{} / {}", ms(c.say_answer.p50_ms), ms(c.say_answer.p99_ms)))
        });
        row("deliveries", &|r| {
            r.chat.as_ref().map(|c| c.deliveries.to_string())
        });
        row("deliveries/s", &|r| {
            r.chat.as_ref().map(|c| n(c.deliveries_per_sec))
        });
        row("say -> delivery p50", &|r| {
            r.chat.as_ref().map(|c| ms(c.say_to_delivery.p50_ms))
        });
        row("say -> delivery p99", &|r| {
            r.chat.as_ref().map(|c| ms(c.say_to_delivery.p99_ms))
        });
        row("say -> delivery max", &|r| {
            r.chat.as_ref().map(|c| ms(c.say_to_delivery.max_ms))
        });
        row("deliveries lost", &|r| {
            r.chat.as_ref().map(|c| c.deliveries_lost.to_string())
        });
        row("listeners dropped", &|r| {
            r.chat.as_ref().map(|c| c.listeners_dropped.to_string())
        });
        row("slow sockets dropped", &|r| {
            r.chat
                .as_ref()
                .filter(|c| c.slow > 0)
                .map(|c| format!("{} of {}", c.slow_dropped, c.slow))
        });
        row("deliveries per CPU-second", &|r| {
            r.chat
                .as_ref()
                .and_then(|c| c.deliveries_per_cpu_sec)
                .map(n)
        });
        row("giftRank notices", &|r| {
            r.gifts.as_ref().map(|g| g.gift_rank_notices.to_string())
        });
        row("first gift -> giftRank", &|r| {
            r.gifts.as_ref().and_then(|g| g.first_gift_rank_ms).map(ms)
        });
        row("last gift -> giftRank", &|r| {
            r.gifts.as_ref().and_then(|g| g.last_gift_rank_ms).map(ms)
        });
        row("projection lag p50 / p99", &|r| {
            r.projections
                .as_ref()
                .filter(|p| p.samples > 0)
                .map(|p| format!("{} / {}", ms(p.lag_p50_ms), ms(p.lag_p99_ms)))
        });
        row("read models caught up after", &|r| {
            r.projections.as_ref().map(|p| match p.catch_up_secs {
                Some(s) => format!("{s:.2} s"),
                None => "not within the timeout".into(),
            })
        });
        row("server RSS before / after / max", &|r| {
            r.server.as_ref().and_then(|s| {
                Some(format!(
                    "{:.0} / {:.0} / {:.0} MiB",
                    s.rss_before_mib?, s.rss_after_mib?, s.rss_max_mib?
                ))
            })
        });
        row("server CPU (cores)", &|r| {
            r.server
                .as_ref()
                .and_then(|s| Some(format!("{:.1} s ({:.2})", s.cpu_seconds?, s.cpu_cores?)))
        });
        let title = format!("bench {}", self.scenario);
        let width = rows
            .iter()
            .map(|(k, _)| k.len())
            .chain([title.len()])
            .max()
            .unwrap_or(0);
        // Every column but the last is padded to its widest cell.
        let line = |first: &str, cells: &[String]| {
            let mut l = format!("{first:width$}");
            for (i, c) in cells.iter().enumerate() {
                let w = std::iter::once(&columns[i])
                    .chain(rows.iter().map(|(_, r)| &r[i]))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0);
                if i + 1 < cells.len() {
                    l.push_str(&format!("   {c:w$}"));
                } else {
                    l.push_str(&format!("   {c}"));
                }
            }
            l.push('\n');
            l
        };
        let mut out = line(&title, &columns);
        for (k, v) in &rows {
            out.push_str(&line(k, v));
        }
        out
    }
}
