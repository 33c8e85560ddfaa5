//! The lake writer's loop: reads the stream through its durable consumer from the sequence after
//! the lake's checkpoint, buffers each event's rows by partition, and flushes every buffered
//! partition at once (one flush, one range of sequences) when the buffer reaches the size roll or
//! the oldest buffered event the time roll.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt;
use serde_json::Value;

use super::columns::{Attributes, TableShape};
use super::layout::{self, Partition};
use super::parquet_file::TableBuffer;
use crate::event_store::EventStore;
use crate::events::{Event, cloudevents, schema};

/// The lake writer's durable JetStream consumer.
pub const CONSUMER: &str = "onair-lake";

/// When the writer flushes and where.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// The lake's root directory.
    pub dir: PathBuf,
    /// Flush once the buffered rows take this many bytes (values before encoding).
    pub roll_bytes: usize,
    /// Flush once the oldest buffered event has waited this long.
    pub roll_interval: Duration,
    /// Stop, after a last flush, once the stream's events stored when the run began are written
    /// (a backfill); otherwise run until stopped.
    pub until_caught_up: bool,
}

/// What one run wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkReport {
    /// Where the lake stood when the run began (0: empty).
    pub started_at: u64,
    /// Where it stands now: the last sequence of the last flush.
    pub checkpoint: u64,
    /// Events read and written.
    pub events: u64,
    /// Rows written (a heartbeat batch is one row per heartbeat).
    pub rows: u64,
    /// Events skipped: types this build does not know, or unreadable payloads.
    pub skipped: u64,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Flushes done.
    pub flushes: u64,
}

/// The column shapes of every event type, and which types are the newest of their version line.
pub struct Shapes {
    list: Vec<Arc<TableShape>>,
    index: HashMap<String, usize>,
    newest: BTreeSet<String>,
}

/// `onair.gift.sent.v2` → `("onair.gift.sent", 2)`.
fn version_of(event_type: &str) -> Option<(&str, u32)> {
    let (base, version) = event_type.rsplit_once(".v")?;
    Some((base, version.parse().ok()?))
}

impl Shapes {
    /// The shapes of the event catalog (`onair schemas`).
    ///
    /// Errors: a schema of the catalog gives no columns (a bug caught by the unit tests).
    pub fn of_catalog() -> anyhow::Result<Self> {
        let catalog = schema::catalog();
        let mut shapes = Self {
            list: Vec::with_capacity(catalog.len()),
            index: HashMap::new(),
            newest: BTreeSet::new(),
        };
        let mut newest: HashMap<String, (u32, String)> = HashMap::new();
        for entry in &catalog {
            shapes
                .index
                .insert(entry.event_type.to_owned(), shapes.list.len());
            shapes.list.push(Arc::new(TableShape::derive(
                entry.event_type,
                &entry.schema,
            )?));
            if let Some((base, version)) = version_of(entry.event_type) {
                let best = newest
                    .entry(base.to_owned())
                    .or_insert((version, entry.event_type.to_owned()));
                if version > best.0 {
                    *best = (version, entry.event_type.to_owned());
                }
            }
        }
        shapes.newest = newest.into_values().map(|(_, t)| t).collect();
        Ok(shapes)
    }

    /// The shape of `event_type`'s files.
    pub fn get(&self, event_type: &str) -> Option<&Arc<TableShape>> {
        self.index.get(event_type).map(|&i| &self.list[i])
    }
}

/// A partition while it is buffered: the shape's index and the hour (Unix time / 3600) of `ce-time`.
type HourKey = (usize, i64);

/// The rows buffered for the next flush: stream sequences `first..=last`.
struct Flush {
    first: u64,
    last: u64,
    tables: HashMap<HourKey, TableBuffer>,
    bytes: usize,
    events: u64,
    rows: u64,
    since: Option<Instant>,
}

impl Flush {
    fn after(checkpoint: u64) -> Self {
        Self {
            first: checkpoint + 1,
            last: checkpoint,
            tables: HashMap::new(),
            bytes: 0,
            events: 0,
            rows: 0,
            since: None,
        }
    }
}

/// Reads one stored message into the rows of the type it is written as: the newest version of its
/// type (older versions are decoded and upcast; the newest are read as stored). `false` for a type
/// this build does not know or a payload it cannot read (nothing is buffered then).
fn read_into(
    shapes: &Shapes,
    message: &async_nats::jetstream::Message,
    sequence: u64,
    flush: &mut Flush,
) -> bool {
    let Some(headers) = message.headers.as_ref() else {
        return false;
    };
    let header = |name| headers.get(name).map(|v| v.as_str());
    let Some(stored_type) = header(cloudevents::TYPE) else {
        return false;
    };
    let upcast;
    let (event_type, payload): (&str, &[u8]) = if shapes.newest.contains(stored_type) {
        (stored_type, &message.payload)
    } else {
        let Ok(event) = Event::decode(stored_type, &message.payload) else {
            return false;
        };
        upcast = event.to_json();
        (event.event_type(), &upcast)
    };
    let Some(&index) = shapes.index.get(event_type) else {
        return false;
    };
    let (Some(id), Some(Ok(time)), Ok(payload)) = (
        header(cloudevents::ID),
        header(cloudevents::TIME).map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        }),
        serde_json::from_slice::<Value>(payload),
    ) else {
        return false;
    };
    let shape = &shapes.list[index];
    let attributes = Attributes {
        id,
        time,
        source: header(cloudevents::SOURCE).unwrap_or_default(),
        event_type,
        sequence,
    };
    let rows = shape.rows(&attributes, &payload);
    let table = flush
        .tables
        .entry((index, time.unix_timestamp().div_euclid(3600)))
        .or_insert_with(|| TableBuffer::new(shape.clone()));
    let before = table.bytes();
    flush.rows += rows.len() as u64;
    for row in rows {
        table.push(row);
    }
    flush.bytes += table.bytes() - before;
    flush.events += 1;
    true
}

/// Runs the writer until stopped (or, with `until_caught_up`, until the events stored when it
/// began are written). `before_publish` is awaited before each flush's files are renamed (the
/// leader's check that it still holds the lock); an error there abandons the flush.
///
/// Errors: the lake directory cannot be read or written; the stream holds fewer events than the
/// lake (another stream); NATS fails.
pub async fn run<F, Fut>(
    store: &EventStore,
    options: &SinkOptions,
    before_publish: F,
) -> anyhow::Result<SinkReport>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let shapes = Shapes::of_catalog()?;
    let dir = options.dir.clone();
    let recovered = tokio::task::spawn_blocking(move || layout::recover(&dir)).await??;
    if recovered.finished + recovered.deleted > 0 {
        tracing::info!(
            finished = recovered.finished,
            deleted = recovered.deleted,
            "an interrupted flush was finished or dropped"
        );
    }
    let checkpoint = recovered.checkpoint;
    let mut report = SinkReport {
        started_at: checkpoint,
        checkpoint,
        ..Default::default()
    };
    metrics::gauge!("onair_lake_checkpoint").set(checkpoint as f64);
    let mut stream = store.stream().await?;
    let stored = stream.info().await?.state.last_sequence;
    anyhow::ensure!(
        checkpoint <= stored,
        "the lake in {} holds events up to sequence {checkpoint}, but the stream ends at \
         {stored}: it was written from another stream",
        options.dir.display()
    );
    tracing::info!(checkpoint, stored, dir = %options.dir.display(), "lake writer started");
    if options.until_caught_up && checkpoint >= stored {
        return Ok(report);
    }
    // Recreated at the checkpoint: delivery restarts in stream order whatever an earlier run read.
    let _ = stream.delete_consumer(CONSUMER).await;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(CONSUMER.to_owned()),
            description: Some(
                "onair lake writer (Parquet files; the files are the checkpoint)".into(),
            ),
            filter_subject: "onair.>".into(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: checkpoint + 1,
            },
            ack_policy: AckPolicy::None,
            // The files are the checkpoint and the consumer is made anew at every start: its
            // state is not replicated (one replica, in memory).
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await?;
    let mut flush = Flush::after(checkpoint);
    loop {
        let deadline = flush.since.map(|t| t + options.roll_interval);
        let next = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), messages.next())
                .await
                .ok(),
            None => Some(messages.next().await),
        };
        let mut caught_up = false;
        if let Some(next) = next {
            let Some(message) = next else {
                anyhow::bail!("the consumer {CONSUMER} ended");
            };
            let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
            let info = message
                .info()
                .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            if !read_into(&shapes, &message, sequence, &mut flush) {
                report.skipped += 1;
                metrics::counter!("onair_lake_events_skipped_total").increment(1);
                tracing::warn!(sequence, "event skipped: unknown type or unreadable");
            }
            flush.last = sequence;
            flush.since.get_or_insert_with(Instant::now);
            caught_up = options.until_caught_up && (pending == 0 || sequence >= stored);
            // Checked here too: while events keep coming, the wait above never times out.
            let due = flush
                .since
                .is_some_and(|t| t.elapsed() >= options.roll_interval);
            if flush.bytes < options.roll_bytes && !caught_up && !due {
                continue;
            }
        }
        if flush.events > 0 {
            write_flush(&options.dir, &mut flush, &mut report, &before_publish).await?;
        } else {
            // Nothing but skipped events: nothing to write, they are read again after a restart.
            flush.since = None;
        }
        if caught_up {
            return Ok(report);
        }
    }
}

async fn write_flush<F, Fut>(
    dir: &std::path::Path,
    flush: &mut Flush,
    report: &mut SinkReport,
    before_publish: &F,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let done = std::mem::replace(flush, Flush::after(flush.last));
    let (first, last) = (done.first, done.last);
    let mut tables: Vec<(Partition, TableBuffer)> = done
        .tables
        .into_iter()
        .map(|((_, hour), buffer)| {
            let start = time::OffsetDateTime::from_unix_timestamp(hour * 3600)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            (Partition::of(&buffer.shape().event_type, start), buffer)
        })
        .collect();
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    let root = dir.to_path_buf();
    let prepared =
        tokio::task::spawn_blocking(move || layout::prepare(&root, first, last, &tables)).await??;
    if let Err(e) = before_publish().await {
        tokio::task::spawn_blocking(move || prepared.abandon()).await?;
        return Err(e);
    }
    let files = prepared.files() as u64;
    let bytes: u64 = prepared.bytes.values().sum();
    tokio::task::spawn_blocking(move || prepared.publish()).await??;
    report.checkpoint = last;
    report.events += done.events;
    report.rows += done.rows;
    report.files += files;
    report.bytes += bytes;
    report.flushes += 1;
    metrics::gauge!("onair_lake_checkpoint").set(last as f64);
    metrics::counter!("onair_lake_events_written_total").increment(done.events);
    metrics::counter!("onair_lake_bytes_written_total").increment(bytes);
    tracing::info!(
        first,
        last,
        events = done.events,
        files,
        bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "lake flush written"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_of_each_type_is_written() {
        let shapes = Shapes::of_catalog().unwrap();
        assert!(shapes.newest.contains("onair.gift.sent.v2"));
        assert!(!shapes.newest.contains("onair.gift.sent.v1"));
        assert!(shapes.newest.contains("onair.viewer.joined.v1"));
        assert_eq!(
            version_of("onair.gift.sent.v12"),
            Some(("onair.gift.sent", 12))
        );
    }
}
