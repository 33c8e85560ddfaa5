//! The stage pool's command side: it follows the pool's events from the stream into an in-memory
//! [`StagePool`], decides with the pure domain rules, and publishes with the pool's expected
//! sequence (DESIGN.md §4.1). On a conflict (another instance published first) it waits for its
//! view to catch up and decides again, a bounded number of times.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::{Mutex, watch};
use uuid::Uuid;

use crate::domain::stage_pool::{
    PoolError, PoolLimits, PoolStage, ScaleDownPolicy, SeatDecision, StagePool,
};
use crate::domain::user_id::UserId;
use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::id::derived_event_id;
use crate::events::{
    Event, EventEnvelope, HEARTBEAT_SUBJECT_FILTER, StageCreated, ViewerHeartbeatRecorded,
    ViewerJoined, ViewerLeft, ViewerTokenRenewed, cloudevents, pool_subject_filter,
};
use crate::ivs::{
    Capability, ParticipantToken, ProvidedStage, ProviderError, StageProvider, TokenRequest,
};

/// How many times a decision is retried after losing a race to another instance.
const MAX_ATTEMPTS: usize = 20;
/// How long to wait for the view to catch up after a conflict or an unknown seat.
const CATCH_UP_WAIT: Duration = Duration::from_millis(500);

/// Name of the master stage (seeds/ivs-api.md).
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
    /// Viewers per stage, scale-up threshold and most stages (seeds/ivs-api.md: 50, 45, 20).
    pub limits: PoolLimits,
    /// seeds/ivs-api.md: publisher tokens live 4 h (14400 s).
    pub publisher_token_seconds: u64,
    /// seeds/ivs-api.md: viewer tokens live 1 h (3600 s).
    pub viewer_token_seconds: u64,
    /// Value of the `Environment` tag on stages onair creates.
    pub environment: String,
    /// How far back heartbeats are read at start-up: more than the heartbeat timeout.
    pub heartbeat_lookback: Duration,
}

#[derive(Default)]
struct View {
    pool: StagePool,
    /// Stream sequence of the last pool event applied (the expected-sequence guard's value).
    pool_sequence: u64,
    /// Stream sequence of the last heartbeat applied.
    heartbeat_sequence: u64,
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

/// The stage pool service; cheap to clone.
#[derive(Clone)]
pub struct PoolService {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    provider: Arc<dyn StageProvider>,
    settings: PoolServiceSettings,
    view: RwLock<View>,
    /// Bumped whenever the view changes.
    changed: watch::Sender<u64>,
    /// One decision at a time per instance (instances race through the guard).
    decide: Mutex<()>,
}

impl PoolService {
    /// Starts following the stream and returns once the view has caught up with it.
    pub async fn start(
        store: EventStore,
        provider: Arc<dyn StageProvider>,
        settings: PoolServiceSettings,
    ) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let service = Self {
            inner: Arc::new(Inner {
                store,
                provider,
                settings,
                view: RwLock::new(View::default()),
                changed: watch::Sender::new(0),
                decide: Mutex::new(()),
            }),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let follower = service.clone();
        let task = tokio::spawn(async move { follower.follow(ready_tx).await });
        ready_rx
            .await
            .map_err(|_| anyhow::anyhow!("the stage pool follower stopped before catching up"))?;
        Ok((service, task))
    }

    /// Follows the pool's events and heartbeats with an ordered consumer (in order, recreated by the
    /// client after gaps); `ready` fires once the backlog is applied.
    async fn follow(&self, ready: tokio::sync::oneshot::Sender<()>) {
        let mut ready = Some(ready);
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
                filter_subject: HEARTBEAT_SUBJECT_FILTER.to_owned(),
                deliver_policy: beat_policy,
                ..Default::default()
            })
            .await?;
        let mut pool_caught_up = pool_consumer.info().await?.num_pending == 0;
        let mut beats_caught_up = beat_consumer.info().await?.num_pending == 0;
        let mut pool_messages = pool_consumer.messages().await?;
        let mut beat_messages = beat_consumer.messages().await?;
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
    fn apply(&self, envelope: &EventEnvelope) {
        let mut view = self.inner.view.write().expect("view lock");
        if envelope.event.is_pool_event() {
            if envelope.sequence <= view.pool_sequence {
                return;
            }
            view.pool_sequence = envelope.sequence;
        } else if matches!(envelope.event, Event::ViewerHeartbeatRecorded(_)) {
            view.heartbeat_sequence = view.heartbeat_sequence.max(envelope.sequence);
        }
        view.pool.apply(envelope);
        drop(view);
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Reads the current view.
    pub fn read<T>(&self, f: impl FnOnce(&StagePool) -> T) -> T {
        f(&self.inner.view.read().expect("view lock").pool)
    }

    fn snapshot<T>(&self, f: impl FnOnce(&StagePool) -> T) -> (T, u64) {
        let view = self.inner.view.read().expect("view lock");
        (f(&view.pool), view.pool_sequence)
    }

    /// Waits until the view changes or `timeout` passes.
    async fn wait_for_change(&self, timeout: Duration) {
        let mut rx = self.inner.changed.subscribe();
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }

    /// Publishes a pool event guarded by `expected` and applies it to the view at once.
    async fn publish_pool_event(
        &self,
        new: NewEvent,
        expected: u64,
    ) -> Result<Published, EventStoreError> {
        let occurred_at = new.occurred_at;
        let id = new.id;
        let event = new.event.clone();
        let published = self
            .inner
            .store
            .publish(new.expecting(pool_subject_filter(), expected))
            .await?;
        self.apply(&EventEnvelope {
            id,
            occurred_at,
            sequence: published.sequence,
            event,
        });
        Ok(published)
    }

    fn stage_tags(&self, auto_scaled: bool) -> BTreeMap<String, String> {
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

    /// Creates the master stage if the pool has none (first start). Safe on several instances at
    /// once: the guard lets one win, the others see its stage.
    pub async fn ensure_master_stage(&self) -> Result<(), PoolServiceError> {
        let _turn = self.inner.decide.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let (exists, expected) = self.snapshot(|p| p.master().is_some());
            if exists {
                return Ok(());
            }
            let stage = self
                .inner
                .provider
                .create_stage(MASTER_STAGE_NAME.to_owned(), self.stage_tags(false))
                .await?;
            let event = Event::StageCreated(StageCreated {
                stage_arn: stage.arn.clone(),
                name: stage.name,
                auto_scaled: false,
                is_master: true,
                tags: stage.tags,
            });
            match self
                .publish_pool_event(NewEvent::new(now(), event), expected)
                .await
            {
                Ok(_) => return Ok(()),
                Err(EventStoreError::Conflict { .. }) => {
                    let _ = self.inner.provider.delete_stage(stage.arn).await;
                    self.wait_for_change(CATCH_UP_WAIT).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(PoolServiceError::Contended)
    }

    /// Seats a viewer (or keeps their seat) and mints their token (SUBSCRIBE, viewer TTL).
    /// `event_id` makes a retried request publish the same event (idempotency key).
    pub async fn assign_viewer_seat(
        &self,
        user: &UserId,
        attributes: serde_json::Map<String, serde_json::Value>,
        token_attributes: BTreeMap<String, String>,
        event_id: Option<Uuid>,
    ) -> Result<SeatGranted, PoolServiceError> {
        let limits = self.inner.settings.limits;
        let _turn = self.inner.decide.lock().await;
        let mut stage_creation_refused: Option<String> = None;
        for _ in 0..MAX_ATTEMPTS {
            let (decision, expected) = self.snapshot(|p| match &stage_creation_refused {
                None => p.decide_seat(user, limits),
                Some(reason) => match p.decide_seat(user, limits) {
                    Ok(SeatDecision::CreateStage) => {
                        p.seat_below_cap(limits)
                            .map_err(|_| PoolError::StageLimitReached {
                                reason: reason.clone(),
                            })
                    }
                    other => other,
                },
            });
            let at = now();
            let (stage_arn, renewing) = match decision? {
                SeatDecision::AlreadySeated { stage_arn } => (stage_arn, true),
                SeatDecision::Join { stage_arn } => (stage_arn, false),
                SeatDecision::ReopenStage { stage_arn } => {
                    let reopen = self.read(|p| p.decide_reopen(&stage_arn))?;
                    match self
                        .publish_pool_event(
                            NewEvent::new(at, Event::StageDrainEnded(reopen)),
                            expected,
                        )
                        .await
                    {
                        Ok(_) => tracing::info!(%stage_arn, "draining stage reopened"),
                        Err(EventStoreError::Conflict { .. }) => {
                            self.wait_for_change(CATCH_UP_WAIT).await
                        }
                        Err(e) => return Err(e.into()),
                    }
                    continue;
                }
                SeatDecision::CreateStage => {
                    match self.create_auto_stage(at, expected).await {
                        Ok(()) => {}
                        Err(PoolServiceError::Provider(ProviderError::QuotaExceeded(reason))) => {
                            stage_creation_refused = Some(reason);
                        }
                        Err(PoolServiceError::Store(EventStoreError::Conflict { .. })) => {
                            self.wait_for_change(CATCH_UP_WAIT).await;
                        }
                        Err(e) => return Err(e),
                    }
                    continue;
                }
            };
            let token = self
                .inner
                .provider
                .create_participant_token(TokenRequest {
                    stage_arn: stage_arn.clone(),
                    user_id: format!("viewer-{user}"),
                    capabilities: vec![Capability::Subscribe],
                    duration_seconds: self.inner.settings.viewer_token_seconds,
                    attributes: token_attributes.clone(),
                    issued_at: at,
                })
                .await?;
            let event = if renewing {
                Event::ViewerTokenRenewed(ViewerTokenRenewed {
                    user_id: user.to_string(),
                    stage_arn: stage_arn.clone(),
                    participant_id: token.participant_id.clone(),
                    token_expires_at: token.expires_at,
                })
            } else {
                Event::ViewerJoined(ViewerJoined {
                    user_id: user.to_string(),
                    stage_arn: stage_arn.clone(),
                    participant_id: token.participant_id.clone(),
                    token_expires_at: token.expires_at,
                    attributes: attributes.clone(),
                })
            };
            let mut new = NewEvent::new(at, event);
            if let Some(id) = event_id {
                new = new.with_id(id);
            }
            match self.publish_pool_event(new, expected).await {
                Ok(published) => {
                    let current_viewers = self.read(|p| {
                        p.stage(&stage_arn)
                            .map(PoolStage::viewer_count)
                            .unwrap_or(0)
                    });
                    return Ok(SeatGranted {
                        stage_arn,
                        token,
                        current_viewers,
                        published,
                    });
                }
                Err(EventStoreError::Conflict { .. }) => self.wait_for_change(CATCH_UP_WAIT).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PoolServiceError::Contended)
    }

    async fn create_auto_stage(
        &self,
        at: OffsetDateTime,
        expected: u64,
    ) -> Result<(), PoolServiceError> {
        let stage = self
            .inner
            .provider
            .create_stage(StagePool::auto_stage_name(at), self.stage_tags(true))
            .await?;
        let event = Event::StageCreated(StageCreated {
            stage_arn: stage.arn.clone(),
            name: stage.name,
            auto_scaled: true,
            is_master: false,
            tags: stage.tags,
        });
        match self
            .publish_pool_event(NewEvent::new(at, event), expected)
            .await
        {
            Ok(_) => {
                tracing::info!(stage_arn = %stage.arn, "auto-scaled stage created");
                Ok(())
            }
            Err(e) => {
                // Another instance changed the pool first: this stage was never announced.
                let _ = self.inner.provider.delete_stage(stage.arn).await;
                Err(e.into())
            }
        }
    }

    /// Mints a publisher token (PUBLISH, publisher TTL) for the master stage.
    pub async fn issue_publisher_token(
        &self,
        user: &UserId,
        token_attributes: BTreeMap<String, String>,
        event_id: Option<Uuid>,
    ) -> Result<(String, ParticipantToken, Published), PoolServiceError> {
        let stage_arn = self
            .read(|p| p.master().map(|s| s.arn.clone()))
            .ok_or(PoolServiceError::NoMasterStage)?;
        let at = now();
        let token = self
            .inner
            .provider
            .create_participant_token(TokenRequest {
                stage_arn: stage_arn.clone(),
                user_id: format!("broadcaster-{user}"),
                capabilities: vec![Capability::Publish],
                duration_seconds: self.inner.settings.publisher_token_seconds,
                attributes: token_attributes,
                issued_at: at,
            })
            .await?;
        let event = Event::PublisherTokenIssued(crate::events::PublisherTokenIssued {
            user_id: user.to_string(),
            stage_arn: stage_arn.clone(),
            participant_id: token.participant_id.clone(),
            expires_at: token.expires_at,
        });
        let mut new = NewEvent::new(at, event);
        if let Some(id) = event_id {
            new = new.with_id(id);
        }
        let published = self.inner.store.publish(new).await?;
        Ok((stage_arn, token, published))
    }

    /// Looks a rule up against the view; if it fails because the view may lag behind another
    /// instance's write, waits briefly once and looks again.
    async fn check_fresh<T>(
        &self,
        f: impl Fn(&StagePool) -> Result<T, PoolError>,
    ) -> Result<T, PoolError> {
        match self.read(&f) {
            Ok(v) => Ok(v),
            Err(_) => {
                self.wait_for_change(Duration::from_millis(150)).await;
                self.read(&f)
            }
        }
    }

    /// Records a heartbeat of a seated viewer (seeds/ivs-api.md: every 30 s).
    pub async fn record_heartbeat(
        &self,
        user: &UserId,
        stage_arn: &str,
    ) -> Result<(OffsetDateTime, Published), PoolServiceError> {
        self.check_fresh(|p| p.check_heartbeat(user, stage_arn))
            .await?;
        let at = now();
        let event = Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
            user_id: user.to_string(),
            stage_arn: stage_arn.to_owned(),
        });
        let published = self.inner.store.publish(NewEvent::new(at, event)).await?;
        Ok((at, published))
    }

    /// Decides one pool event against the current view and publishes it with the pool's guard,
    /// deciding again after losing a race. Call with the decision lock held.
    async fn decide_and_publish<T: Clone>(
        &self,
        decide: impl Fn(&StagePool, OffsetDateTime) -> Result<(Event, T), PoolError>,
        event_id: Option<Uuid>,
    ) -> Result<(T, Published), PoolServiceError> {
        for _ in 0..MAX_ATTEMPTS {
            let at = now();
            let (decision, expected) = self.snapshot(|p| decide(p, at));
            let (event, value) = decision?;
            let mut new = NewEvent::new(at, event);
            if let Some(id) = event_id {
                new = new.with_id(id);
            }
            match self.publish_pool_event(new, expected).await {
                Ok(published) => return Ok((value, published)),
                Err(EventStoreError::Conflict { .. }) => self.wait_for_change(CATCH_UP_WAIT).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PoolServiceError::Contended)
    }

    /// A viewer leaves; returns the session's event (with its watch duration).
    pub async fn leave(
        &self,
        user: &UserId,
        stage_arn: &str,
        event_id: Option<Uuid>,
    ) -> Result<(ViewerLeft, Published), PoolServiceError> {
        self.check_fresh(|p| p.decide_leave(user, stage_arn, now()).map(|_| ()))
            .await?;
        let _turn = self.inner.decide.lock().await;
        self.decide_and_publish(
            |p, at| {
                let left = p.decide_leave(user, stage_arn, at)?;
                Ok((Event::ViewerLeft(left.clone()), left))
            },
            event_id,
        )
        .await
    }

    /// An operator adds a stage (`POST /api/stage`): created at the provider with `tags` plus
    /// `Environment` and `ManagedBy=onair`, then recorded. `STAGE_LIMIT_REACHED` at the limit.
    pub async fn create_stage(
        &self,
        name: &str,
        tags: BTreeMap<String, String>,
        event_id: Option<Uuid>,
    ) -> Result<(ProvidedStage, Published), PoolServiceError> {
        let limits = self.inner.settings.limits;
        let _turn = self.inner.decide.lock().await;
        self.read(|p| p.decide_create_stage(limits))?;
        let mut all_tags = tags;
        all_tags.extend(self.stage_tags(false));
        let stage = self
            .inner
            .provider
            .create_stage(name.to_owned(), all_tags)
            .await?;
        let result = self
            .decide_and_publish(
                |p, _| {
                    p.decide_create_stage(limits)?;
                    Ok((
                        Event::StageCreated(StageCreated {
                            stage_arn: stage.arn.clone(),
                            name: stage.name.clone(),
                            auto_scaled: false,
                            is_master: false,
                            tags: stage.tags.clone(),
                        }),
                        (),
                    ))
                },
                event_id,
            )
            .await;
        match result {
            Ok(((), published)) => Ok((stage, published)),
            Err(e) => {
                self.delete_at_provider(&stage.arn).await;
                Err(e)
            }
        }
    }

    /// Renames a stage at the provider and records it.
    pub async fn rename_stage(
        &self,
        stage_arn: &str,
        name: &str,
    ) -> Result<Published, PoolServiceError> {
        let _turn = self.inner.decide.lock().await;
        self.read(|p| p.decide_rename(stage_arn, name))?;
        self.inner
            .provider
            .update_stage(stage_arn.to_owned(), name.to_owned())
            .await?;
        let ((), published) = self
            .decide_and_publish(
                |p, _| Ok((Event::StageRenamed(p.decide_rename(stage_arn, name)?), ())),
                None,
            )
            .await?;
        Ok(published)
    }

    /// Deletes an empty stage that is not the master: recorded first (so nobody is seated on it
    /// any more), then deleted at the provider.
    pub async fn delete_stage(&self, stage_arn: &str) -> Result<Published, PoolServiceError> {
        let _turn = self.inner.decide.lock().await;
        let ((), published) = self
            .decide_and_publish(
                |p, _| Ok((Event::StageDeleted(p.decide_delete(stage_arn)?), ())),
                None,
            )
            .await?;
        self.delete_at_provider(stage_arn).await;
        Ok(published)
    }

    async fn delete_at_provider(&self, stage_arn: &str) {
        if let Err(e) = self.inner.provider.delete_stage(stage_arn.to_owned()).await {
            tracing::warn!(stage_arn, error = %e, "the provider did not delete the stage; the reconciler will report it");
        }
    }

    /// Adopts the provider's stages tagged `ManagedBy=onair` that the pool does not hold yet (a
    /// start on a new stream against an existing IVS account). A stage named `master-stage` becomes
    /// the master when the pool has none; `AutoScaled=true` marks auto-scaled ones. Returns how many
    /// were adopted. The local provider has none.
    pub async fn adopt_managed_stages(&self) -> Result<usize, PoolServiceError> {
        let provided = self.inner.provider.list_stages().await?;
        let _turn = self.inner.decide.lock().await;
        let mut adopted = 0;
        for stage in provided {
            if stage.tags.get("ManagedBy").map(String::as_str) != Some("onair") {
                continue;
            }
            let result = self
                .decide_and_publish(
                    |p, _| {
                        if p.stage(&stage.arn).is_some() {
                            return Err(PoolError::StageNotFound(String::new()));
                        }
                        let is_master = stage.name == MASTER_STAGE_NAME && p.master().is_none();
                        Ok((
                            Event::StageCreated(StageCreated {
                                stage_arn: stage.arn.clone(),
                                name: stage.name.clone(),
                                auto_scaled: !is_master
                                    && stage.tags.get("AutoScaled").map(String::as_str)
                                        == Some("true"),
                                is_master,
                                tags: stage.tags.clone(),
                            }),
                            (),
                        ))
                    },
                    None,
                )
                .await;
            match result {
                Ok(_) => adopted += 1,
                Err(PoolServiceError::Rule(PoolError::StageNotFound(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(adopted)
    }

    /// Compares the pool with the provider: returns the orphans (provider stages tagged
    /// `ManagedBy=onair` the pool does not hold; deleted when `delete_orphans`) and the pool stages
    /// the provider does not have. A provider that keeps no stages (local) reports nothing.
    pub async fn reconcile(
        &self,
        delete_orphans: bool,
    ) -> Result<(Vec<String>, Vec<String>), PoolServiceError> {
        let provided = self.inner.provider.list_stages().await?;
        if self.inner.provider.name() == "local" {
            return Ok((Vec::new(), Vec::new()));
        }
        let known: std::collections::HashSet<&str> =
            provided.iter().map(|s| s.arn.as_str()).collect();
        let (orphans, missing) = self.read(|p| {
            let orphans: Vec<String> = provided
                .iter()
                .filter(|s| s.tags.get("ManagedBy").map(String::as_str) == Some("onair"))
                .filter(|s| p.stage(&s.arn).is_none())
                .map(|s| s.arn.clone())
                .collect();
            let missing: Vec<String> = p
                .stages()
                .iter()
                .filter(|s| !known.contains(s.arn.as_str()))
                .map(|s| s.arn.clone())
                .collect();
            (orphans, missing)
        });
        for arn in &orphans {
            if delete_orphans {
                tracing::warn!(stage_arn = %arn, "orphan stage (ManagedBy=onair, not in the pool): deleting");
                self.delete_at_provider(arn).await;
            } else {
                tracing::warn!(stage_arn = %arn, "orphan stage (ManagedBy=onair, not in the pool); set ONAIR_RECONCILE_DELETE_ORPHANS=true to delete it");
            }
        }
        for arn in &missing {
            tracing::warn!(stage_arn = %arn, "pool stage missing at the provider");
        }
        Ok((orphans, missing))
    }

    /// Runs the scale-down steps that are due (drain, delete when empty); returns how many events
    /// were stored.
    pub async fn scale_down(&self, policy: ScaleDownPolicy) -> Result<usize, PoolServiceError> {
        if self.read(|p| p.decide_scale_down(now(), policy).is_none()) {
            return Ok(0);
        }
        let _turn = self.inner.decide.lock().await;
        let mut stored = 0;
        for _ in 0..MAX_ATTEMPTS {
            let at = now();
            let (step, expected) = self.snapshot(|p| p.decide_scale_down(at, policy));
            let Some(event) = step else { break };
            match self
                .publish_pool_event(NewEvent::new(at, event.clone()), expected)
                .await
            {
                Ok(_) => {
                    stored += 1;
                    if let Event::StageDeleted(deleted) = &event {
                        tracing::info!(stage_arn = %deleted.stage_arn, "drained stage deleted");
                        self.delete_at_provider(&deleted.stage_arn).await;
                    } else if let Event::StageDrainStarted(drain) = &event {
                        tracing::info!(stage_arn = %drain.stage_arn, viewers = drain.viewer_count, "stage draining");
                    }
                }
                Err(EventStoreError::Conflict { .. }) => self.wait_for_change(CATCH_UP_WAIT).await,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stored)
    }

    /// Expires every viewer silent longer than `timeout`; returns how many were expired. Event ids
    /// are derived from the seat, so instances expiring the same viewer store one event.
    pub async fn expire_silent_viewers(
        &self,
        timeout: Duration,
    ) -> Result<usize, PoolServiceError> {
        let mut expired_count = 0;
        let due = self.read(|p| p.decide_expiry(now(), timeout).len());
        if due == 0 {
            return Ok(0);
        }
        let _turn = self.inner.decide.lock().await;
        // One event per silent viewer, plus room for lost races.
        for _ in 0..due + MAX_ATTEMPTS {
            let at = now();
            let (expired, expected) = self.snapshot(|p| p.decide_expiry(at, timeout));
            let Some(first) = expired.into_iter().next() else {
                return Ok(expired_count);
            };
            let id = derived_event_id(&[
                "viewer-expired",
                &first.user_id,
                &first.stage_arn,
                &cloudevents::format_time(first.joined_at),
            ]);
            let new = NewEvent::new(at, Event::ViewerExpired(first)).with_id(id);
            match self.publish_pool_event(new, expected).await {
                Ok(_) => expired_count += 1,
                Err(EventStoreError::Conflict { .. }) => self.wait_for_change(CATCH_UP_WAIT).await,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(expired_count)
    }
}

/// The current time, UTC, truncated to milliseconds (the precision of `ce-time`).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("milliseconds are a valid nanosecond value")
}
