//! `onair audit`: rebuilds every read model from sequence 1 into a scratch schema and compares it
//! with the live read models row by row (docs/design.md#invariants, 3: a rebuild gives exactly the
//! rows the live projectors built). Also reports gaps in the stream's sequences and events that no
//! projector understands (unknown types, unreadable payloads).
//!
//! The scratch tables are made `LIKE` the live ones and filled by the same projection code on a
//! connection whose `search_path` is the scratch schema, with their chat notices discarded. The
//! comparison runs when each live projection's checkpoint equals the rebuild's (the live side is
//! read in one snapshot); a live system that keeps moving is compared at a point both reached.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use sqlx::{Connection, PgConnection, PgPool};

use crate::event_store::EventStore;
use crate::events::{EventEnvelope, cloudevents};
use crate::projections::{self, Projection};

/// Every read-model table, in the order they are compared.
pub const READ_MODEL_TABLES: &[&str] = &[
    "rm_stages",
    "rm_viewer_seats",
    "rm_watch_time",
    "rm_publisher_status",
    "rm_rooms",
    "rm_followers",
    "rm_gift_records",
    "rm_gift_rankings",
    "rm_gift_ranking_counters",
    "rm_room_activity",
    "rm_room_presence",
];

/// Rows that differ in one table.
#[derive(Debug, Default)]
pub struct TableDifference {
    /// The read-model table, e.g. `rm_stages`.
    pub table: String,
    /// Rows the live table has and the rebuild does not (JSON), at most 20.
    pub only_live: Vec<String>,
    /// Rows the rebuild has and the live table does not, at most 20.
    pub only_rebuilt: Vec<String>,
    /// Rows found on one side only, both sides together (a changed row counts twice).
    pub count: u64,
}

/// What an audit found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Events read from the stream, up to the sequence the comparison was made at.
    pub events: u64,
    /// Tables whose live and rebuilt rows differ; empty when every table matches.
    pub differences: Vec<TableDifference>,
    /// Missing sequence ranges `(first, last)`.
    pub gaps: Vec<(u64, u64)>,
    /// `(sequence, type or reason)` of events no projector could read.
    pub unknown: Vec<(u64, String)>,
}

impl AuditReport {
    /// No differences, gaps or unreadable events: `onair audit` exits 0.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.gaps.is_empty() && self.unknown.is_empty()
    }
}

/// Whether a NATS subject matches a filter with `*` and `>` wildcards.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Projections applied into a scratch schema (audit, replay): their notices are discarded.
pub(crate) struct Rebuild {
    pub(crate) conn: PgConnection,
    pub(crate) projections: Vec<std::sync::Arc<dyn Projection>>,
    /// The last sequence applied, per projection.
    pub(crate) checkpoints: BTreeMap<&'static str, u64>,
}

impl Rebuild {
    async fn apply(&mut self, batch: Vec<StreamMessage>) -> anyhow::Result<()> {
        apply_on(
            &mut self.conn,
            &self.projections,
            &mut self.checkpoints,
            batch,
        )
        .await
    }
}

/// Applies a batch of `(subject, event)` to each projection whose subjects match (the reader
/// marked which: [`StreamMessage::projections`], in the order of `projections`), in one
/// transaction for the whole batch, on `conn` and its `search_path`. Each event is moved to the
/// last projection that reads it and cloned only for the others.
pub(crate) async fn apply_on(
    conn: &mut PgConnection,
    projections: &[std::sync::Arc<dyn Projection>],
    checkpoints: &mut BTreeMap<&'static str, u64>,
    batch: Vec<StreamMessage>,
) -> anyhow::Result<()> {
    let mut events: Vec<Vec<EventEnvelope>> = vec![Vec::new(); projections.len()];
    // Like the live projector, the checkpoint passes unreadable events too.
    let mut last: Vec<Option<u64>> = vec![None; projections.len()];
    for message in batch {
        let mut mask = message.projections;
        while mask != 0 {
            let at = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let Some(reached) = last.get_mut(at) else {
                break;
            };
            *reached = Some(message.sequence);
            match &message.event {
                Some(event) if mask != 0 => events[at].push(event.clone()),
                _ => {}
            }
            if mask == 0
                && let Some(event) = message.event
            {
                events[at].push(event);
                break;
            }
        }
    }
    // One transaction for the whole batch, every projection: a rebuild commits once per batch.
    let mut tx = conn.begin().await?;
    let mut reached = Vec::with_capacity(projections.len());
    for ((projection, events), last) in projections.iter().zip(events).zip(last) {
        let Some(last) = last else { continue };
        if !events.is_empty() {
            projection.apply_batch(&mut tx, &events).await?;
            let _ = projection.take_notices();
        }
        reached.push((projection.name(), last));
    }
    tx.commit().await?;
    checkpoints.extend(reached);
    Ok(())
}

/// Events applied (and committed) together by a rebuild.
const REBUILD_BATCH: usize = 5000;

/// Settings of a rebuild's connection: its writes go to scratch tables that an interrupted run
/// drops, so it does not wait for each commit to reach the disk (`synchronous_commit = off`; a
/// replay's swap commits durably and flushes everything before it).
pub(crate) async fn fast_rebuild(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SET synchronous_commit TO off")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One message of the stream as the rebuild reads it.
pub(crate) struct StreamMessage {
    /// The projections that read it (bit `i`: the `i`th of the rebuild's).
    pub(crate) projections: u64,
    pub(crate) sequence: u64,
    /// `None`: an event no projector can read (reported as unknown).
    pub(crate) event: Option<EventEnvelope>,
}

/// Batches the reader decodes ahead of the one being applied.
const READ_AHEAD: usize = 4;

/// Which events a rebuild reads, and which projection each goes to.
#[derive(Clone)]
pub(crate) struct Selection {
    /// The subject filters of each projection, in the order `apply_on` is given them (at most
    /// 64 projections).
    projections: Vec<Vec<String>>,
    /// Whether every event of the stream is read and decoded (the audit reports gaps and the
    /// events no projector can read); otherwise the stream sends only the events on the
    /// projections' subjects.
    all: bool,
}

impl Selection {
    /// The events of `projections`; `all`: every event of the stream.
    pub(crate) fn of(projections: &[std::sync::Arc<dyn Projection>], all: bool) -> Self {
        Self {
            projections: projections.iter().map(|p| p.subjects()).collect(),
            all,
        }
    }

    /// The projections (bit `i`: the `i`th) whose subjects match `subject`.
    fn mask(&self, subject: &str) -> u64 {
        self.projections
            .iter()
            .enumerate()
            .filter(|(_, filters)| filters.iter().any(|f| subject_matches(f, subject)))
            .fold(0, |mask, (i, _)| mask | (1 << i))
    }

    /// The consumer's filters: every subject, or the projections' (without repeats).
    fn filters(&self) -> Vec<String> {
        if self.all {
            return vec!["onair.>".to_owned()];
        }
        let mut filters: Vec<String> = self.projections.iter().flatten().cloned().collect();
        filters.sort();
        filters.dedup();
        filters
    }
}

/// What the reader found besides the events: see [`AuditReport`].
#[derive(Default)]
pub(crate) struct ReadFindings {
    events: u64,
    gaps: Vec<(u64, u64)>,
    unknown: Vec<(u64, String)>,
}

/// Reads events `from..=to` (stream sequences) with their subjects and hands them to `on_batch`
/// in batches of [`REBUILD_BATCH`], in stream order; records gaps and unreadable events in
/// `report`.
///
/// A pipeline: a reader task fetches and decodes the next batches (up to [`READ_AHEAD`]) while
/// `on_batch` applies the current one, so reading the stream and writing Postgres overlap.
pub(crate) async fn read_range(
    store: &EventStore,
    from: u64,
    to: u64,
    selection: Selection,
    report: &mut AuditReport,
    on_batch: impl AsyncFnMut(Vec<StreamMessage>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let progress = Progress::new(to, 1);
    read_range_reporting(store, from, to, selection, report, &progress, 0, on_batch).await?;
    progress.finish();
    Ok(())
}

/// [`read_range`] as one of several readers sharing `progress` (its slot `slot`); the caller
/// ends the bar with [`Progress::finish`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn read_range_reporting(
    store: &EventStore,
    from: u64,
    to: u64,
    selection: Selection,
    report: &mut AuditReport,
    progress: &Progress,
    slot: usize,
    mut on_batch: impl AsyncFnMut(Vec<StreamMessage>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Some(mut reader) = RangeReader::start(store, from, to, selection) else {
        return Ok(());
    };
    while let Some((batch, events_read)) = reader.batches.recv().await {
        let at = batch.last().map_or(from, |m: &StreamMessage| m.sequence);
        if let Err(e) = on_batch(batch).await {
            reader.task.abort();
            return Err(e);
        }
        progress.update(slot, at, events_read);
    }
    reader.finish(to, report, progress, slot).await
}

/// The reading half of [`read_range`]: a task that fetches and decodes the range's batches
/// ahead (up to [`READ_AHEAD`]) while the caller applies them.
pub(crate) struct RangeReader {
    /// Each batch with the count of events read so far.
    pub(crate) batches: tokio::sync::mpsc::Receiver<(Vec<StreamMessage>, u64)>,
    task: tokio::task::JoinHandle<anyhow::Result<ReadFindings>>,
}

impl RangeReader {
    /// Starts reading `from..=to`; `None` when the range is empty.
    pub(crate) fn start(
        store: &EventStore,
        from: u64,
        to: u64,
        selection: Selection,
    ) -> Option<Self> {
        if from > to {
            return None;
        }
        let (sender, batches) = tokio::sync::mpsc::channel(READ_AHEAD);
        let task = tokio::spawn(read_into(store.clone(), from, to, selection, sender));
        Some(Self { batches, task })
    }

    /// Stops reading (the applier failed).
    pub(crate) fn abort(&self) {
        self.task.abort();
    }

    /// Waits for the reader's end and adds what it found to `report` and `progress`.
    pub(crate) async fn finish(
        self,
        to: u64,
        report: &mut AuditReport,
        progress: &Progress,
        slot: usize,
    ) -> anyhow::Result<()> {
        let findings = self
            .task
            .await
            .map_err(|e| anyhow::anyhow!("the stream reader failed: {e}"))??;
        progress.update(slot, to, findings.events);
        report.events += findings.events;
        report.gaps.extend(findings.gaps);
        report.unknown.extend(findings.unknown);
        Ok(())
    }
}

/// The progress bar of one or several readers of a range, on standard error (at most every
/// 500 ms): how far the slowest reader stands and the events all have read.
pub(crate) struct Progress {
    to: u64,
    started: Instant,
    state: std::sync::Mutex<ProgressState>,
}

/// Per reader: the sequence it stands at and the events it has read; then the last print.
type ProgressState = (Vec<(u64, u64)>, Option<Instant>);

impl Progress {
    /// A bar for `readers` readers of a range ending at `to`.
    pub(crate) fn new(to: u64, readers: usize) -> Self {
        Self {
            to,
            started: Instant::now(),
            state: std::sync::Mutex::new((vec![(0, 0); readers.max(1)], None)),
        }
    }

    /// Reader `slot` stands at `at` and has read `events`.
    pub(crate) fn update(&self, slot: usize, at: u64, events: u64) {
        let mut state = self.state.lock().expect("progress lock");
        if let Some(reader) = state.0.get_mut(slot) {
            *reader = (at, events);
        }
        if state
            .1
            .is_none_or(|last| last.elapsed() > Duration::from_millis(500))
        {
            state.1 = Some(Instant::now());
            let at = state.0.iter().map(|r| r.0).min().unwrap_or(0);
            let events = state.0.iter().map(|r| r.1).sum();
            progress(at, self.to, events, self.started.elapsed());
        }
    }

    /// Prints the final state and ends the bar's line (nothing when no event was read).
    pub(crate) fn finish(&self) {
        let state = self.state.lock().expect("progress lock");
        let events: u64 = state.0.iter().map(|r| r.1).sum();
        if events > 0 {
            progress(self.to, self.to, events, self.started.elapsed());
            eprintln!();
        }
    }
}

/// The reader task of [`read_range`]: sends each batch with the count of events read so far.
async fn read_into(
    store: EventStore,
    from: u64,
    to: u64,
    selection: Selection,
    batches: tokio::sync::mpsc::Sender<(Vec<StreamMessage>, u64)>,
) -> anyhow::Result<ReadFindings> {
    let stream = store.stream().await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subjects: selection.filters(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await?;
    let mut findings = ReadFindings::default();
    // Filtered: the range may end with (or hold only) events of other subjects, which never
    // come; the consumer's pending count tells when none of ours is left.
    if !selection.all && consumer.cached_info().num_pending == 0 {
        return Ok(findings);
    }
    let mut messages = consumer.messages().await?;
    let mut expected = from;
    let mut batch = Vec::with_capacity(REBUILD_BATCH);
    while expected <= to {
        let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(10), messages.next()).await
        else {
            anyhow::bail!("the stream stopped answering at sequence {expected}");
        };
        let message = message?;
        let (sequence, pending) = message
            .info()
            .map(|info| (info.stream_sequence, info.pending))
            .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
        if sequence > to {
            break;
        }
        if !selection.all && pending == 0 {
            // The last of ours: nothing after it to wait for.
            expected = to + 1;
        }
        if sequence > expected && selection.all {
            findings.gaps.push((expected, sequence - 1));
        }
        expected = expected.max(sequence + 1);
        findings.events += 1;
        let projections = selection.mask(&message.subject);
        if projections == 0 && !selection.all {
            continue;
        }
        let event = match cloudevents::decode(message.headers.as_ref(), &message.payload, sequence)
        {
            Ok(envelope) => Some(envelope),
            Err(e) => {
                findings.unknown.push((sequence, e.to_string()));
                None
            }
        };
        batch.push(StreamMessage {
            projections,
            sequence,
            event,
        });
        if batch.len() >= REBUILD_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(REBUILD_BATCH));
            if batches.send((full, findings.events)).await.is_err() {
                // The applier stopped (its error is reported there).
                return Ok(findings);
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.send((batch, findings.events)).await;
    }
    Ok(findings)
}

/// A progress bar on standard error: `[#####.....] 52% 5200/10000 events, 8123 events/s, ETA 1 s`.
fn progress(at: u64, to: u64, events: u64, elapsed: Duration) {
    let share = if to == 0 { 1.0 } else { at as f64 / to as f64 };
    let filled = (share * 30.0).round() as usize;
    let rate = events as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = (to.saturating_sub(at)) as f64 / rate.max(1.0);
    eprint!(
        "\r[{}{}] {:>3.0}% {at}/{to} events, {rate:.0} events/s, ETA {eta:.0} s ",
        "#".repeat(filled.min(30)),
        ".".repeat(30 - filled.min(30)),
        share * 100.0
    );
}

/// Creates `schema` with an empty copy (`LIKE ... INCLUDING ALL`) of each table.
pub(crate) async fn create_scratch(
    db: &PgPool,
    schema: &str,
    tables: &[&str],
) -> anyhow::Result<()> {
    let mut setup = db.acquire().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut *setup)
        .await?;
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        )))
        .execute(&mut *setup)
        .await?;
    }
    Ok(())
}

/// Runs an audit; the scratch schema is dropped at the end unless `keep_schema`.
pub async fn run(
    db: &PgPool,
    store: &EventStore,
    keep_schema: bool,
) -> anyhow::Result<AuditReport> {
    let schema = format!("onair_audit_{}", uuid::Uuid::new_v4().simple());
    let mut tables = READ_MODEL_TABLES.to_vec();
    tables.push("projection_checkpoints");
    create_scratch(db, &schema, &tables).await?;
    let result = audit_into(db, store, &schema).await;
    if !keep_schema {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(db)
            .await?;
    } else {
        eprintln!("the rebuilt read models are kept in schema {schema}");
    }
    result
}

async fn audit_into(db: &PgPool, store: &EventStore, schema: &str) -> anyhow::Result<AuditReport> {
    let mut conn = PgConnection::connect_with(&db.connect_options()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
        .execute(&mut conn)
        .await?;
    fast_rebuild(&mut conn).await?;
    let mut rebuild = Rebuild {
        conn,
        projections: projections::all(),
        checkpoints: BTreeMap::new(),
    };
    let mut report = AuditReport::default();
    let mut stream = store.stream().await?;
    let first = stream.info().await?.state.first_sequence;
    if first > 1 {
        report.gaps.push((1, first - 1));
    }
    // Reading starts at the first sequence the stream holds; the hole before it is reported
    // once, here (an empty stream is not waited for).
    let mut done = first.saturating_sub(1);
    let mut target = stream.info().await?.state.last_sequence;

    for _attempt in 0..20 {
        read_range(
            store,
            done + 1,
            target,
            Selection::of(&rebuild.projections, true),
            &mut report,
            async |batch| rebuild.apply(batch).await,
        )
        .await?;
        done = done.max(target);
        // The live side, in one snapshot: compare when every live checkpoint is where the rebuild
        // stands for that projection (no newer event applied live), else catch up and retry.
        let mut live = db.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *live)
            .await?;
        let checkpoints: Vec<(String, i64)> =
            sqlx::query_as("SELECT projection, last_sequence FROM projection_checkpoints")
                .fetch_all(&mut *live)
                .await?;
        let live_max = checkpoints.iter().map(|c| c.1 as u64).max().unwrap_or(0);
        let settled = rebuild.projections.iter().all(|p| {
            let live = checkpoints
                .iter()
                .find(|c| c.0 == p.name())
                .map_or(0, |c| c.1 as u64);
            live == rebuild.checkpoints.get(p.name()).copied().unwrap_or(0)
        });
        if settled {
            report.differences = compare(&mut live, schema).await?;
            return Ok(report);
        }
        drop(live);
        if live_max > done {
            target = live_max;
        } else {
            // The live projectors are behind the rebuild: give them a moment.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    anyhow::bail!(
        "the live read models kept moving or stayed behind the stream; run the audit again \
         when the projectors have caught up (see /health)"
    )
}

async fn compare(live: &mut PgConnection, schema: &str) -> anyhow::Result<Vec<TableDifference>> {
    let mut out = Vec::new();
    for table in READ_MODEL_TABLES {
        let side = |a: &str, b: &str| {
            format!(
                "SELECT to_jsonb(x)::text FROM (SELECT * FROM {a}.{table} EXCEPT ALL \
                 SELECT * FROM {b}.{table}) x ORDER BY 1"
            )
        };
        let only_live: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(side("public", schema)))
            .fetch_all(&mut *live)
            .await?;
        let only_rebuilt: Vec<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(side(schema, "public")))
                .fetch_all(&mut *live)
                .await?;
        let count = (only_live.len() + only_rebuilt.len()) as u64;
        if count > 0 {
            out.push(TableDifference {
                table: (*table).to_owned(),
                only_live: only_live.into_iter().take(20).map(|r| r.0).collect(),
                only_rebuilt: only_rebuilt.into_iter().take(20).map(|r| r.0).collect(),
                count,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_filters_with_wildcards() {
        assert!(subject_matches("onair.>", "onair.gift.x.sent"));
        assert!(subject_matches(
            "onair.viewer.*.heartbeat_recorded",
            "onair.viewer.u1.heartbeat_recorded"
        ));
        assert!(!subject_matches(
            "onair.viewer.*.heartbeat_recorded",
            "onair.viewer.u1.left"
        ));
        assert!(subject_matches(
            "onair.pool.default.*",
            "onair.pool.default.viewer_joined"
        ));
        assert!(!subject_matches("onair.gift.>", "onair.gift"));
        assert!(!subject_matches("onair.room.>", "onair.rooms.x"));
    }
}
