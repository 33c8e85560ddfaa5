//! Publishing to the stream: one event, a pipelined list, a guarded chain, each retried with the
//! same ids (`Nats-Msg-Id`) after a transient failure; and how JetStream's refusals map to
//! [`EventStoreError`].

use async_nats::{HeaderMap, jetstream};

use super::refusals::publish_error;
use super::{
    EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT, EventStore, EventStoreError, FIRST_PUBLISH_BACKOFF,
    MAX_PUBLISH_BACKOFF, NewEvent, Published,
};
use crate::events::cloudevents;

impl EventStore {
    /// Publishes one event and waits for JetStream's acknowledgement.
    pub async fn publish(&self, new: NewEvent) -> Result<Published, EventStoreError> {
        self.publish_ref(&new).await
    }

    /// Publishes one event, as [`publish`](Self::publish), leaving it with the caller (who may
    /// apply it once stored).
    pub async fn publish_ref(&self, new: &NewEvent) -> Result<Published, EventStoreError> {
        let mut published = self
            .retrying(|| self.try_publish_all(std::slice::from_ref(new)))
            .await?;
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

    /// Runs a publish `attempt` until it succeeds, fails for a reason other than a transient one,
    /// or the publish retry window ([`DEFAULT_PUBLISH_RETRY_WINDOW`]) is spent, pausing 20 ms,
    /// then twice as long each time up to 400 ms; records the publish metrics.
    pub(super) async fn retrying<T: Stored, F, Fut>(
        &self,
        mut attempt: F,
    ) -> Result<T, EventStoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, EventStoreError>>,
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
        metrics::counter!("onair_events_published_total").increment(published.events() as u64);
        Ok(published)
    }

    /// Publishes `events` as a chain, one after the other: the first is guarded as given (its
    /// [`NewEvent::expected`]: the stream sequence of the last event on the guarded subjects),
    /// and every later one by the sequence the one before it got, on the same subjects. A
    /// stored prefix is therefore exactly as decided: no other event of the guarded subjects came
    /// between the events of the chain. Returns one result per event, in order: a stored prefix,
    /// then [`EventStoreError::ChainBroken`] for each event after a break (another writer's event
    /// came in between, nothing wrong stored: decide those again), or the first event's own error
    /// ([`EventStoreError::Conflict`] when its guard refused it).
    ///
    /// An event whose id is stored already is acknowledged as a duplicate with its original
    /// sequence (a retried idempotency key), and breaks the chain after it. Each publish retries
    /// transient failures as [`publish_all`](Self::publish_all) does; no event is stored twice.
    ///
    /// On a replicated stream that allows atomic batches (`allow_atomic`, nats-server 2.12+) a
    /// chain of two or more events is stored as one atomic batch (`event_store/atomic_batch.rs`):
    /// all or nothing, one quorum round trip for the lot. A batch refused by its guard answers as
    /// the chain would (the first event's [`EventStoreError::Conflict`], then
    /// [`EventStoreError::ChainBroken`]); a batch holding an id stored already (a retried
    /// idempotency key) is published event by event instead. A transient failure is retried as a
    /// new batch with the same ids.
    ///
    /// (`Nats-Expected-Last-Msg-Id` would let the chain be pipelined, but two clients pipelining
    /// such chains into a clustered stream made nats-server 2.15 fail the stream for good with
    /// "last msgid mismatch ... critical write error"; on one node an atomic batch is staged in a
    /// file store of its own, about 17 ms each here, so there the chain is published event by
    /// event.)
    pub async fn publish_chain(
        &self,
        events: &[NewEvent],
    ) -> Vec<Result<Published, EventStoreError>> {
        if events.len() > 1
            && events.len() <= super::atomic_batch::MAX_ATOMIC_BATCH
            && self
                .atomic_batches
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            match self.retrying(|| self.try_publish_atomic(events)).await {
                Ok(Some(published)) => {
                    metrics::counter!("onair_event_atomic_batches_total").increment(1);
                    return published.into_iter().map(Ok).collect();
                }
                // Not taken as a batch: published event by event below.
                Ok(None) => {}
                Err(e) => {
                    let mut results = vec![Err(e)];
                    results.resize_with(events.len(), || Err(EventStoreError::ChainBroken));
                    return results;
                }
            }
        }
        self.publish_chain_one_by_one(events).await
    }

    /// [`publish_chain`](Self::publish_chain), one guarded publish after the other.
    async fn publish_chain_one_by_one(
        &self,
        events: &[NewEvent],
    ) -> Vec<Result<Published, EventStoreError>> {
        let mut results: Vec<Result<Published, EventStoreError>> = Vec::with_capacity(events.len());
        let filter = events
            .first()
            .and_then(|e| e.expected.as_ref())
            .map(|e| e.subject_filter.clone());
        let mut previous: Option<Published> = None;
        for (index, new) in events.iter().enumerate() {
            let mut new = new.clone();
            if let (Some(filter), Some(before)) = (&filter, previous) {
                new = new.expecting(filter.clone(), before.sequence);
            }
            match self.publish(new).await {
                Ok(published) => {
                    results.push(Ok(published));
                    if published.duplicate {
                        break;
                    }
                    previous = Some(published);
                }
                Err(EventStoreError::Conflict { .. }) if index > 0 => break,
                Err(e) => {
                    results.push(Err(e));
                    break;
                }
            }
        }
        while results.len() < events.len() {
            results.push(Err(EventStoreError::ChainBroken));
        }
        results
    }

    /// One try of [`publish_all`](Self::publish_all).
    async fn try_publish_all(
        &self,
        events: &[NewEvent],
    ) -> Result<Vec<Published>, EventStoreError> {
        let mut pending = Vec::with_capacity(events.len());
        for new in events {
            let expected = new.expected_last_sequence();
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

    /// The JetStream message of `new`: its payload and [`headers`](Self::headers).
    fn message(&self, new: &NewEvent) -> jetstream::message::PublishMessage {
        jetstream::message::PublishMessage::build()
            .payload(new.event.to_json().into())
            .headers(self.headers(new))
    }

    /// The headers of `new`: CloudEvents, `Nats-Msg-Id`, and the guard's when it has one.
    pub(super) fn headers(&self, new: &NewEvent) -> HeaderMap {
        let mut headers = cloudevents::headers(new.id, new.occurred_at, &self.source, &new.event);
        if let Some(expected) = &new.expected {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                expected.last_sequence.to_string().as_str(),
            );
            headers.insert(
                EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT,
                expected.subject_filter.as_str(),
            );
        }
        headers
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

/// What a publish stored, counted for `onair_events_published_total`.
pub(super) trait Stored {
    /// How many events were stored.
    fn events(&self) -> usize;
}

impl Stored for Vec<Published> {
    fn events(&self) -> usize {
        self.len()
    }
}

/// An atomic batch's outcome: `None` when it was not taken as a batch (see
/// [`EventStore::publish_chain`]).
impl Stored for Option<Vec<Published>> {
    fn events(&self) -> usize {
        self.as_ref().map_or(0, Vec::len)
    }
}
