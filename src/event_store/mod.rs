//! The event store: NATS JetStream stream `ONAIR` (subjects `onair.>`).
//!
//! [`EventStore::publish`] answers only after JetStream has acknowledged the message, so an event a
//! caller was told about is stored (DESIGN.md §2). The stream's settings live in `nats/stream.json`
//! and are applied idempotently at start-up.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::{Event, cloudevents};

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
    /// NATS did not store the event (timeout, no stream, connection lost).
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

fn publish_error(kind: PublishErrorKind, text: String, expected: u64) -> EventStoreError {
    match kind {
        PublishErrorKind::WrongLastSequence => EventStoreError::Conflict { expected },
        _ => EventStoreError::Unavailable(text),
    }
}

/// A handle on the stream; cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    source: String,
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
        })
    }

    /// The core NATS connection: connection state for `/health`, chat fan-out.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (5 s request timeout).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// Creates the stream or updates it to `nats/stream.json`; `replicas` overrides the file's
    /// `num_replicas` (1 on a single node, 3 in a cluster).
    ///
    /// In a cluster the request may time out while the JetStream meta group elects a leader or
    /// another instance creates the same stream: it is retried for up to 60 s.
    pub async fn ensure_stream(&self, replicas: usize) -> anyhow::Result<stream::Stream> {
        let mut config: stream::Config = serde_json::from_str(STREAM_CONFIG_JSON)?;
        config.num_replicas = replicas;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let attempt = async {
                self.jetstream
                    .create_or_update_stream(config.clone())
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("cannot create or update stream {STREAM_NAME}: {e}")
                    })?;
                Ok::<_, anyhow::Error>(self.jetstream.get_stream(STREAM_NAME).await?)
            };
            match attempt.await {
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

    /// Publishes one event and waits for JetStream's acknowledgement.
    pub async fn publish(&self, new: NewEvent) -> Result<Published, EventStoreError> {
        let mut published = self.publish_all(vec![new]).await?;
        Ok(published.pop().expect("one event, one acknowledgement"))
    }

    /// Publishes events in order without waiting between them, then waits for every
    /// acknowledgement (pipelined: one round trip for the lot instead of one per event). Fails at
    /// the first event that was not stored; the ones before it are stored.
    pub async fn publish_all(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Published>, EventStoreError> {
        let started = std::time::Instant::now();
        let mut pending = Vec::with_capacity(events.len());
        for new in events {
            let headers = cloudevents::headers(new.id, new.occurred_at, &self.source, &new.event);
            let mut message = jetstream::message::PublishMessage::build()
                .payload(new.event.to_json().into())
                .headers(headers);
            if let Some(expected) = &new.expected {
                message = message
                    .expected_last_subject_sequence(expected.last_sequence)
                    .header(
                        EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT,
                        expected.subject_filter.as_str(),
                    );
            }
            let expected = new.expected.as_ref().map(|e| e.last_sequence).unwrap_or(0);
            let ack = self
                .jetstream
                .send_publish(new.event.subject(), message)
                .await
                .map_err(|e| publish_error(e.kind(), e.to_string(), expected))?;
            pending.push((new.id, expected, ack));
        }
        let mut published = Vec::with_capacity(pending.len());
        for (id, expected, ack) in pending {
            let ack = ack
                .await
                .map_err(|e| publish_error(e.kind(), e.to_string(), expected))?;
            published.push(Published {
                id,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            });
        }
        metrics::histogram!("onair_event_publish_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("onair_events_published_total").increment(published.len() as u64);
        Ok(published)
    }

    /// Publishes one unguarded event without waiting for its acknowledgement: returns once the
    /// message is handed to the connection (so events sent one after another are stored in that
    /// order), with a future of JetStream's acknowledgement. A caller answers only after that
    /// future resolves; meanwhile it may send more (pipelining, as [`publish_all`](Self::publish_all)
    /// does within one call).
    pub async fn publish_pipelined(
        &self,
        new: NewEvent,
    ) -> Result<
        impl std::future::Future<Output = Result<Published, EventStoreError>> + Send + 'static,
        EventStoreError,
    > {
        let started = std::time::Instant::now();
        let headers = cloudevents::headers(new.id, new.occurred_at, &self.source, &new.event);
        let message = jetstream::message::PublishMessage::build()
            .payload(new.event.to_json().into())
            .headers(headers);
        let ack = self
            .jetstream
            .send_publish(new.event.subject(), message)
            .await
            .map_err(|e| publish_error(e.kind(), e.to_string(), 0))?;
        let id = new.id;
        Ok(async move {
            let ack = ack
                .await
                .map_err(|e| publish_error(e.kind(), e.to_string(), 0))?;
            metrics::histogram!("onair_event_publish_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("onair_events_published_total").increment(1);
            Ok(Published {
                id,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })
        })
    }
}
