//! Heartbeat group commit: the heartbeats that reach this instance while an earlier message is
//! being stored are stored together as one JetStream message,
//! `onair.viewer.heartbeats_recorded.v1`, and every request is answered once that message is
//! acknowledged, with its stream sequence. A heartbeat alone is stored as it always was, one
//! `onair.viewer.heartbeat_recorded.v1`.
//!
//! Batching is natural, without a timer: one task collects. When fewer than `in_flight` messages
//! await their acknowledgement (`ONAIR_HEARTBEAT_BATCH_IN_FLIGHT`, default 1), what is queued is
//! published at once; while they all wait, what arrives queues up and becomes the next message
//! (up to `ONAIR_HEARTBEAT_BATCH_MAX`). A light load therefore pays no wait, and a heavy one
//! shares one acknowledgement among many requests. An optional window
//! (`ONAIR_HEARTBEAT_BATCH_WINDOW_US`, default 0) makes the first heartbeat of a message also
//! wait that long for others.
//!
//! A message's id is derived from the heartbeats it holds, so publishing it again stores it once.
//! Once stored, the message is handed to the batcher's `on_stored` callback (the pool service
//! applies it to its own view, one write for the whole message) before the requests are answered.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::id::derived_event_id;
use crate::events::{Event, RecordedHeartbeat, ViewerHeartbeatRecorded, ViewerHeartbeatsRecorded};

/// Heartbeats queued for the collecting task before senders wait.
const QUEUE: usize = 8192;

/// The group commit's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatBatchSettings {
    /// How long the first heartbeat of a message waits for others (0: no timer, only what
    /// queued while earlier messages were being stored).
    pub window: Duration,
    /// Most heartbeats in one message; 1: no group commit.
    pub max: usize,
    /// Messages that may await their acknowledgement at once (at least 1).
    pub in_flight: usize,
}

impl Default for HeartbeatBatchSettings {
    /// No window, 256 heartbeats, one message in flight.
    fn default() -> Self {
        Self {
            window: Duration::ZERO,
            max: 256,
            in_flight: 1,
        }
    }
}

/// Called with each stored message and its acknowledgement, before its requests are answered.
pub type OnStored = Arc<dyn Fn(NewEvent, Published) + Send + Sync>;

type Reply = oneshot::Sender<Result<Published, EventStoreError>>;

/// The handle requests queue their heartbeat on; cheap to clone.
#[derive(Clone)]
pub struct HeartbeatBatcher {
    queue: mpsc::Sender<(RecordedHeartbeat, Reply)>,
}

impl HeartbeatBatcher {
    /// Starts the collecting task, which publishes to `store`, hands every stored message to
    /// `on_stored`, and ends when every handle is gone.
    pub fn start(store: EventStore, settings: HeartbeatBatchSettings, on_stored: OnStored) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(collect(store, settings, on_stored, rx));
        Self { queue }
    }

    /// Queues one heartbeat and waits for the acknowledgement of the message that holds it.
    pub async fn record(&self, heartbeat: RecordedHeartbeat) -> Result<Published, EventStoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || EventStoreError::Unavailable("the heartbeat batcher stopped".into());
        self.queue
            .send((heartbeat, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn collect(
    store: EventStore,
    settings: HeartbeatBatchSettings,
    on_stored: OnStored,
    mut rx: mpsc::Receiver<(RecordedHeartbeat, Reply)>,
) {
    let in_flight = Arc::new(Semaphore::new(settings.in_flight.max(1)));
    let max = settings.max.max(1);
    let drain = |rx: &mut mpsc::Receiver<_>, batch: &mut Vec<_>| {
        while batch.len() < max {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
    };
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(max.min(64));
        batch.push(first);
        drain(&mut rx, &mut batch);
        if !settings.window.is_zero() && batch.len() < max {
            let deadline = tokio::time::Instant::now() + settings.window;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
        }
        // While earlier messages await their acknowledgement, what arrives joins this one.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        drain(&mut rx, &mut batch);
        let (store, on_stored) = (store.clone(), on_stored.clone());
        tokio::spawn(async move {
            publish(&store, &on_stored, batch).await;
            drop(permit);
        });
    }
}

/// The event a batch is stored as: one heartbeat as `heartbeat_recorded.v1`, more as
/// `heartbeats_recorded.v1` with an id derived from them.
pub fn batch_event(mut heartbeats: Vec<RecordedHeartbeat>) -> NewEvent {
    if heartbeats.len() == 1 {
        let beat = heartbeats.pop().expect("one heartbeat");
        return NewEvent::new(
            beat.at,
            Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
                user_id: beat.user_id,
                stage_arn: beat.stage_arn,
            }),
        );
    }
    let latest = heartbeats
        .iter()
        .map(|b| b.at)
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let times: Vec<String> = heartbeats
        .iter()
        .map(|b| (b.at.unix_timestamp_nanos() / 1_000_000).to_string())
        .collect();
    let mut parts = vec!["viewer-heartbeats"];
    for (beat, at) in heartbeats.iter().zip(&times) {
        parts.extend([beat.user_id.as_str(), beat.stage_arn.as_str(), at.as_str()]);
    }
    let id = derived_event_id(&parts);
    NewEvent::new(
        latest,
        Event::ViewerHeartbeatsRecorded(ViewerHeartbeatsRecorded { heartbeats }),
    )
    .with_id(id)
}

async fn publish(store: &EventStore, on_stored: &OnStored, batch: Vec<(RecordedHeartbeat, Reply)>) {
    let (heartbeats, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    metrics::histogram!("onair_heartbeat_batch_size").record(heartbeats.len() as f64);
    let new = batch_event(heartbeats);
    match store.publish_ref(&new).await {
        Ok(published) => {
            on_stored(new, published);
            for reply in replies {
                let _ = reply.send(Ok(published));
            }
        }
        Err(e) => {
            let text = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(EventStoreError::Unavailable(text.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(user: &str, ms: i64) -> RecordedHeartbeat {
        RecordedHeartbeat {
            user_id: user.into(),
            stage_arn: "arn:aws:ivs:us-east-1:1:stage/a".into(),
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms),
        }
    }

    #[test]
    fn one_heartbeat_is_stored_as_it_always_was() {
        let new = batch_event(vec![beat("u1", 5)]);
        assert_eq!(new.event.event_type(), "onair.viewer.heartbeat_recorded.v1");
        assert_eq!(new.occurred_at, beat("u1", 5).at);
    }

    #[test]
    fn a_batch_takes_its_latest_time_and_an_id_derived_from_its_heartbeats() {
        let a = batch_event(vec![beat("u1", 5), beat("u2", 9), beat("u3", 7)]);
        assert_eq!(a.event.event_type(), "onair.viewer.heartbeats_recorded.v1");
        assert_eq!(a.occurred_at, beat("u2", 9).at);
        let again = batch_event(vec![beat("u1", 5), beat("u2", 9), beat("u3", 7)]);
        assert_eq!(a.id, again.id);
        let other = batch_event(vec![beat("u1", 5), beat("u2", 10), beat("u3", 7)]);
        assert_ne!(a.id, other.id);
    }
}
