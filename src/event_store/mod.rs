//! The event store: NATS JetStream stream `ONAIR` (subjects `onair.>`).
//!
//! [`EventStore::publish`] answers only after JetStream has acknowledged the message, so an event a
//! caller was told about is stored (docs/design.md#flow-of-data). The stream's settings live in
//! `nats/stream.json` and are applied idempotently at start-up.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::{Event, cloudevents};

mod atomic_batch;
pub mod followers;
pub mod outbox;
mod publish;
mod refusals;

/// The stream's settings as committed in `nats/stream.json`.
pub const STREAM_CONFIG_JSON: &str = include_str!("../../nats/stream.json");

/// The stream's name.
pub const STREAM_NAME: &str = "ONAIR";

/// Header naming the subject filter that `Nats-Expected-Last-Subject-Sequence` checks (nats-server
/// 2.11+); lets one guard cover every subject of an aggregate.
const EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: &str = "Nats-Expected-Last-Subject-Sequence-Subject";

/// An event ready to be published.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// `ce-id` and `Nats-Msg-Id`: a retry with the same id is dropped by JetStream's duplicate window.
    pub id: Uuid,
    /// When the fact happened; sent as `ce-time` (RFC 3339 UTC, milliseconds).
    pub occurred_at: OffsetDateTime,
    /// The fact; it gives the subject, `ce-type`, `ce-subject` and the JSON payload.
    pub event: Event,
    /// Optimistic concurrency guard: the stream sequence of the last message expected on
    /// `subject_filter` (0 = none yet). Publishing fails with [`EventStoreError::Conflict`] otherwise.
    pub expected: Option<ExpectedSequence>,
}

/// See [`NewEvent::expected`].
#[derive(Clone, Debug)]
pub struct ExpectedSequence {
    /// Subjects the guard covers, e.g. [`crate::events::pool_subject_filter`]; sent as
    /// `Nats-Expected-Last-Subject-Sequence-Subject` (nats-server 2.11+).
    pub subject_filter: String,
    /// Stream sequence of the last message expected on `subject_filter`; 0 = none yet.
    pub last_sequence: u64,
}

impl NewEvent {
    /// A new event with a fresh UUID v7 id.
    pub fn new(occurred_at: OffsetDateTime, event: Event) -> Self {
        Self {
            id: Uuid::now_v7(),
            occurred_at,
            event,
            expected: None,
        }
    }

    /// Replaces the id with a deterministic one (e.g. from an `Idempotency-Key`), so that a
    /// retry within JetStream's duplicate window (120 s, `nats/stream.json`) is dropped.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// The guard's expected last sequence; 0 when the event is not guarded.
    pub fn expected_last_sequence(&self) -> u64 {
        self.expected.as_ref().map_or(0, |e| e.last_sequence)
    }

    /// Guards the publish: it fails with [`EventStoreError::Conflict`] unless the last message on
    /// `subject_filter` has stream sequence `last_sequence` (0 = none yet).
    pub fn expecting(mut self, subject_filter: String, last_sequence: u64) -> Self {
        self.expected = Some(ExpectedSequence {
            subject_filter,
            last_sequence,
        });
        self
    }
}

/// The acknowledgement of a stored event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The event's id (`ce-id`, `Nats-Msg-Id`).
    pub id: Uuid,
    /// Stream sequence (the original one when `duplicate`).
    pub sequence: u64,
    /// JetStream had already stored an event with this id.
    pub duplicate: bool,
}

/// Why an event was not published or read.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// Another event reached the guarded subjects first; catch up and decide again.
    #[error("another event was stored first (expected last sequence {expected})")]
    Conflict {
        /// The `last_sequence` the publisher expected.
        expected: u64,
    },
    /// NATS did not store the event (timeout, no stream leader, connection lost), even after
    /// retrying with the same `Nats-Msg-Id` for the publish retry window.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// An event of a chain ([`EventStore::publish_chain`]) was not stored because another
    /// writer's event came in between: nothing wrong was stored; decide it again.
    #[error("another event came between the events of a chain; nothing was stored")]
    ChainBroken,
    /// JetStream refused the event for good (too large for `max_payload`); retrying cannot help.
    #[error("the event store refused the event: {0}")]
    Rejected(String),
}

impl EventStoreError {
    /// Whether retrying the same publish (same `Nats-Msg-Id`) may succeed: true for
    /// [`EventStoreError::Unavailable`] (an election, a timeout, a reconnect).
    pub fn is_transient(&self) -> bool {
        matches!(self, EventStoreError::Unavailable(_))
    }
}

/// How long a publish that fails for a transient reason (no stream leader during an election, an
/// ack timeout, a reconnect) is retried with the same `Nats-Msg-Id` before the caller is told
/// [`EventStoreError::Unavailable`]: 8 s by default (`ONAIR_PUBLISH_RETRY_MS`), under the 9 s
/// request deadline, so a NATS failover shows as a slower answer rather than a 503.
pub const DEFAULT_PUBLISH_RETRY_WINDOW: Duration = Duration::from_secs(8);

/// The first pause between two tries of a publish; it doubles up to [`MAX_PUBLISH_BACKOFF`].
const FIRST_PUBLISH_BACKOFF: Duration = Duration::from_millis(20);
/// The longest pause between two tries of a publish.
const MAX_PUBLISH_BACKOFF: Duration = Duration::from_millis(400);

/// Whether `wanted` (the file's settings) sets any field to another value than `current` has:
/// only the fields `nats/stream.json` declares (plus `num_replicas`) are compared, so defaults the
/// server fills in do not count as a difference.
fn declared_settings_differ(
    wanted: &stream::Config,
    current: &stream::Config,
) -> anyhow::Result<bool> {
    let declared: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(STREAM_CONFIG_JSON)?;
    let (wanted, current) = (
        serde_json::to_value(wanted)?,
        serde_json::to_value(current)?,
    );
    Ok(declared
        .keys()
        .map(String::as_str)
        .chain(["num_replicas"])
        .any(|key| wanted.get(key) != current.get(key)))
}

/// A handle on the stream; cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    source: String,
    /// The servers it was connected to, as given (for [`Self::connect_again`]).
    url: String,
    /// See [`DEFAULT_PUBLISH_RETRY_WINDOW`].
    publish_retry_window: Duration,
    /// The followers of this process's stream, checked by [`followers::watch`].
    followers: followers::Followers,
    /// Whether chains are stored as atomic batches: the stream is replicated and allows them
    /// (set when the stream is opened, cleared if the server refuses a batch).
    atomic_batches: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EventStore {
    /// Connects to NATS; `source` becomes every event's `ce-source`. `url` may list several
    /// servers of one cluster, comma-separated (`nats://a:4222,nats://b:4222`): the client picks
    /// one and moves to another when it fails (it also learns the cluster's other servers).
    pub async fn connect(url: &str, source: &str) -> anyhow::Result<Self> {
        let servers: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let client = async_nats::ConnectOptions::new()
            .name("onair")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            // A server that stops answering (frozen, cut off) is left after a few missed pings
            // (async-nats gives up after 2 unanswered) for another server of the cluster, instead
            // of after the default 2 minutes.
            .ping_interval(Duration::from_secs(3))
            .connect(servers)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {url}: {e}"))?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(Duration::from_secs(5));
        Ok(Self {
            client,
            jetstream,
            source: source.to_owned(),
            url: url.to_owned(),
            publish_retry_window: DEFAULT_PUBLISH_RETRY_WINDOW,
            followers: followers::Followers::default(),
            atomic_batches: Default::default(),
        })
    }

    /// Another connection to the same servers with the same source: a reader of its own, whose
    /// messages are parsed by its own connection task (a replay reads on one per worker).
    pub async fn connect_again(&self) -> anyhow::Result<Self> {
        Ok(Self::connect(&self.url, &self.source)
            .await?
            .with_publish_retry_window(self.publish_retry_window))
    }

    /// Every event's `ce-source`, e.g. `/onair/stage-api`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The followers of the stream in this process (`followers` of `/health`).
    pub fn followers(&self) -> &followers::Followers {
        &self.followers
    }

    /// Sets how long a publish that fails for a transient reason is retried with the same
    /// `Nats-Msg-Id` ([`DEFAULT_PUBLISH_RETRY_WINDOW`]; zero: not retried).
    pub fn with_publish_retry_window(mut self, window: Duration) -> Self {
        self.publish_retry_window = window;
        self
    }

    /// The core NATS connection: connection state for `/health`, chat fan-out.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (5 s request timeout).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// `onair serve` only: creates the stream from `nats/stream.json`, or brings an existing
    /// stream's settings back to the file's, with `replicas` (`ONAIR_STREAM_REPLICAS`: 1 on a
    /// single node, 3 in a cluster) as its `num_replicas`. It never lowers the replicas of a
    /// running stream: an instance configured with fewer keeps the stream's count and logs a
    /// warning (lowering replication is an operator's decision, made with `nats stream edit`).
    /// Settings that already match are left alone (no update is sent).
    ///
    /// In a cluster the request may time out while the JetStream meta group elects a leader or
    /// another instance creates the same stream: it is retried for up to 60 s.
    pub async fn apply_stream_config(&self, replicas: usize) -> anyhow::Result<stream::Stream> {
        let file: stream::Config = serde_json::from_str(STREAM_CONFIG_JSON)?;
        self.with_stream_retries(|| async {
            let mut config = file.clone();
            config.num_replicas = replicas;
            match self.jetstream.get_stream(STREAM_NAME).await {
                Ok(mut existing) => {
                    let current = existing.info().await?.config.clone();
                    if current.num_replicas > replicas {
                        tracing::warn!(
                            stream_replicas = current.num_replicas,
                            configured = replicas,
                            "ONAIR_STREAM_REPLICAS is lower than the stream's replicas; the stream keeps its replicas"
                        );
                        config.num_replicas = current.num_replicas;
                    }
                    if declared_settings_differ(&config, &current)? {
                        tracing::info!(replicas = config.num_replicas, "updating the stream's settings to nats/stream.json");
                        self.jetstream.update_stream(config).await.map_err(|e| {
                            anyhow::anyhow!("cannot update stream {STREAM_NAME}: {e}")
                        })?;
                    }
                }
                Err(_) => {
                    self.jetstream
                        .get_or_create_stream(config)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot create stream {STREAM_NAME}: {e}"))?;
                }
            }
            Ok(self.jetstream.get_stream(STREAM_NAME).await?)
        })
        .await
        .inspect(|stream| self.note_stream(stream))
    }

    /// Notes what the opened stream allows: chains are stored as atomic batches when it is
    /// replicated and has `allow_atomic` (see [`EventStore::publish_chain`]).
    fn note_stream(&self, stream: &stream::Stream) {
        let config = &stream.cached_info().config;
        self.atomic_batches.store(
            config.allow_atomic_publish && config.num_replicas > 1,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Every other command (`onair gift set`, `member create`, `events import`, ...): the stream
    /// as it is. It is created (from `nats/stream.json`, with `replicas`) only when it does not
    /// exist yet; an existing stream's settings are never changed.
    pub async fn open_stream(&self, replicas: usize) -> anyhow::Result<stream::Stream> {
        let mut config: stream::Config = serde_json::from_str(STREAM_CONFIG_JSON)?;
        config.num_replicas = replicas;
        self.with_stream_retries(|| async {
            self.jetstream
                .get_or_create_stream(config.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot open stream {STREAM_NAME}: {e}"))
        })
        .await
        .inspect(|stream| self.note_stream(stream))
    }

    /// Runs `attempt` until it succeeds, retrying for up to 60 s (a JetStream meta leader election).
    async fn with_stream_retries<F, Fut>(&self, mut attempt: F) -> anyhow::Result<stream::Stream>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<stream::Stream>>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match attempt().await {
                Ok(stream) => return Ok(stream),
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "stream not ready; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The `ONAIR` stream; fails if NATS does not answer or the stream does not exist.
    pub async fn stream(&self) -> anyhow::Result<stream::Stream> {
        Ok(self.jetstream.get_stream(STREAM_NAME).await?)
    }

    /// Stores events exactly as given (id, time, source), pipelined: `onair events import`.
    /// Returns how many were stored (duplicates of ids already stored are not counted).
    pub async fn import_batch(
        &self,
        events: Vec<(Uuid, OffsetDateTime, String, Event)>,
    ) -> anyhow::Result<u64> {
        let mut acks = Vec::with_capacity(events.len());
        for (id, time, source, event) in events {
            let headers = cloudevents::headers(id, time, &source, &event);
            let message = jetstream::message::PublishMessage::build()
                .payload(event.to_json().into())
                .headers(headers);
            acks.push(
                self.jetstream
                    .send_publish(event.subject(), message)
                    .await
                    .map_err(|e| anyhow::anyhow!("import failed: {e}"))?,
            );
        }
        let mut stored = 0;
        for ack in acks {
            let ack = ack
                .await
                .map_err(|e| anyhow::anyhow!("import failed: {e}"))?;
            if !ack.duplicate {
                stored += 1;
            }
        }
        Ok(stored)
    }

    /// The last event stored on one literal `subject`, if any: the current state of an aggregate
    /// whose state is its last event (a room's broadcast, a follow relation), read from the stream
    /// itself rather than a read model that may lag.
    pub async fn last_on_subject(
        &self,
        subject: &str,
    ) -> Result<Option<crate::events::EventEnvelope>, EventStoreError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let stream = self
            .stream()
            .await
            .map_err(|e| EventStoreError::Unavailable(e.to_string()))?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => {
                cloudevents::decode(Some(&message.headers), &message.payload, message.sequence)
                    .map(Some)
                    .map_err(|e| EventStoreError::Unavailable(format!("unreadable event: {e}")))
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(EventStoreError::Unavailable(e.to_string())),
        }
    }

    /// The stream sequence of the newest event on any of `filters` (wildcards allowed; 0 when
    /// there is none): what a follower of those subjects must have applied to be caught up.
    pub async fn last_sequence_on(&self, filters: &[String]) -> Result<u64, EventStoreError> {
        let stream = self
            .stream()
            .await
            .map_err(|e| EventStoreError::Unavailable(e.to_string()))?;
        followers::newest_on(&stream, filters)
            .await
            .map_err(|e| EventStoreError::Unavailable(e.to_string()))
    }

    /// The event stored at `sequence`, if any (a deleted or unknown sequence gives `None`).
    pub async fn get(
        &self,
        sequence: u64,
    ) -> Result<Option<crate::events::EventEnvelope>, EventStoreError> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        let stream = self
            .stream()
            .await
            .map_err(|e| EventStoreError::Unavailable(e.to_string()))?;
        match stream.get_raw_message(sequence).await {
            Ok(message) => cloudevents::decode(Some(&message.headers), &message.payload, sequence)
                .map(Some)
                .map_err(|e| EventStoreError::Unavailable(format!("unreadable event: {e}"))),
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(EventStoreError::Unavailable(e.to_string())),
        }
    }
}
