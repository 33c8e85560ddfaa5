//! Viewers and publishers: a viewer's seat and token, heartbeats, leaving, the expiry of silent
//! viewers, and the publisher's token for the master stage.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::service::{MAX_ATTEMPTS, PoolService, PoolServiceError, SeatGranted, SeatRequest};
use crate::commands::publish::Attempt;
use crate::domain::stage_pool::{PoolError, PoolStage, SeatDecision, StagePool};
use crate::domain::user_id::UserId;
use crate::event_store::{NewEvent, Published};
use crate::events::id::derived_event_id;
use crate::events::{
    Event, RecordedHeartbeat, StageCreated, ViewerHeartbeatRecorded, ViewerJoined, ViewerLeft,
    ViewerTokenRenewed, cloudevents,
};
use crate::ivs::arn::StageArn;
use crate::ivs::{
    Capability, ParticipantToken, ProviderError, ReservedParticipant, StageProvider, TokenRequest,
};

impl PoolService {
    /// Seats a viewer (or keeps their seat) and mints their token (SUBSCRIBE, viewer TTL).
    /// `event_id` makes a retried request publish the same event (idempotency key). On the way it
    /// may reopen a draining stage or create an auto-scaled one (each its own pool event).
    /// Errors: the pool's rules (`STAGE_FULL`, `STAGE_LIMIT_REACHED`), the provider, the store,
    /// [`PoolServiceError::Contended`] after 20 lost races; a store error when the whole
    /// decision takes longer than the seat decision deadline (`ONAIR_SEAT_DECISION_DEADLINE_MS`, 8 s) (a NATS failover).
    #[tracing::instrument(skip_all, fields(user_id = %user), err(level = "info"))]
    pub async fn assign_viewer_seat(
        &self,
        user: &UserId,
        attributes: serde_json::Map<String, serde_json::Value>,
        token_attributes: BTreeMap<String, String>,
        event_id: Option<Uuid>,
    ) -> Result<SeatGranted, PoolServiceError> {
        let Some(queue) = &self.inner.seat_queue else {
            return self
                .within_deadline(async {
                    let _turn = self.turn().await?;
                    self.seat_locked(user, &attributes, &token_attributes, event_id)
                        .await
                })
                .await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = SeatRequest {
            user: user.clone(),
            attributes,
            token_attributes,
            event_id,
            reply,
        };
        self.within_deadline(async {
            let stopped = || {
                PoolServiceError::Store(crate::event_store::EventStoreError::Unavailable(
                    "the seat decider stopped".into(),
                ))
            };
            queue.send(request).await.map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        })
        .await
    }

    /// Seats one viewer (the path without seat batches, `ONAIR_SEAT_BATCHES=false`): decides
    /// against the view, prepares the token and publishes the event under the pool's guard,
    /// deciding again after a lost race ([`PoolServiceError::Contended`] after 20). Call with the
    /// decision lock held.
    pub(super) async fn seat_locked(
        &self,
        user: &UserId,
        attributes: &serde_json::Map<String, serde_json::Value>,
        token_attributes: &BTreeMap<String, String>,
        event_id: Option<Uuid>,
    ) -> Result<SeatGranted, PoolServiceError> {
        let limits = self.inner.settings.limits;
        // The provider's quota refusal, once met: seat below the cap or refuse with its reason.
        let refused: Mutex<Option<String>> = Mutex::new(None);
        let refused = &refused;
        self.retry(MAX_ATTEMPTS, move || async move {
            let stage_creation_refused = refused.lock().expect("refusal lock").clone();
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
            let at = self.now();
            let (stage_arn, renewing) = match decision? {
                SeatDecision::AlreadySeated { stage_arn } => (stage_arn, true),
                SeatDecision::Join { stage_arn } => (stage_arn, false),
                SeatDecision::ReopenStage { stage_arn } => {
                    let reopen = self.read(|p| p.decide_reopen(&stage_arn))?;
                    let new = NewEvent::new(at, Event::StageDrainEnded(reopen));
                    return Ok(match self.publish_pool_event(new, expected).await? {
                        Some(_) => {
                            tracing::info!(%stage_arn, "draining stage reopened");
                            Attempt::Again
                        }
                        None => Attempt::Conflicted,
                    });
                }
                SeatDecision::CreateStage => {
                    return match self.create_auto_stage(at, expected).await {
                        Ok(true) => Ok(Attempt::Again),
                        Ok(false) => Ok(Attempt::Conflicted),
                        Err(PoolServiceError::Provider(ProviderError::QuotaExceeded(reason))) => {
                            *refused.lock().expect("refusal lock") = Some(reason);
                            Ok(Attempt::Again)
                        }
                        Err(e) => Err(e),
                    };
                }
            };
            let token = SeatToken::prepare(
                &self.inner.provider,
                self.viewer_token_request(user, &stage_arn, token_attributes, at),
            )
            .await?;
            let event = seat_event(user, &stage_arn, &token, attributes, renewing);
            let mut new = NewEvent::new(at, event);
            if let Some(id) = event_id {
                new = new.with_id(id);
            }
            let Some(published) = self.publish_pool_event(new, expected).await? else {
                return Ok(Attempt::Conflicted);
            };
            let current_viewers = self.read(|p| {
                p.stage(&stage_arn)
                    .map(PoolStage::viewer_count)
                    .unwrap_or(0)
            });
            let token = token.mint(&self.inner.provider).await?;
            Ok(Attempt::Done(SeatGranted {
                stage_arn,
                token,
                current_viewers,
                published,
            }))
        })
        .await?
        .ok_or(PoolServiceError::Contended)
    }

    /// The viewer token request of a seat: SUBSCRIBE, the viewer token lifetime (1 h by default).
    pub(super) fn viewer_token_request(
        &self,
        user: &UserId,
        stage_arn: &str,
        token_attributes: &BTreeMap<String, String>,
        at: OffsetDateTime,
    ) -> TokenRequest {
        TokenRequest {
            stage_arn: stage_arn.to_owned(),
            user_id: format!("viewer-{user}"),
            capabilities: vec![Capability::Subscribe],
            duration_seconds: self.inner.settings.viewer_token_seconds,
            attributes: token_attributes.clone(),
            issued_at: at,
        }
    }

    /// Creates an auto-scaled stage at the provider and records it under the pool's guard:
    /// `Ok(true)` when stored, `Ok(false)` when another instance changed the pool first. Unless
    /// stored, the stage is deleted at the provider again (it was never announced).
    pub(super) async fn create_auto_stage(
        &self,
        at: OffsetDateTime,
        expected: u64,
    ) -> Result<bool, PoolServiceError> {
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
            Ok(Some(_)) => {
                tracing::info!(stage_arn = %stage.arn, "auto-scaled stage created");
                Ok(true)
            }
            stored => {
                // Another instance changed the pool first, or the store failed: this stage was
                // never announced.
                let _ = self.inner.provider.delete_stage(stage.arn).await;
                stored.map(|_| false).map_err(Into::into)
            }
        }
    }

    /// Mints a publisher token (PUBLISH, publisher TTL) for the master stage and records
    /// `onair.publisher.token_issued.v1`; returns the master stage's ARN, the token and the stored
    /// event. [`PoolServiceError::NoMasterStage`] before the master stage exists.
    #[tracing::instrument(skip_all, fields(user_id = %user), err(level = "info"))]
    pub async fn issue_publisher_token(
        &self,
        user: &UserId,
        token_attributes: BTreeMap<String, String>,
        event_id: Option<Uuid>,
    ) -> Result<(String, ParticipantToken, Published), PoolServiceError> {
        let stage_arn = self
            .read(|p| p.master().map(|s| s.arn.clone()))
            .ok_or(PoolServiceError::NoMasterStage)?;
        let at = self.now();
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

    /// Records a heartbeat of a seated viewer (the Stage API: every 30 s); returns its time and
    /// the stored event. A viewer not seated on `stage_arn` is refused (`NOT_FOUND`).
    ///
    /// The hottest write: it opens no span of its own (the request's span names the route) and
    /// logs a refusal itself.
    pub async fn record_heartbeat(
        &self,
        user: &UserId,
        stage_arn: &StageArn,
    ) -> Result<(OffsetDateTime, Published), PoolServiceError> {
        if let Err(e) = self
            .check_fresh(|p| p.check_heartbeat(user, stage_arn))
            .await
        {
            tracing::info!(user_id = %user, stage_arn = %stage_arn, error = %e, "heartbeat refused");
            return Err(e.into());
        }
        let at = self.now();
        if let Some(batcher) = &self.inner.heartbeats {
            let published = batcher
                .record(RecordedHeartbeat {
                    user_id: user.to_string(),
                    stage_arn: stage_arn.to_string(),
                    at,
                })
                .await
                .inspect_err(|e| {
                    tracing::info!(user_id = %user, stage_arn = %stage_arn, error = %e, "heartbeat not stored");
                })?;
            self.saw_own_heartbeat(user, stage_arn, at);
            return Ok((at, published));
        }
        let event = Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
            user_id: user.to_string(),
            stage_arn: stage_arn.to_string(),
        });
        let published = Box::pin(self.inner.store.publish(NewEvent::new(at, event))).await?;
        self.saw_own_heartbeat(user, stage_arn, at);
        Ok((at, published))
    }

    /// A heartbeat this instance stored counts in its own view at once (see
    /// [`Inner::saw_own_heartbeats`]).
    fn saw_own_heartbeat(&self, user: &UserId, stage_arn: &str, at: OffsetDateTime) {
        let event = Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
            user_id: user.to_string(),
            stage_arn: stage_arn.to_owned(),
        });
        self.inner.saw_own_heartbeats(at, event);
    }

    /// A viewer leaves; returns the session's event (with its watch duration). A viewer not seated
    /// on `stage_arn` is refused.
    #[tracing::instrument(skip_all, fields(user_id = %user, stage_arn), err(level = "info"))]
    pub async fn leave(
        &self,
        user: &UserId,
        stage_arn: &StageArn,
        event_id: Option<Uuid>,
    ) -> Result<(ViewerLeft, Published), PoolServiceError> {
        self.check_fresh(|p| p.decide_leave(user, stage_arn, self.now()).map(|_| ()))
            .await?;
        let _turn = self.turn().await?;
        self.decide_and_publish(
            |p, at| {
                let left = p.decide_leave(user, stage_arn, at)?;
                Ok((Event::ViewerLeft(left.clone()), left))
            },
            event_id,
        )
        .await
    }

    /// Expires every viewer silent longer than `timeout` (by the service's clock); returns how
    /// many were expired. Event ids are derived from the seat, so instances expiring the same
    /// viewer store one event.
    #[tracing::instrument(level = "debug", skip_all, err)]
    pub async fn expire_silent_viewers(
        &self,
        timeout: Duration,
    ) -> Result<usize, PoolServiceError> {
        let due = self.read(|p| p.decide_expiry(self.now(), timeout).len());
        if due == 0 {
            return Ok(0);
        }
        let _turn = self.inner.decide.lock().await;
        let expired_count = &AtomicUsize::new(0);
        // One event per silent viewer, plus room for lost races.
        self.retry(due + MAX_ATTEMPTS, move || async move {
            let at = self.now();
            let (expired, expected) = self.snapshot(|p| p.decide_expiry(at, timeout));
            let Some(first) = expired.into_iter().next() else {
                return Ok(Attempt::Done(()));
            };
            let id = derived_event_id(&[
                "viewer-expired",
                &first.user_id,
                &first.stage_arn,
                &cloudevents::format_time(first.joined_at),
            ]);
            let new = NewEvent::new(at, Event::ViewerExpired(first)).with_id(id);
            Ok(match self.publish_pool_event(new, expected).await? {
                Some(_) => {
                    expired_count.fetch_add(1, Ordering::Relaxed);
                    Attempt::Again
                }
                None => Attempt::Conflicted,
            })
        })
        .await?;
        Ok(expired_count.load(Ordering::Relaxed))
    }
}

/// The event of a seat with its token: `viewer.token_renewed` when the viewer kept their seat,
/// else `viewer.joined` with the request's attributes.
pub(super) fn seat_event(
    user: &UserId,
    stage_arn: &str,
    token: &SeatToken,
    attributes: &serde_json::Map<String, serde_json::Value>,
    renewing: bool,
) -> Event {
    let (participant_id, token_expires_at) = token.participant();
    if renewing {
        Event::ViewerTokenRenewed(ViewerTokenRenewed {
            user_id: user.to_string(),
            stage_arn: stage_arn.to_owned(),
            participant_id: participant_id.to_owned(),
            token_expires_at,
        })
    } else {
        Event::ViewerJoined(ViewerJoined {
            user_id: user.to_string(),
            stage_arn: stage_arn.to_owned(),
            participant_id: participant_id.to_owned(),
            token_expires_at,
            attributes: attributes.clone(),
        })
    }
}

/// A viewer's token while its seat is being stored. A provider that names the participant (an
/// IVS call) mints the token first; one that signs its tokens itself (the local signer) only
/// reserves the participant, and the token is signed once the seat's event is stored, so a seat
/// decided again after a lost race (another instance stored a pool event first) costs no
/// signature.
pub(super) enum SeatToken {
    /// Minted before the event.
    Minted(ParticipantToken),
    /// Reserved: minted by [`mint`](Self::mint) once the event is stored.
    Reserved(TokenRequest, ReservedParticipant),
}

impl SeatToken {
    /// Reserves the token of `request` when `provider` signs its tokens itself, else mints it.
    ///
    /// Errors: the provider's, when it mints.
    pub(super) async fn prepare(
        provider: &std::sync::Arc<dyn StageProvider>,
        request: TokenRequest,
    ) -> Result<Self, ProviderError> {
        match provider.reserve_participant(&request) {
            Some(reserved) => Ok(Self::Reserved(request, reserved)),
            None => provider
                .create_participant_token(request)
                .await
                .map(Self::Minted),
        }
    }

    /// The participant id and token expiry (UTC) that the seat's event records.
    pub(super) fn participant(&self) -> (&str, OffsetDateTime) {
        match self {
            Self::Minted(token) => (&token.participant_id, token.expires_at),
            Self::Reserved(_, reserved) => (&reserved.participant_id, reserved.expires_at),
        }
    }

    /// The token: the one minted, or the reserved one signed now. Call once the event is stored.
    ///
    /// Errors: the provider's [`ProviderError::Token`] when a reserved token cannot be signed
    /// (the seat is stored: asking again renews it).
    pub(super) async fn mint(
        self,
        provider: &std::sync::Arc<dyn StageProvider>,
    ) -> Result<ParticipantToken, ProviderError> {
        match self {
            Self::Minted(token) => Ok(token),
            Self::Reserved(request, reserved) => provider.mint_reserved(request, reserved).await,
        }
    }
}
