//! Heartbeat group commit: the heartbeats that reach this instance within a moment are stored as
//! one JetStream message, `onair.viewer.heartbeats_recorded.v1`, and every request is answered
//! once that message is acknowledged, with its stream sequence. A heartbeat alone in its window is
//! stored as it always was, one `onair.viewer.heartbeat_recorded.v1`.
//!
//! One task collects: it takes the first queued heartbeat, everything already queued behind it,
//! then whatever arrives within the window (`ONAIR_HEARTBEAT_BATCH_WINDOW_US`), up to
//! `ONAIR_HEARTBEAT_BATCH_MAX`, and hands the batch to a publishing task; up to
//! [`MAX_IN_FLIGHT`] batches wait for their acknowledgement at once while the next one collects.
//! A batch's id is derived from the heartbeats it holds, so publishing it again stores it once.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::id::derived_event_id;
use crate::events::{Event, RecordedHeartbeat, ViewerHeartbeatRecorded, ViewerHeartbeatsRecorded};

/// Batches awaiting their acknowledgement at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// Heartbeats queued for the collecting task before senders wait.
const QUEUE: usize = 8192;

/// The group commit's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatBatchSettings {
    /// How long the first heartbeat of a batch waits for others (0: only what is queued).
    pub window: Duration,
    /// Most heartbeats in one message; 1: no group commit.
    pub max: usize,
}

impl Default for HeartbeatBatchSettings {
    /// 1 ms, 256 heartbeats.
    fn default() -> Self {
        Self {
            window: Duration::from_millis(1),
            max: 256,
        }
    }
}

type Reply = oneshot::Sender<Result<Published, EventStoreError>>;

/// The handle requests queue their heartbeat on; cheap to clone.
#[derive(Clone)]
pub struct HeartbeatBatcher {
    queue: mpsc::Sender<(RecordedHeartbeat, Reply)>,
}

impl HeartbeatBatcher {
    /// Starts the collecting task, which publishes to `store` and ends when every handle is gone.
    pub fn start(store: EventStore, settings: HeartbeatBatchSettings) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(collect(store, settings, rx));
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
    mut rx: mpsc::Receiver<(RecordedHeartbeat, Reply)>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let max = settings.max.max(1);
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(max.min(64));
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if !settings.window.is_zero() && batch.len() < max {
            let deadline = tokio::time::Instant::now() + settings.window;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let store = store.clone();
        tokio::spawn(async move {
            publish(&store, batch).await;
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

async fn publish(store: &EventStore, batch: Vec<(RecordedHeartbeat, Reply)>) {
    let (heartbeats, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    metrics::histogram!("onair_heartbeat_batch_size").record(heartbeats.len() as f64);
    match store.publish(batch_event(heartbeats)).await {
        Ok(published) => {
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
