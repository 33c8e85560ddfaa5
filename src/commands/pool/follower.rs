//! The follower: keeps the pool service's view up to date with the stream. It follows the pool's
//! events from the beginning and the heartbeats of the recent past with ordered consumers, and
//! applies each event once.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use time::OffsetDateTime;

use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, watch};

use super::heartbeat_batch::HeartbeatBatcher;
use super::service::{Inner, PoolService, PoolServiceSettings, View};
use crate::event_store::EventStore;
use crate::events::{
    Event, EventEnvelope, cloudevents, heartbeat_subject_filters, pool_subject_filter,
};
use crate::ivs::StageProvider;
use crate::runtime::clock::Clock;
use crate::runtime::supervisor::{Restart, Supervisor};

impl PoolService {
    /// Starts following the stream (task `pool-follower` of `supervisor`: essential, restarted
    /// where its view left off) and returns once the view has caught up with it. The service reads
    /// "now" from `clock`.
    pub async fn start(
        store: EventStore,
        provider: Arc<dyn StageProvider>,
        settings: PoolServiceSettings,
        clock: Clock,
        supervisor: &Supervisor,
    ) -> anyhow::Result<Self> {
        let batch_seats = settings.batch_seats;
        let service = Self {
            inner: Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| Inner {
                heartbeats: (settings.heartbeat_batch.max > 1).then(|| {
                    let weak = weak.clone();
                    HeartbeatBatcher::start(
                        store.clone(),
                        settings.heartbeat_batch,
                        Arc::new(move |stored, _| {
                            if let Some(inner) = weak.upgrade() {
                                inner.saw_own_heartbeats(stored.occurred_at, stored.event);
                            }
                        }),
                    )
                }),
                seat_queue: batch_seats.then(|| super::seat_batch::start(weak.clone())),
                store,
                provider,
                settings,
                clock,
                view: RwLock::new(View::default()),
                changed: watch::Sender::new(0),
                decide: Mutex::new(()),
            }),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        // The first run tells when it has caught up; a restarted one continues from the view.
        let ready = Arc::new(std::sync::Mutex::new(Some(ready_tx)));
        let follower = service.clone();
        supervisor.spawn("pool-follower", Restart::Always, true, move || {
            let (follower, ready) = (follower.clone(), ready.lock().expect("ready lock").take());
            async move { follower.follow(ready).await }
        });
        ready_rx
            .await
            .map_err(|_| anyhow::anyhow!("the stage pool follower stopped before catching up"))?;
        Ok(service)
    }

    /// Follows the pool's events and heartbeats with an ordered consumer (in order, recreated by the
    /// client after gaps); `ready` fires once the backlog is applied.
    pub(super) async fn follow(&self, ready: Option<tokio::sync::oneshot::Sender<()>>) {
        let mut ready = ready;
        loop {
            if let Err(e) = self.follow_once(&mut ready).await {
                tracing::warn!(error.cause_chain = ?e, "stage pool follower restarting");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn follow_once(
        &self,
        ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> anyhow::Result<()> {
        let stream = self.inner.store.stream().await?;
        // Start after what the view already holds (a restart of the follower keeps the view).
        let (pool_start, beat_start) = {
            let view = self.inner.view.read().expect("view lock");
            (view.pool_sequence, view.heartbeat_sequence)
        };
        // Pool events from the beginning; heartbeats only from the recent past, since only the
        // last sign of life of a seated viewer matters (start-up time does not grow with them).
        let pool_policy = match pool_start {
            0 => DeliverPolicy::All,
            s => DeliverPolicy::ByStartSequence {
                start_sequence: s + 1,
            },
        };
        let beat_policy = match beat_start {
            // The stream stamps messages with the NATS server's wall time, so the lookback is
            // measured on the system clock, not on the service's (movable) clock.
            0 => DeliverPolicy::ByStartTime {
                start_time: OffsetDateTime::now_utc() - self.inner.settings.heartbeat_lookback,
            },
            s => DeliverPolicy::ByStartSequence {
                start_sequence: s + 1,
            },
        };
        let mut pool_consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: pool_subject_filter(),
                deliver_policy: pool_policy,
                ..Default::default()
            })
            .await?;
        let mut beat_consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subjects: heartbeat_subject_filters(),
                deliver_policy: beat_policy,
                ..Default::default()
            })
            .await?;
        let mut pool_caught_up = pool_consumer.info().await?.num_pending == 0;
        let beat_info = beat_consumer.info().await?;
        let mut beats_caught_up = beat_info.num_pending == 0;
        // A consumer that starts at a time has passed over every heartbeat before it (the server
        // sets its delivered sequence just below the first one it will deliver): older
        // heartbeats are not owed, so the watchdog must not count them as lag.
        let beat_start = beat_start.max(beat_info.delivered.stream_sequence);
        let mut pool_messages = pool_consumer.messages().await?;
        let mut beat_messages = beat_consumer.messages().await?;
        // The watchdog (event_store::followers) tells when either consumer stops delivering while
        // the stream moves on; this run then ends and the next one starts where the view is.
        let followers = self.inner.store.followers();
        let pool_progress = followers.register("pool", vec![pool_subject_filter()]);
        let beat_progress = followers.register("pool-heartbeats", heartbeat_subject_filters());
        pool_progress.started(pool_start);
        beat_progress.started(beat_start);
        loop {
            if pool_caught_up
                && beats_caught_up
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(());
            }
            // Heartbeats wait until the pool has caught up at start-up: a heartbeat applied before
            // its seat's join would be dropped.
            let (message, from_pool) = tokio::select! {
                biased;
                m = pool_messages.next() => (m, true),
                m = beat_messages.next(), if pool_caught_up => (m, false),
                () = pool_progress.stalled() => anyhow::bail!("the pool consumer stalled"),
                () = beat_progress.stalled() => anyhow::bail!("the heartbeat consumer stalled"),
            };
            let message = message.ok_or_else(|| anyhow::anyhow!("ordered consumer ended"))??;
            let info = message
                .info()
                .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            match cloudevents::decode(message.headers.as_ref(), &message.payload, sequence) {
                Ok(envelope) => self.apply(&envelope),
                Err(e) => tracing::warn!(sequence, error = %e, "stage pool skipped an event"),
            }
            if from_pool {
                pool_progress.applied(sequence, pending);
            } else {
                beat_progress.applied(sequence, pending);
            }
            if pending == 0 {
                if from_pool {
                    pool_caught_up = true;
                } else {
                    beats_caught_up = true;
                }
            }
        }
    }

    /// Applies an event once: pool events at or below the view's sequence are already in it
    /// (published by this instance); heartbeats are idempotent.
    pub(super) fn apply(&self, envelope: &EventEnvelope) {
        let mut view = self.inner.view.write().expect("view lock");
        if envelope.event.is_pool_event() {
            if envelope.sequence <= view.pool_sequence {
                return;
            }
            view.pool_sequence = envelope.sequence;
        } else if matches!(
            envelope.event,
            Event::ViewerHeartbeatRecorded(_) | Event::ViewerHeartbeatsRecorded(_)
        ) {
            view.heartbeat_sequence = view.heartbeat_sequence.max(envelope.sequence);
        }
        view.pool.apply(envelope);
        drop(view);
        self.inner.changed.send_modify(|n| *n += 1);
    }
}
