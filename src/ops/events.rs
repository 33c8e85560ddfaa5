//! `onair events tail | export | import`: the stream as CloudEvents JSON lines (structured mode),
//! for analytics consumers and to restore an export elsewhere (docs/design.md#the-event-model).
//!
//! One line per event: `{"specversion":"1.0","id","source","type","time","subject",
//! "datacontenttype":"application/json","sequence":"<stream sequence>","data":{...}}`. `sequence`
//! is the CloudEvents `sequence` extension (a string); `import` ignores it, since an import gets
//! the sequences of its new stream.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event_store::EventStore;
use crate::events::{Event, cloudevents};

/// Where a range starts or ends: a stream sequence or an event time (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// A stream sequence (the first event is 1).
    Sequence(u64),
    /// An event time, compared with each event's `ce-time` (when it happened), so a range of
    /// times selects the same events in an imported stream as in the original.
    Time(OffsetDateTime),
}

/// How far an event's `ce-time` may lie before the moment JetStream stored it: an expiry is
/// dated at the last heartbeat (60 s earlier), an EventBridge event at its source, and instance
/// clocks differ. Reading for a time range starts this much earlier (by stored time) and stops
/// once an event is dated twice this much after the range's end; an event delayed by more than
/// this may be missed at a range's edges.
pub const MAX_EVENT_DELAY: Duration = Duration::from_secs(15 * 60);

/// Where reading starts for `since` (stored time for a time bound, [`MAX_EVENT_DELAY`] early).
fn start_policy(since: Option<Position>, new_only: bool) -> DeliverPolicy {
    match since {
        None if new_only => DeliverPolicy::New,
        None => DeliverPolicy::All,
        Some(Position::Sequence(s)) => DeliverPolicy::ByStartSequence {
            start_sequence: s.max(1),
        },
        Some(Position::Time(t)) => DeliverPolicy::ByStartTime {
            start_time: t - MAX_EVENT_DELAY,
        },
    }
}

/// An event's `ce-time`, if it has a readable one.
fn event_time(headers: Option<&async_nats::HeaderMap>) -> Option<OffsetDateTime> {
    let raw = headers?.get(cloudevents::TIME)?;
    OffsetDateTime::parse(raw.as_str(), &Rfc3339).ok()
}

impl std::str::FromStr for Position {
    type Err = String;
    /// A whole number is a sequence; anything else must be an RFC 3339 time.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if let Ok(n) = raw.parse::<u64>() {
            return Ok(Self::Sequence(n));
        }
        OffsetDateTime::parse(raw, &Rfc3339)
            .map(Self::Time)
            .map_err(|_| format!("expected a stream sequence or an RFC 3339 time, got {raw:?}"))
    }
}

/// Which events to read.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Where reading starts; `None`: the start of the stream (`tail`: new events only).
    pub since: Option<Position>,
    /// Where reading ends, inclusive; `None`: no bound (`export` stops at the end as it was).
    pub until: Option<Position>,
    /// Event types (`onair.viewer.joined.v1`); empty: every type.
    pub types: Vec<String>,
    /// A subject filter (`onair.viewer.>`); default `onair.>`.
    pub subject: Option<String>,
}

impl Selection {
    /// Whether a CloudEvent (as JSON) is of a selected type (every type when none is given).
    fn wants_type(&self, event: &Value) -> bool {
        self.types.is_empty()
            || self
                .types
                .iter()
                .any(|t| event["type"].as_str() == Some(t.as_str()))
    }

    /// Whether an event lies within `since..=until`. An event without a readable `ce-time` is
    /// outside any time bound.
    fn in_range(&self, sequence: u64, time: Option<OffsetDateTime>) -> bool {
        let after_start = match self.since {
            None => true,
            Some(Position::Sequence(s)) => sequence >= s,
            Some(Position::Time(t)) => time.is_some_and(|time| time >= t),
        };
        let before_end = match self.until {
            None => true,
            Some(Position::Sequence(s)) => sequence <= s,
            Some(Position::Time(t)) => time.is_some_and(|time| time <= t),
        };
        after_start && before_end
    }

    /// Whether no event from this one on can be within `until` (events come in stream order;
    /// for a time, see [`MAX_EVENT_DELAY`]).
    fn past_end(&self, sequence: u64, time: Option<OffsetDateTime>) -> bool {
        match self.until {
            None => false,
            Some(Position::Sequence(s)) => sequence > s,
            Some(Position::Time(t)) => time.is_some_and(|time| time > t + 2 * MAX_EVENT_DELAY),
        }
    }
}

/// One stored message as a structured CloudEvent.
pub fn to_cloudevent(
    headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
    sequence: u64,
) -> Value {
    let get = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let data: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    json!({
        "specversion": "1.0",
        "id": get(cloudevents::ID),
        "source": get(cloudevents::SOURCE),
        "type": get(cloudevents::TYPE),
        "time": get(cloudevents::TIME),
        "subject": get(cloudevents::SUBJECT),
        "datacontenttype": "application/json",
        "sequence": sequence.to_string(),
        "data": data,
    })
}

/// Writes the selected events as JSON lines; with `follow`, keeps waiting for new ones (tail).
/// Returns how many were written. Progress goes to stderr every 2 s for long exports.
pub async fn export(
    store: &EventStore,
    selection: &Selection,
    follow: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut stream = store.stream().await?;
    let last = stream.info().await?.state.last_sequence;
    let deliver_policy = start_policy(selection.since, follow);
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: selection
                .subject
                .clone()
                .unwrap_or_else(|| "onair.>".into()),
            deliver_policy,
            ..Default::default()
        })
        .await?;
    let total = consumer.clone().info().await?.num_pending;
    if !follow && total == 0 {
        return Ok(0);
    }
    let mut messages = consumer.messages().await?;
    let (mut written, mut read) = (0u64, 0u64);
    let started = Instant::now();
    let mut reported = Instant::now();
    loop {
        let next = if follow {
            messages.next().await
        } else {
            match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
                Ok(m) => m,
                Err(_) => anyhow::bail!("the stream stopped answering after {read} events"),
            }
        };
        let Some(message) = next else { break };
        let message = message?;
        let info = message
            .info()
            .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
        let (sequence, remaining) = (info.stream_sequence, info.pending);
        read += 1;
        let time = event_time(message.headers.as_ref());
        // Messages come in sequence order, so the range ends here (a tail with `--until` stops
        // too).
        if selection.past_end(sequence, time) {
            break;
        }
        let event = to_cloudevent(message.headers.as_ref(), &message.payload, sequence);
        if selection.in_range(sequence, time) && selection.wants_type(&event) {
            writeln!(out, "{event}")?;
            written += 1;
            if follow {
                out.flush()?;
            }
        }
        if !follow && reported.elapsed() > Duration::from_secs(2) {
            let rate = read as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "{read}/{total} events ({rate:.0}/s, about {:.0} s left)",
                remaining as f64 / rate.max(1.0)
            );
            reported = Instant::now();
        }
        if !follow && (remaining == 0 || sequence >= last) {
            break;
        }
    }
    out.flush()?;
    Ok(written)
}

/// Prefix of the durable consumers of `tail --durable NAME`.
pub const DURABLE_TAIL_PREFIX: &str = "onair-tail-";

/// `tail --durable NAME`: like `tail`, through a durable JetStream consumer
/// (`onair-tail-<NAME>`), so a consumer that stops and starts again goes on after the last event
/// it acknowledged. Each event is acknowledged once its line is written and flushed: delivery is
/// at least once (after a crash between the two, a line comes again; the CloudEvents `id` tells
/// them apart). `selection.since` and `subject` apply when the consumer is created (default: from
/// now on); `types` filters each time. Stops after `limit` written events, if given. A consumer
/// unused for 7 days is removed by the server.
pub async fn tail_durable(
    store: &EventStore,
    selection: &Selection,
    name: &str,
    limit: Option<u64>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "--durable must be 1 to 64 letters, digits, '-' or '_', got {name:?}"
    );
    let durable = format!("{DURABLE_TAIL_PREFIX}{name}");
    let deliver_policy = start_policy(selection.since, true);
    let stream = store.stream().await?;
    let consumer = stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: selection
                    .subject
                    .clone()
                    .unwrap_or_else(|| "onair.>".into()),
                deliver_policy,
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                inactive_threshold: Duration::from_secs(7 * 24 * 3600),
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    let mut written = 0u64;
    while limit.is_none_or(|limit| written < limit) {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
        let sequence = message
            .info()
            .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?
            .stream_sequence;
        let time = event_time(message.headers.as_ref());
        let event = to_cloudevent(message.headers.as_ref(), &message.payload, sequence);
        if selection.in_range(sequence, time) && selection.wants_type(&event) {
            writeln!(out, "{event}")?;
            out.flush()?;
            written += 1;
        }
        message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(written)
}

/// Loads CloudEvents JSON lines into an **empty** stream, keeping each event's id, source, type,
/// time and data (and so its subject). Refuses a non-empty stream, and stops at the first line
/// that is not a known onair event, naming its line number; nothing after it is loaded.
pub async fn import(store: &EventStore, input: &mut dyn BufRead) -> anyhow::Result<u64> {
    let mut stream = store.stream().await?;
    let messages = stream.info().await?.state.messages;
    anyhow::ensure!(
        messages == 0,
        "the stream already holds {messages} events; import loads into an empty stream only"
    );
    let mut loaded = 0u64;
    let started = Instant::now();
    let mut reported = Instant::now();
    let mut batch = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("line {number}: not JSON: {e}"))?;
        let field = |name: &str| {
            value[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("line {number}: missing {name}"))
        };
        let id = uuid::Uuid::parse_str(&field("id")?)
            .map_err(|e| anyhow::anyhow!("line {number}: id is not a UUID: {e}"))?;
        let event_type = field("type")?;
        let source = field("source")?;
        let time = OffsetDateTime::parse(&field("time")?, &Rfc3339)
            .map_err(|e| anyhow::anyhow!("line {number}: time is not RFC 3339: {e}"))?;
        let data = serde_json::to_vec(&value["data"])?;
        let event =
            Event::decode(&event_type, &data).map_err(|e| anyhow::anyhow!("line {number}: {e}"))?;
        batch.push((id, time, source, event));
        if batch.len() == 500 {
            loaded += store.import_batch(std::mem::take(&mut batch)).await?;
        }
        if reported.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "{loaded} events loaded ({:.0}/s)",
                loaded as f64 / started.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
    }
    loaded += store.import_batch(batch).await?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn positions_are_sequences_or_times() {
        assert_eq!("42".parse::<Position>(), Ok(Position::Sequence(42)));
        assert_eq!(
            "2026-11-22T10:00:00Z".parse::<Position>(),
            Ok(Position::Time(datetime!(2026-11-22 10:00 UTC)))
        );
        assert!("yesterday".parse::<Position>().is_err());
    }
}
