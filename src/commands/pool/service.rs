//! The [`PoolService`] handle: its settings and errors, the view it decides against, and the
//! guarded publish of pool events that the commands in `seats` and `stages` share.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Mutex, watch};

use super::heartbeat_batch::{HeartbeatBatchSettings, HeartbeatBatcher};
use crate::commands::publish::{Attempt, SubjectGuard, publish_guarded, retry_guarded};
use crate::domain::stage_pool::{PoolError, PoolLimits, StagePool};
use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::{Event, EventEnvelope, pool_subject_filter};
use crate::ivs::{ParticipantToken, ProviderError, StageProvider};
use crate::runtime::clock::Clock;
use uuid::Uuid;

/// How many times a decision is retried after losing a race to another instance.
pub(super) const MAX_ATTEMPTS: usize = 20;
/// How long to wait for the view to catch up after a conflict or an unknown seat.
pub(super) const CATCH_UP_WAIT: Duration = Duration::from_millis(500);

/// The longest a heartbeat or a leave for a seat this instance has not seen waits for its view to
/// reach the stream's newest pool event before it is refused `NOT_FOUND` (2 s).
pub(super) const READ_YOUR_SEAT_WAIT: Duration = Duration::from_secs(2);

/// Name of the master stage (the Stage API's).
pub const MASTER_STAGE_NAME: &str = "master-stage";

/// Why a stage pool command failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolServiceError {
    /// A pool rule refused the command (stage full, unknown stage, master stage, ...).
    #[error(transparent)]
    Rule(#[from] PoolError),
    /// The stage provider failed: IVS quota, unknown stage, token, or IVS unavailable.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The event was not stored (HTTP 503 `SERVICE_UNAVAILABLE`).
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// No decision got through in 20 attempts (other instances kept publishing first); retry
    /// (HTTP 503).
    #[error("the stage pool is busy; try again")]
    Contended,
    /// A publisher token was asked for before the master stage exists; retry (HTTP 503).
    #[error("the stage pool has no master stage yet")]
    NoMasterStage,
}

/// Token lifetimes and tags.
#[derive(Clone, Debug)]
pub struct PoolServiceSettings {
    /// Viewers per stage, scale-up threshold and most stages (the Stage API's defaults: 50, 45,
    /// 20).
    pub limits: PoolLimits,
    /// The Stage API: publisher tokens live 4 h (14400 s).
    pub publisher_token_seconds: u64,
    /// The Stage API: viewer tokens live 1 h (3600 s).
    pub viewer_token_seconds: u64,
    /// Value of the `Environment` tag on stages onair creates.
    pub environment: String,
    /// How far back heartbeats are read at start-up: more than the heartbeat timeout.
    pub heartbeat_lookback: Duration,
    /// Heartbeat group commit (`ONAIR_HEARTBEAT_BATCH_*`).
    pub heartbeat_batch: HeartbeatBatchSettings,
    /// The longest a viewer's seat decision takes, its turn included, before it answers 503
    /// `SERVICE_UNAVAILABLE` (`ONAIR_SEAT_DECISION_DEADLINE_MS`, 8 s by default: under the 10 s a client or nginx waits).
    pub decision_deadline: Duration,
    /// Decide the seats queued on this instance together and store them as one chain of events
    /// (`ONAIR_SEAT_BATCHES`, on by default; off: one guarded publish per seat).
    pub batch_seats: bool,
}

/// What [`PoolService::catch_up_with_stream`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CatchUp {
    /// The view holds the stream's newest pool event.
    Done,
    /// The view did not get there in time.
    TimedOut,
    /// The stream did not say what its newest pool event is.
    StreamSilent,
}

/// The pool as this instance knows it, with the stream sequences it has applied.
#[derive(Default)]
pub(super) struct View {
    pub(super) pool: StagePool,
    /// Stream sequence of the last pool event applied (the expected-sequence guard's value).
    pub(super) pool_sequence: u64,
    /// Stream sequence of the last heartbeat applied.
    pub(super) heartbeat_sequence: u64,
}

/// A seat with its token.
#[derive(Clone, Debug)]
pub struct SeatGranted {
    /// The stage the viewer is seated on.
    pub stage_arn: String,
    /// The `SUBSCRIBE` token for that stage.
    pub token: ParticipantToken,
    /// Viewers on that stage after this request.
    pub current_viewers: u32,
    /// The stored `onair.viewer.joined.v1` (or `onair.viewer.token_renewed.v1`) event.
    pub published: Published,
}

/// One viewer token request waiting for its seat in a batch (`seat_batch`).
pub(super) struct SeatRequest {
    pub(super) user: crate::domain::user_id::UserId,
    pub(super) attributes: serde_json::Map<String, serde_json::Value>,
    pub(super) token_attributes: BTreeMap<String, String>,
    pub(super) event_id: Option<uuid::Uuid>,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<SeatGranted, PoolServiceError>>,
}

/// The stage pool service; cheap to clone.
#[derive(Clone)]
pub struct PoolService {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: EventStore,
    pub(super) provider: Arc<dyn StageProvider>,
    pub(super) settings: PoolServiceSettings,
    pub(super) clock: Clock,
    pub(super) view: RwLock<View>,
    /// Bumped whenever the view changes.
    pub(super) changed: watch::Sender<u64>,
    /// One decision at a time per instance (instances race through the guard).
    pub(super) decide: Mutex<()>,
    /// The heartbeat group commit; `None` when every heartbeat is its own message.
    pub(super) heartbeats: Option<HeartbeatBatcher>,
    /// The queue of the seat batches (`seat_batch`); `None`: one seat per decision.
    pub(super) seat_queue: Option<tokio::sync::mpsc::Sender<SeatRequest>>,
}

impl Inner {
    /// Heartbeats this instance stored (one `heartbeat_recorded` or a `heartbeats_recorded`
    /// message) count in its own view at once, before its follower delivers them, in one write
    /// of the view: read your own writes, so the expiry reactor never expires a viewer whose
    /// heartbeat was just answered. The follower applies them again later; heartbeats are
    /// idempotent.
    pub(super) fn saw_own_heartbeats(&self, occurred_at: OffsetDateTime, event: Event) {
        let envelope = EventEnvelope {
            id: Uuid::nil(),
            occurred_at,
            sequence: 0,
            event,
        };
        self.view.write().expect("view lock").pool.apply(&envelope);
    }
}

impl PoolService {
    /// The pool's limits: viewers per stage, scale-up threshold, most stages.
    pub fn limits(&self) -> PoolLimits {
        self.inner.settings.limits
    }

    /// Reads the current view.
    pub fn read<T>(&self, f: impl FnOnce(&StagePool) -> T) -> T {
        f(&self.inner.view.read().expect("view lock").pool)
    }

    /// Now, from the service's clock, truncated to milliseconds (the precision of `ce-time`).
    pub fn now(&self) -> OffsetDateTime {
        to_millis(self.inner.clock.now())
    }

    /// Reads the view with the pool sequence the decision is guarded by.
    pub(super) fn snapshot<T>(&self, f: impl FnOnce(&StagePool) -> T) -> (T, u64) {
        let view = self.inner.view.read().expect("view lock");
        (f(&view.pool), view.pool_sequence)
    }

    /// This instance's turn to decide (the decision lock). The wait counts against the
    /// decision's deadline (`ONAIR_SEAT_DECISION_DEADLINE_MS`): when the event store stalls (a NATS node failing over),
    /// the requests queued behind a stalled publish answer 503 `SERVICE_UNAVAILABLE` in time
    /// instead of hanging past their client's timeout, while a burst that merely queues (a
    /// popular stream starting) is served.
    pub(super) async fn turn(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, PoolServiceError> {
        Ok(self.inner.decide.lock().await)
    }

    /// Runs a seat decision within its deadline (`ONAIR_SEAT_DECISION_DEADLINE_MS`), else answers a store error (503
    /// `SERVICE_UNAVAILABLE`). The decision is dropped where it stands: an event it had sent may
    /// still be stored, as after a JetStream ack timeout, and a retry with the same idempotency
    /// key publishes the same event id, which JetStream drops as a duplicate.
    pub(super) async fn within_deadline<T>(
        &self,
        decision: impl std::future::Future<Output = Result<T, PoolServiceError>>,
    ) -> Result<T, PoolServiceError> {
        tokio::time::timeout(self.inner.settings.decision_deadline, decision)
            .await
            .unwrap_or_else(|_| {
                Err(PoolServiceError::Store(EventStoreError::Unavailable(
                    "the stage pool did not decide in time".to_owned(),
                )))
            })
    }

    /// Waits until the view changes or `timeout` passes.
    pub(super) async fn wait_for_change(&self, timeout: Duration) {
        let mut rx = self.inner.changed.subscribe();
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }

    /// Publishes a pool event guarded by `expected` and applies it to the view at once; `None`
    /// when another instance changed the pool first.
    pub(super) async fn publish_pool_event(
        &self,
        new: NewEvent,
        expected: u64,
    ) -> Result<Option<Published>, EventStoreError> {
        let occurred_at = new.occurred_at;
        let id = new.id;
        let event = new.event.clone();
        let guard = SubjectGuard {
            subject_filter: pool_subject_filter(),
            last_sequence: expected,
        };
        let published = publish_guarded(&self.inner.store, new, &guard).await?;
        if let Some(published) = published {
            self.apply(&EventEnvelope {
                id,
                occurred_at,
                sequence: published.sequence,
                event,
            });
        }
        Ok(published)
    }

    /// Runs a pool command's attempts (at most `attempts`), waiting for the view to catch up
    /// after each lost race; `None` when no attempt got through.
    pub(super) async fn retry<R, A>(
        &self,
        attempts: usize,
        attempt: impl FnMut() -> A,
    ) -> Result<Option<R>, PoolServiceError>
    where
        A: Future<Output = Result<Attempt<R>, PoolServiceError>>,
    {
        retry_guarded(attempts, attempt, || self.catch_up_after_conflict()).await
    }

    /// After a lost race (another instance stored a pool event first): catches up with the
    /// stream's newest pool event (at most [`CATCH_UP_WAIT`]), so the next decision sees it. Only
    /// when the stream cannot be read, waits for the view to change (at most as long). It does
    /// not wait when the view has applied that event already.
    pub(super) async fn catch_up_after_conflict(&self) {
        if self.catch_up_with_stream(CATCH_UP_WAIT).await == CatchUp::StreamSilent {
            self.wait_for_change(CATCH_UP_WAIT).await;
        }
    }

    /// Decides one pool event against the current view and publishes it with the pool's guard,
    /// deciding again after losing a race ([`PoolServiceError::Contended`] after 20). Call with
    /// the decision lock held.
    pub(super) async fn decide_and_publish<T>(
        &self,
        decide: impl Fn(&StagePool, OffsetDateTime) -> Result<(crate::events::Event, T), PoolError>,
        event_id: Option<uuid::Uuid>,
    ) -> Result<(T, Published), PoolServiceError> {
        let decide = &decide;
        self.retry(MAX_ATTEMPTS, move || async move {
            let at = self.now();
            let (decision, expected) = self.snapshot(|p| decide(p, at));
            let (event, value) = decision?;
            let mut new = NewEvent::new(at, event);
            if let Some(id) = event_id {
                new = new.with_id(id);
            }
            Ok(match self.publish_pool_event(new, expected).await? {
                Some(published) => Attempt::Done((value, published)),
                None => Attempt::Conflicted,
            })
        })
        .await?
        .ok_or(PoolServiceError::Contended)
    }

    /// Looks a rule up against the view; if it fails because the view may lag behind another
    /// instance's write (a viewer seated through another instance, beating through this one),
    /// reads the newest pool event in the stream and waits, at most [`READ_YOUR_SEAT_WAIT`], until
    /// the view has applied it, then looks again. Only then is a refusal final.
    pub(super) async fn check_fresh<T>(
        &self,
        f: impl Fn(&StagePool) -> Result<T, PoolError>,
    ) -> Result<T, PoolError> {
        if let Ok(v) = self.read(&f) {
            return Ok(v);
        }
        if self.catch_up_with_stream(READ_YOUR_SEAT_WAIT).await == CatchUp::TimedOut {
            metrics::counter!("onair_pool_catch_up_timeouts_total").increment(1);
        }
        self.read(&f)
    }

    /// Waits, at most `within`, until the view has applied the newest pool event in the stream
    /// (read with one `STREAM.MSG.GET`).
    pub(super) async fn catch_up_with_stream(&self, within: Duration) -> CatchUp {
        let deadline = tokio::time::Instant::now() + within;
        let newest = tokio::time::timeout_at(
            deadline,
            self.inner.store.last_sequence_on(&[pool_subject_filter()]),
        )
        .await;
        let Ok(Ok(newest)) = newest else {
            return CatchUp::StreamSilent;
        };
        let mut changed = self.inner.changed.subscribe();
        while self.inner.view.read().expect("view lock").pool_sequence < newest {
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return CatchUp::TimedOut;
            }
        }
        CatchUp::Done
    }

    /// The tags of a stage onair creates: `Environment`, `ManagedBy=onair`, and `AutoScaled=true`
    /// for scale-up's stages.
    pub(super) fn stage_tags(&self, auto_scaled: bool) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([
            (
                "Environment".to_owned(),
                self.inner.settings.environment.clone(),
            ),
            ("ManagedBy".to_owned(), "onair".to_owned()),
        ]);
        if auto_scaled {
            tags.insert("AutoScaled".to_owned(), "true".to_owned());
        }
        tags
    }

    /// Deletes a stage at the provider; a failure is logged (the reconciler reports what is left).
    pub(super) async fn delete_at_provider(&self, stage_arn: &str) {
        if let Err(e) = self.inner.provider.delete_stage(stage_arn.to_owned()).await {
            tracing::warn!(stage_arn, error = %e, "the provider did not delete the stage; the reconciler will report it");
        }
    }
}

/// `t` truncated to milliseconds (the precision of `ce-time`).
fn to_millis(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("milliseconds are a valid nanosecond value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_truncated_to_its_millisecond() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.123_456_789 UTC);
        assert_eq!(
            to_millis(t),
            time::macros::datetime!(2026-01-02 03:04:05.123 UTC)
        );
    }
}
