//! A guarded chain stored as one JetStream atomic batch (nats-server 2.12+, the stream's
//! `allow_atomic`): every message carries `Nats-Batch-Id` and `Nats-Batch-Sequence`, the last one
//! `Nats-Batch-Commit: 1`, and the stream leader checks the first message's guard and proposes the
//! whole batch at once. On a replicated stream that is one quorum round trip (and one fsync with
//! `sync_interval: always`) for the chain instead of one per event; the events are stored
//! all-or-nothing at consecutive sequences, so nothing of another writer comes between them.
//!
//! Only used on a replicated stream: on one node the leader stages a batch in a file store of its
//! own (a directory created and fsynced per batch, about 17 ms here), slower than the chain's
//! publishes of about 0.3 ms each.

use async_nats::{HeaderMap, jetstream::ErrorCode};
use uuid::Uuid;

use super::refusals::{jetstream_error_code, publish_error};
use super::{EventStore, EventStoreError, NewEvent, Published};

/// `Nats-Batch-Id`: names the batch (at most 64 characters); a fresh UUID per try.
const BATCH_ID: &str = "Nats-Batch-Id";
/// `Nats-Batch-Sequence`: the message's place in its batch, from 1.
const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
/// `Nats-Batch-Commit: 1` on the last message commits the batch; its acknowledgement is the batch's.
const BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// The most messages nats-server accepts in one atomic batch (its default `max_batch_size`).
pub const MAX_ATOMIC_BATCH: usize = 1000;

/// 10174: the stream does not allow atomic publishing (`allow_atomic` off, or a server before 2.12).
const ATOMIC_PUBLISH_DISABLED: ErrorCode = ErrorCode(10174);
/// 10201: an event of the batch is stored already (a retried id): nothing of the batch was stored.
const BATCH_CONTAINS_DUPLICATE: ErrorCode = ErrorCode(10201);

impl EventStore {
    /// One try of storing `events` (at least one, at most [`MAX_ATOMIC_BATCH`]) as one atomic
    /// batch; the first event's guard ([`NewEvent::expected`]) guards the batch. Returns one
    /// acknowledgement per event, at consecutive sequences; `None` when the batch is to be
    /// published event by event instead (the stream takes no atomic batches, or one of its
    /// events is stored already: the chain then answers that one with its original sequence).
    /// Nothing of a refused or failed batch is stored.
    pub(super) async fn try_publish_atomic(
        &self,
        events: &[NewEvent],
    ) -> Result<Option<Vec<Published>>, EventStoreError> {
        let batch_id = Uuid::new_v4().to_string();
        let expected = events.first().map_or(0, NewEvent::expected_last_sequence);
        let unavailable = |e: async_nats::PublishError| EventStoreError::Unavailable(e.to_string());
        let (last, before) = events
            .split_last()
            .expect("a batch holds at least one event");
        for (index, new) in before.iter().enumerate() {
            let headers = self.batch_headers(new, &batch_id, index + 1, false);
            self.client
                .publish_with_headers(new.event.subject(), headers, new.event.to_json().into())
                .await
                .map_err(unavailable)?;
        }
        let commit = async_nats::jetstream::message::PublishMessage::build()
            .payload(last.event.to_json().into())
            .headers(self.batch_headers(last, &batch_id, events.len(), true));
        let acknowledged = match self
            .jetstream
            .send_publish(last.event.subject(), commit)
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        let ack = match acknowledged {
            Ok(ack) => ack,
            Err(e) => {
                return match jetstream_error_code(&e) {
                    Some(ATOMIC_PUBLISH_DISABLED) => {
                        self.atomic_batches
                            .store(false, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(
                            "the stream refuses atomic batches; seat chains are published event by event"
                        );
                        Ok(None)
                    }
                    Some(BATCH_CONTAINS_DUPLICATE) => Ok(None),
                    _ => Err(publish_error(&e, expected)),
                };
            }
        };
        let first = ack.sequence + 1 - events.len() as u64;
        Ok(Some(
            events
                .iter()
                .zip(first..)
                .map(|(new, sequence)| Published {
                    id: new.id,
                    sequence,
                    duplicate: false,
                })
                .collect(),
        ))
    }

    /// The headers of `new` as message `sequence` (from 1) of batch `batch_id`: its own
    /// ([`EventStore::headers`]) and the batch's.
    fn batch_headers(
        &self,
        new: &NewEvent,
        batch_id: &str,
        sequence: usize,
        commit: bool,
    ) -> HeaderMap {
        let mut headers = self.headers(new);
        headers.insert(BATCH_ID, batch_id);
        headers.insert(BATCH_SEQUENCE, sequence.to_string().as_str());
        if commit {
            headers.insert(BATCH_COMMIT, "1");
        }
        headers
    }
}
