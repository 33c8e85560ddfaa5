//! Seat decisions in batches: the viewer token requests that queue on an instance while it decides
//! are decided together, against one view of the pool, their tokens minted at once (a task each),
//! and their events (one `onair.viewer.joined.v1` or `token_renewed.v1` per viewer) stored as one
//! chain ([`EventStore::publish_chain`](crate::event_store::EventStore::publish_chain)): the first
//! guarded by the pool's expected sequence, each later one by the sequence the one before it got.
//! What is stored is a prefix of the chain, exactly as decided; the requests after a break
//! (another instance's pool event came in between) are decided again.
//!
//! This is group commit without a timer: the first request is decided at once; while its batch is
//! being decided and stored, the requests that arrive queue, and the next batch takes them all.
//! Two instances seating at once still race through the pool's guard, but a lost race costs one
//! batch one more round, not each request 20 attempts: the conflict storm of one guarded publish
//! per seat is gone.
//!
//! (Why not JetStream's atomic batches or a pipelined chain: see
//! [`EventStore::publish_chain`](crate::event_store::EventStore::publish_chain).)
//!
//! A batch stops before a decision that changes the pool's stages (create an auto-scaled stage,
//! reopen a draining one): the seats decided so far are stored, the stage change is made as its own
//! guarded event, and the rest are decided again against the new pool. A lone request is a batch of
//! one: like any batch, it is decided again after a lost race until its decision deadline, with no
//! attempt count (the one-seat path, [`PoolService::seat_locked`], serves `ONAIR_SEAT_BATCHES=false`).

use std::sync::Weak;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::seats::{SeatToken, seat_event};
use super::service::{
    CATCH_UP_WAIT, Inner, PoolService, PoolServiceError, SeatGranted, SeatRequest,
};
use crate::commands::publish::SubjectGuard;
use crate::domain::stage_pool::{PoolError, PoolStage, SeatDecision, StagePool};
use crate::domain::user_id::UserId;
use crate::event_store::{EventStoreError, NewEvent};
use crate::events::{Event, EventEnvelope, ViewerJoined, pool_subject_filter};
use crate::ivs::ProviderError;

/// Most seats decided and stored as one chain.
pub const MAX_SEATS_PER_BATCH: usize = 256;
/// Requests queued for the deciding task before senders wait.
const QUEUE: usize = 8192;

/// Starts the deciding task of `inner`'s pool; returns the queue requests are sent on. The task
/// holds the pool weakly and ends with it.
pub(super) fn start(inner: Weak<Inner>) -> mpsc::Sender<SeatRequest> {
    let (queue, mut rx) = mpsc::channel::<SeatRequest>(QUEUE);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_SEATS_PER_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let Some(inner) = inner.upgrade() else { return };
            let service = PoolService { inner };
            metrics::histogram!("onair_seat_batch_size").record(batch.len() as f64);
            service.seat_batch(batch).await;
        }
    });
    queue
}

/// A seat decided in a batch, before its token is minted.
struct Decided {
    request: SeatRequest,
    stage_arn: String,
    renewing: bool,
}

impl PoolService {
    /// Decides and stores the seats of `requests` (see the module's doc), answering each request.
    async fn seat_batch(&self, mut pending: Vec<SeatRequest>) {
        // Requests whose caller gave up (the seat decision deadline) are not decided.
        pending.retain(|r| !r.reply.is_closed());
        let Ok(_turn) = self.turn().await else { return };
        let limits = self.inner.settings.limits;
        let mut refused: Option<String> = None;
        while !pending.is_empty() {
            pending.retain(|r| !r.reply.is_closed());
            if pending.is_empty() {
                return;
            }
            let at = self.now();
            // Decide in order, each seat taken before the next decision; stop before a stage
            // change. Decisions read the view itself until the first join, then a scratch copy
            // of the pool holding the batch's seats (renewals alone copy nothing).
            let mut decided = Vec::new();
            let mut stage_change = None;
            let mut rest = Vec::new();
            let expected = {
                let view = self.inner.view.read().expect("view lock");
                let mut scratch: Option<StagePool> = None;
                for request in pending.drain(..) {
                    if stage_change.is_some() {
                        rest.push(request);
                        continue;
                    }
                    let pool = scratch.as_ref().unwrap_or(&view.pool);
                    match decide(pool, &request.user, limits, refused.as_deref()) {
                        Ok(SeatDecision::AlreadySeated { stage_arn }) => decided.push(Decided {
                            request,
                            stage_arn,
                            renewing: true,
                        }),
                        Ok(SeatDecision::Join { stage_arn }) => {
                            let batch_pool = scratch.get_or_insert_with(|| view.pool.clone());
                            take_seat(batch_pool, &request.user, &stage_arn, at);
                            decided.push(Decided {
                                request,
                                stage_arn,
                                renewing: false,
                            });
                        }
                        Ok(change) => {
                            stage_change = Some(change);
                            rest.push(request);
                        }
                        Err(rule) => {
                            let _ = request.reply.send(Err(rule.into()));
                        }
                    }
                }
                view.pool_sequence
            };
            pending = rest;
            if !decided.is_empty() {
                match self.store_seats(decided, expected, at).await {
                    Stored::All => {}
                    Stored::Prefix(back) => pending.splice(0..0, back).for_each(drop),
                    Stored::Conflicted(back) => {
                        // Another instance stored a pool event first: catch up with the stream's
                        // newest pool event, then decide again. No attempt count: a request gives
                        // up at its decision deadline (its reply closes, and it is dropped).
                        pending.splice(0..0, back).for_each(drop);
                        self.catch_up_after_conflict().await;
                    }
                }
                continue;
            }
            // Nothing decided: the first request needs a stage change first.
            match stage_change {
                Some(SeatDecision::ReopenStage { stage_arn }) => {
                    match self.reopen_stage(&stage_arn, expected, at).await {
                        Ok(true) => {}
                        Ok(false) => self.wait_for_change(CATCH_UP_WAIT).await,
                        Err(e) => fail_first(&mut pending, e),
                    }
                }
                Some(SeatDecision::CreateStage) => {
                    match self.create_auto_stage(at, expected).await {
                        Ok(true) => {}
                        Ok(false) => self.wait_for_change(CATCH_UP_WAIT).await,
                        Err(PoolServiceError::Provider(ProviderError::QuotaExceeded(reason))) => {
                            refused = Some(reason);
                        }
                        Err(e) => fail_first(&mut pending, e),
                    }
                }
                _ => {}
            }
        }
    }

    /// Reopens a draining stage under the pool's guard: `Ok(false)` when another instance changed
    /// the pool first.
    async fn reopen_stage(
        &self,
        stage_arn: &str,
        expected: u64,
        at: OffsetDateTime,
    ) -> Result<bool, PoolServiceError> {
        let reopen = self.read(|p| p.decide_reopen(stage_arn))?;
        let new = NewEvent::new(at, Event::StageDrainEnded(reopen));
        let stored = self.publish_pool_event(new, expected).await?.is_some();
        if stored {
            tracing::info!(%stage_arn, "draining stage reopened");
        }
        Ok(stored)
    }

    /// Stores the seats of `decided` as one chain of events guarded by `expected` and answers
    /// each request stored with its token ([`SeatToken`]: minted before the chain by a provider
    /// that names the participant, signed after it, for the stored seats only, by one that signs
    /// itself). The others are given back to decide again.
    async fn store_seats(
        &self,
        decided: Vec<Decided>,
        expected: u64,
        at: OffsetDateTime,
    ) -> Stored {
        // Each token is prepared in a task of its own: a provider that signs its tokens itself
        // only reserves the participant (the tokens of the seats stored are signed below), the
        // IVS calls of one that names the participant run at once.
        let tasks: Vec<_> = decided
            .iter()
            .map(|d| {
                let provider = self.inner.provider.clone();
                let request = self.viewer_token_request(
                    &d.request.user,
                    &d.stage_arn,
                    &d.request.token_attributes,
                    at,
                );
                tokio::spawn(async move { SeatToken::prepare(&provider, request).await })
            })
            .collect();
        let mut minted = Vec::with_capacity(decided.len());
        for (d, task) in decided.into_iter().zip(tasks) {
            let token = task.await.unwrap_or_else(|e| {
                Err(ProviderError::Token(format!(
                    "the token was not minted: {e}"
                )))
            });
            match token {
                Ok(token) => minted.push((d, token)),
                Err(e) => {
                    let _ = d.request.reply.send(Err(e.into()));
                }
            }
        }
        if minted.is_empty() {
            return Stored::All;
        }
        let guard = SubjectGuard {
            subject_filter: pool_subject_filter(),
            last_sequence: expected,
        };
        let events: Vec<NewEvent> = minted
            .iter()
            .enumerate()
            .map(|(i, (d, token))| {
                let event = seat_event(
                    &d.request.user,
                    &d.stage_arn,
                    token,
                    &d.request.attributes,
                    d.renewing,
                );
                let mut new = NewEvent::new(at, event);
                if let Some(id) = d.request.event_id {
                    new = new.with_id(id);
                }
                if i == 0 {
                    new = new.expecting(guard.subject_filter.clone(), guard.last_sequence);
                }
                new
            })
            .collect();
        let mut results = self.inner.store.publish_chain(&events).await.into_iter();
        let mut back = Vec::new();
        let mut conflicted = false;
        for ((d, token), new) in minted.into_iter().zip(&events) {
            match results.next() {
                Some(Ok(published)) => {
                    self.apply(&EventEnvelope {
                        id: new.id,
                        occurred_at: new.occurred_at,
                        sequence: published.sequence,
                        event: new.event.clone(),
                    });
                    let current_viewers = self.read(|p| {
                        p.stage(&d.stage_arn)
                            .map(PoolStage::viewer_count)
                            .unwrap_or(0)
                    });
                    // Reserved tokens are signed now, only for the seats stored, each in a task
                    // of its own that answers its request: the signatures run on every core
                    // while the decider goes on with the next batch.
                    let provider = self.inner.provider.clone();
                    let Decided {
                        request, stage_arn, ..
                    } = d;
                    tokio::spawn(async move {
                        let answer = token.mint(&provider).await.map(|token| SeatGranted {
                            stage_arn,
                            token,
                            current_viewers,
                            published,
                        });
                        let _ = request.reply.send(answer.map_err(Into::into));
                    });
                }
                Some(Err(EventStoreError::Conflict { .. })) => {
                    conflicted = true;
                    back.push(d.request);
                }
                Some(Err(EventStoreError::ChainBroken)) | None => back.push(d.request),
                Some(Err(e)) => {
                    let _ = d.request.reply.send(Err(PoolServiceError::Store(e)));
                }
            }
        }
        if !back.is_empty() {
            // Decided but not stored: decided again (by a provider that mints first, their
            // tokens are minted again).
            let reason = if conflicted {
                "conflict"
            } else {
                "chain_broken"
            };
            metrics::counter!("onair_seat_batch_requests_redecided_total", "reason" => reason)
                .increment(back.len() as u64);
        }
        match (back.is_empty(), conflicted) {
            (true, _) => Stored::All,
            (false, true) => Stored::Conflicted(back),
            (false, false) => Stored::Prefix(back),
        }
    }
}

/// What storing a batch came to.
enum Stored {
    /// Every request was answered.
    All,
    /// A prefix was stored and answered; another message came in before the rest, which are to
    /// decide again at once.
    Prefix(Vec<SeatRequest>),
    /// The pool's guard refused the first event (another instance changed the pool first): these
    /// requests are to decide again once the view has caught up.
    Conflicted(Vec<SeatRequest>),
}

/// The seat decision for `user`, or, once the provider refused a new stage (`refused`), the seat
/// below the hard cap (the Stage API's defaults: at most 20 stages, 50 viewers each).
fn decide(
    pool: &StagePool,
    user: &UserId,
    limits: crate::domain::stage_pool::PoolLimits,
    refused: Option<&str>,
) -> Result<SeatDecision, PoolError> {
    match (pool.decide_seat(user, limits), refused) {
        (Ok(SeatDecision::CreateStage), Some(reason)) => {
            pool.seat_below_cap(limits)
                .map_err(|_| PoolError::StageLimitReached {
                    reason: reason.to_owned(),
                })
        }
        (decision, _) => decision,
    }
}

/// Seats `user` on `stage_arn` in the scratch pool, so the next decision of the batch counts it.
fn take_seat(pool: &mut StagePool, user: &UserId, stage_arn: &str, at: OffsetDateTime) {
    pool.apply(&EventEnvelope {
        id: Uuid::nil(),
        occurred_at: at,
        sequence: 0,
        event: Event::ViewerJoined(ViewerJoined {
            user_id: user.to_string(),
            stage_arn: stage_arn.to_owned(),
            participant_id: String::new(),
            token_expires_at: at,
            attributes: serde_json::Map::new(),
        }),
    });
}

/// Answers the first pending request (the one whose decision needed the stage change that failed)
/// with `error`; the others are decided again.
fn fail_first(pending: &mut Vec<SeatRequest>, error: PoolServiceError) {
    if !pending.is_empty() {
        let _ = pending.remove(0).reply.send(Err(error));
    }
}
