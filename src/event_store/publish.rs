//! Publishing to the stream: one event, a pipelined list, an atomic batch, each retried with the
//! same ids (`Nats-Msg-Id`) after a transient failure; and how JetStream's refusals map to
//! [`EventStoreError`].

use async_nats::jetstream::{self, context::PublishErrorKind};
use uuid::Uuid;

use super::{
    EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT, EventStore, EventStoreError, FIRST_PUBLISH_BACKOFF,
    MAX_PUBLISH_BACKOFF, NewEvent, Published,
};
use crate::events::cloudevents;

impl EventStore {
    /// Publishes one event and waits for JetStream's acknowledgement.
    pub async fn publish(&self, new: NewEvent) -> Result<Published, EventStoreError> {
        let mut published = self.publish_all(vec![new]).await?;
        Ok(published.pop().expect("one event, one acknowledgement"))
    }

    /// Publishes events in order without waiting between them, then waits for every
    /// acknowledgement (pipelined: one round trip for the lot instead of one per event). Fails at
    /// the first event that was not stored; the ones before it are stored.
    ///
    /// A transient failure (no stream leader during an election, an ack timeout, a reconnect) is
    /// retried with the same ids (`Nats-Msg-Id`) for the publish retry window
    /// ([`DEFAULT_PUBLISH_RETRY_WINDOW`]): JetStream drops the copies of events an earlier try had
    /// stored, and acknowledges them with their original sequence. A refused guard
    /// ([`EventStoreError::Conflict`]) is never retried here.
    pub async fn publish_all(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Published>, EventStoreError> {
        self.retrying(|| self.try_publish_all(&events)).await
    }

    /// Publishes `events` as one JetStream atomic batch (nats-server 2.12+, `allow_atomic` in
    /// `nats/stream.json`): all are stored, with consecutive sequences, or none. The first event's
    /// guard (its [`NewEvent::expected`]) guards the whole batch; the others must carry none.
    /// Returns one acknowledgement per event, in order.
    ///
    /// Errors: [`EventStoreError::Conflict`] when the guard refused the batch (nothing stored);
    /// [`EventStoreError::NotAtomic`] when the stream cannot take it as one (an event's id is
    /// stored already, e.g. a request retried with its idempotency key; atomic batches off):
    /// publish the events one by one, which acknowledges a stored one as a duplicate with its
    /// original sequence. Transient failures are retried, as [`publish_all`](Self::publish_all)
    /// does, under a new batch id with the same event ids.
    pub async fn publish_atomic(
        &self,
        events: &[NewEvent],
    ) -> Result<Vec<Published>, EventStoreError> {
        if events.len() <= 1 {
            return self.publish_all(events.to_vec()).await;
        }
        self.retrying(|| self.try_publish_atomic(events)).await
    }

    /// Runs a publish `attempt` until it succeeds, fails for a reason other than a transient one,
    /// or the publish retry window ([`DEFAULT_PUBLISH_RETRY_WINDOW`]) is spent, pausing 20 ms,
    /// then twice as long each time up to 400 ms; records the publish metrics.
    async fn retrying<F, Fut>(&self, mut attempt: F) -> Result<Vec<Published>, EventStoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Vec<Published>, EventStoreError>>,
    {
        let started = std::time::Instant::now();
        let mut backoff = FIRST_PUBLISH_BACKOFF;
        let published = loop {
            match attempt().await {
                Ok(published) => break published,
                Err(e)
                    if e.is_transient()
                        && started.elapsed() + backoff < self.publish_retry_window =>
                {
                    metrics::counter!("onair_event_publish_retries_total").increment(1);
                    tracing::debug!(error = %e, "publish failed; retrying with the same ids");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_PUBLISH_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        };
        metrics::histogram!("onair_event_publish_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("onair_events_published_total").increment(published.len() as u64);
        Ok(published)
    }

    /// One try of [`publish_atomic`](Self::publish_atomic): every event but the last is sent
    /// without a reply subject; the last commits the batch and carries the one acknowledgement
    /// (the last sequence and the batch's count).
    async fn try_publish_atomic(
        &self,
        events: &[NewEvent],
    ) -> Result<Vec<Published>, EventStoreError> {
        let batch_id = Uuid::now_v7().simple().to_string();
        let count = events.len();
        let expected = events[0]
            .expected
            .as_ref()
            .map(|e| e.last_sequence)
            .unwrap_or(0);
        let unavailable = |e: &dyn std::fmt::Display| EventStoreError::Unavailable(e.to_string());
        for (index, new) in events.iter().enumerate() {
            let mut headers =
                cloudevents::headers(new.id, new.occurred_at, &self.source, &new.event);
            if let Some(guard) = &new.expected {
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    guard.last_sequence.to_string().as_str(),
                );
                headers.insert(
                    EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT,
                    guard.subject_filter.as_str(),
                );
            }
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (index + 1).to_string().as_str());
            let payload: bytes::Bytes = new.event.to_json().into();
            if index + 1 < count {
                self.client
                    .publish_with_headers(new.event.subject(), headers, payload)
                    .await
                    .map_err(|e| unavailable(&e))?;
                continue;
            }
            headers.insert("Nats-Batch-Commit", "1");
            let message = jetstream::message::PublishMessage::build()
                .payload(payload)
                .headers(headers);
            let ack = self
                .jetstream
                .send_publish(new.event.subject(), message)
                .await
                .map_err(|e| publish_error(&e, expected))?
                .await
                .map_err(|e| publish_error(&e, expected))?;
            let first = ack.sequence + 1 - count as u64;
            return Ok(events
                .iter()
                .enumerate()
                .map(|(i, e)| Published {
                    id: e.id,
                    sequence: first + i as u64,
                    duplicate: false,
                })
                .collect());
        }
        unreachable!("a batch of two or more events ends with its commit")
    }

    /// One try of [`publish_all`](Self::publish_all).
    async fn try_publish_all(
        &self,
        events: &[NewEvent],
    ) -> Result<Vec<Published>, EventStoreError> {
        let mut pending = Vec::with_capacity(events.len());
        for new in events {
            let expected = new.expected.as_ref().map(|e| e.last_sequence).unwrap_or(0);
            let ack = self
                .jetstream
                .send_publish(new.event.subject(), self.message(new))
                .await
                .map_err(|e| publish_error(&e, expected))?;
            pending.push((new.id, expected, ack));
        }
        let mut published = Vec::with_capacity(pending.len());
        for (id, expected, ack) in pending {
            let ack = ack.await.map_err(|e| publish_error(&e, expected))?;
            published.push(Published {
                id,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            });
        }
        Ok(published)
    }

    /// The JetStream message of `new`: CloudEvents headers, `Nats-Msg-Id`, the guard's headers.
    fn message(&self, new: &NewEvent) -> jetstream::message::PublishMessage {
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
        message
    }

    /// Publishes one unguarded event without waiting for its acknowledgement: returns once the
    /// message is handed to the connection (so events sent one after another are stored in that
    /// order), with a future of JetStream's acknowledgement. A caller answers only after that
    /// future resolves; meanwhile it may send more (pipelining, as [`publish_all`](Self::publish_all)
    /// does within one call). When the acknowledgement fails for a transient reason, the future
    /// publishes the event again with the same id, as [`publish_all`](Self::publish_all) does.
    pub async fn publish_pipelined(
        &self,
        new: NewEvent,
    ) -> Result<
        impl std::future::Future<Output = Result<Published, EventStoreError>> + Send + 'static,
        EventStoreError,
    > {
        let started = std::time::Instant::now();
        let ack = self
            .jetstream
            .send_publish(new.event.subject(), self.message(&new))
            .await
            .map_err(|e| publish_error(&e, 0));
        let store = self.clone();
        Ok(async move {
            let first = match ack {
                Ok(ack) => ack.await.map_err(|e| publish_error(&e, 0)),
                Err(e) => Err(e),
            };
            let published = match first {
                Ok(ack) => Published {
                    id: new.id,
                    sequence: ack.sequence,
                    duplicate: ack.duplicate,
                },
                Err(e) if e.is_transient() && !store.publish_retry_window.is_zero() => {
                    metrics::counter!("onair_event_publish_retries_total").increment(1);
                    let window = store.publish_retry_window.saturating_sub(started.elapsed());
                    let retry = store.clone().with_publish_retry_window(window);
                    return retry.publish(new).await;
                }
                Err(e) => return Err(e),
            };
            metrics::histogram!("onair_event_publish_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("onair_events_published_total").increment(1);
            Ok(published)
        })
    }
}

/// Maps a JetStream publish failure: a refused sequence guard is a [`EventStoreError::Conflict`],
/// whichever of its two error codes the server answers (10071 `wrong last sequence: N`, or 10164
/// `wrong last sequence`, which a clustered stream answers when the guard covers a subject
/// filter); an atomic batch the stream cannot take as one (10201: it holds an id stored already;
/// 10174: atomic batches are off) is [`EventStoreError::NotAtomic`].
fn publish_error(
    error: &async_nats::jetstream::context::PublishError,
    expected: u64,
) -> EventStoreError {
    use async_nats::jetstream::ErrorCode;
    let code = jetstream_error_code(error);
    if error.kind() == PublishErrorKind::WrongLastSequence
        || code == Some(ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT)
    {
        return EventStoreError::Conflict { expected };
    }
    if matches!(
        code,
        Some(
            ErrorCode::ATOMIC_PUBLISH_CONTAINS_DUPLICATE_MESSAGE
                | ErrorCode::ATOMIC_PUBLISH_DISABLED
                | ErrorCode::ATOMIC_PUBLISH_UNSUPPORTED_HEADER
                | ErrorCode::ATOMIC_PUBLISH_TOO_LARGE_BATCH
        )
    ) {
        return EventStoreError::NotAtomic(error.to_string());
    }
    if error.kind() == PublishErrorKind::MaxPayloadExceeded {
        return EventStoreError::Rejected(error.to_string());
    }
    EventStoreError::Unavailable(error.to_string())
}

/// The JetStream error code of a publish failure, when the server answered one (async-nats
/// reports most as `Other`, with the server's error as the source).
fn jetstream_error_code(
    error: &async_nats::jetstream::context::PublishError,
) -> Option<async_nats::jetstream::ErrorCode> {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
        .map(|e| e.error_code())
}
