//! Reading a range of the stream for a rebuild (`onair audit`, `onair replay`): the events of
//! chosen projections' subjects, fetched and decoded ahead by a reader task in batches while the
//! caller applies the current one, with a progress bar on standard error.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use crate::event_store::EventStore;
use crate::events::{EventEnvelope, cloudevents};
use crate::projections::Projection;

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

/// Events applied (and committed) together by a rebuild.
const REBUILD_BATCH: usize = 5000;

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
    /// events no projector can read); otherwise only the events on the projections' subjects are
    /// decoded and handed on.
    all: bool,
    /// Whether the stream sends every event and the reader drops those of other subjects, instead
    /// of the stream filtering them (see [`Selection::unfiltered`]).
    unfiltered: bool,
}

impl Selection {
    /// The events of `projections`; `all`: every event of the stream.
    pub(crate) fn of(projections: &[std::sync::Arc<dyn Projection>], all: bool) -> Self {
        Self {
            projections: projections.iter().map(|p| p.subjects()).collect(),
            all,
            unfiltered: false,
        }
    }

    /// The same events, with the stream sending all of them and the reader dropping the events
    /// of other subjects. Cheaper when the projections read most of the range: a consumer with
    /// several filter subjects makes nats-server match every stored subject (one per aggregate)
    /// against them, about 4 times the CPU of an unfiltered read on the mixed stream of
    /// docs/performance.md.
    pub(crate) fn unfiltered(self) -> Self {
        Self {
            unfiltered: true,
            ..self
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
        if self.all || self.unfiltered {
            return vec!["onair.>".to_owned()];
        }
        let mut filters: Vec<String> = self.projections.iter().flatten().cloned().collect();
        filters.sort();
        filters.dedup();
        filters
    }
}

/// What a reader found: the events it read, the gaps in the stream (a full read only) and the
/// events no projector can read (see `AuditReport`).
#[derive(Default)]
pub(crate) struct ReadFindings {
    pub(crate) events: u64,
    pub(crate) gaps: Vec<(u64, u64)>,
    pub(crate) unknown: Vec<(u64, String)>,
}

/// Reads events `from..=to` (stream sequences) with their subjects and hands them to `on_batch`
/// in batches of [`REBUILD_BATCH`], in stream order; records gaps and unreadable events in
/// `found`.
///
/// A pipeline: a reader task fetches and decodes the next batches (up to [`READ_AHEAD`]) while
/// `on_batch` applies the current one, so reading the stream and writing Postgres overlap.
pub(crate) async fn read_range(
    store: &EventStore,
    from: u64,
    to: u64,
    selection: Selection,
    found: &mut ReadFindings,
    mut on_batch: impl AsyncFnMut(Vec<StreamMessage>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Some((reader, mut batches)) = RangeReader::start(store, from, to, selection) else {
        return Ok(());
    };
    let progress = Progress::new(to, 1);
    while let Some((batch, events_read)) = batches.recv().await {
        let at = batch.last().map_or(from, |m: &StreamMessage| m.sequence);
        if let Err(e) = on_batch(batch).await {
            reader.abort();
            return Err(e);
        }
        progress.update(0, at, events_read);
    }
    let events = reader.finish(found).await?;
    progress.update(0, to, events);
    progress.finish();
    Ok(())
}

/// Batches of one reader's output, each with the count of events handed to that output so far.
pub(crate) type Batches = tokio::sync::mpsc::Receiver<(Vec<StreamMessage>, u64)>;

/// The reading half of [`read_range`]: a task that fetches and decodes the range's batches
/// ahead (up to [`READ_AHEAD`] per output) while the callers apply them.
pub(crate) struct RangeReader {
    task: tokio::task::JoinHandle<anyhow::Result<ReadFindings>>,
}

impl RangeReader {
    /// Starts reading `from..=to` into one output; `None` when the range is empty.
    pub(crate) fn start(
        store: &EventStore,
        from: u64,
        to: u64,
        selection: Selection,
    ) -> Option<(Self, Batches)> {
        let (reader, mut outputs) =
            Self::start_routed(store, from, to, selection, std::iter::once(0..64).collect())?;
        outputs.pop().map(|batches| (reader, batches))
    }

    /// Starts reading `from..=to` once for several appliers: `routes[i]` is the range of bits
    /// (projections, in the selection's order) that output `i` applies. An event goes to the
    /// first output whose projections read it, its projection bits shifted to that output's own
    /// (bit 0: the output's first projection), so each event is fetched and decoded once;
    /// projections that read the same subjects belong in one output. `None` when the range is
    /// empty.
    pub(crate) fn start_routed(
        store: &EventStore,
        from: u64,
        to: u64,
        selection: Selection,
        routes: Vec<std::ops::Range<u32>>,
    ) -> Option<(Self, Vec<Batches>)> {
        if from > to || routes.is_empty() {
            return None;
        }
        let mut senders = Vec::with_capacity(routes.len());
        let mut outputs = Vec::with_capacity(routes.len());
        for route in routes {
            let (sender, batches) = tokio::sync::mpsc::channel(READ_AHEAD);
            senders.push(Output::new(route, sender));
            outputs.push(batches);
        }
        let task = tokio::spawn(read_into(store.clone(), from, to, selection, senders));
        Some((Self { task }, outputs))
    }

    /// Stops reading (an applier failed).
    pub(crate) fn abort(&self) {
        self.task.abort();
    }

    /// Waits for the reader's end, adds what it found to `found` and answers the events it read.
    pub(crate) async fn finish(self, found: &mut ReadFindings) -> anyhow::Result<u64> {
        let findings = self
            .task
            .await
            .map_err(|e| anyhow::anyhow!("the stream reader failed: {e}"))??;
        found.events += findings.events;
        found.gaps.extend(findings.gaps);
        found.unknown.extend(findings.unknown);
        Ok(findings.events)
    }
}

/// One output of a reader: its projections' bits, its batch being filled, and the events it
/// was handed.
struct Output {
    bits: std::ops::Range<u32>,
    sender: tokio::sync::mpsc::Sender<(Vec<StreamMessage>, u64)>,
    batch: Vec<StreamMessage>,
    events: u64,
}

impl Output {
    fn new(
        bits: std::ops::Range<u32>,
        sender: tokio::sync::mpsc::Sender<(Vec<StreamMessage>, u64)>,
    ) -> Self {
        Self {
            bits,
            sender,
            batch: Vec::with_capacity(REBUILD_BATCH),
            events: 0,
        }
    }

    /// `mask`'s bits of this output's projections, shifted to bit 0.
    fn own(&self, mask: u64) -> u64 {
        let width = self.bits.end.saturating_sub(self.bits.start);
        let shifted = mask.checked_shr(self.bits.start).unwrap_or(0);
        if width >= 64 {
            shifted
        } else {
            shifted & ((1 << width) - 1)
        }
    }

    /// Sends the batch being filled; `false` when its applier has stopped.
    async fn send(&mut self) -> bool {
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(REBUILD_BATCH));
        self.sender.send((full, self.events)).await.is_ok()
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

/// The reader task of [`RangeReader`]: hands each event to its output in batches.
async fn read_into(
    store: EventStore,
    from: u64,
    to: u64,
    selection: Selection,
    mut outputs: Vec<Output>,
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
        let projections = selection.mask(&message.subject);
        // Every event is handed on in a full read (to the first output); otherwise only the
        // events of a projection, to the output that applies it.
        let output = if selection.all {
            outputs.first_mut()
        } else {
            outputs.iter_mut().find(|o| o.own(projections) != 0)
        };
        let Some(output) = output else {
            continue;
        };
        findings.events += 1;
        let event = match cloudevents::decode(message.headers.as_ref(), &message.payload, sequence)
        {
            Ok(envelope) => Some(envelope),
            Err(e) => {
                findings.unknown.push((sequence, e.to_string()));
                None
            }
        };
        output.events += 1;
        output.batch.push(StreamMessage {
            projections: output.own(projections),
            sequence,
            event,
        });
        if output.batch.len() >= REBUILD_BATCH && !output.send().await {
            // An applier stopped (its error is reported there).
            return Ok(findings);
        }
    }
    for output in &mut outputs {
        if !output.batch.is_empty() {
            output.send().await;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_gets_its_own_projections_bits_from_bit_0() {
        let (sender, _batches) = tokio::sync::mpsc::channel(1);
        let second = Output::new(3..5, sender.clone());
        assert_eq!(second.own(0b01000), 0b01);
        assert_eq!(second.own(0b11111), 0b11);
        assert_eq!(second.own(0b00111), 0, "the other output's projections");
        let only = Output::new(0..64, sender);
        assert_eq!(only.own(u64::MAX), u64::MAX);
        assert_eq!(only.own(0b101), 0b101);
    }

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
