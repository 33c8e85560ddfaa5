//! The stage pool aggregate: which stages exist and who sits where (docs/design.md#invariants, 1).
//!
//! State is built only by [`StagePool::apply`] from events; decisions are pure functions of the state
//! and a command. The caller publishes the resulting events with the pool's expected sequence, so
//! two instances deciding at once cannot both take the last seat.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::user_id::UserId;
use crate::domain::watch_time::seconds_between;
use crate::events::{
    Event, EventEnvelope, StageDeleted, StageDeletionReason, StageDrainEnded, StageDrainStarted,
    StageRenamed, ViewerExpired, ViewerLeft,
};

/// Pool limits; defaults from the Stage API description's system limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLimits {
    /// Hard cap of active viewers on one stage (seed: 50).
    pub max_viewers_per_stage: u32,
    /// A stage with this many viewers takes no new ones while a new stage can be made (seed: 45).
    pub scale_up_threshold: u32,
    /// Most stages in the pool, master included (seed: 20).
    pub max_stages: u32,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            max_viewers_per_stage: 50,
            scale_up_threshold: 45,
            max_stages: 20,
        }
    }
}

/// One viewer's seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    /// IVS participant id of the user's latest viewer token (a renewal replaces it).
    pub participant_id: String,
    /// When the user took the seat (event time, UTC).
    pub joined_at: OffsetDateTime,
    /// Join time, the last heartbeat or the last token renewal, whichever is latest.
    pub last_seen_at: OffsetDateTime,
}

/// A stage as the pool knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStage {
    /// The stage ARN (`arn:aws:ivs:<region>:<account>:stage/<id>`).
    pub arn: String,
    /// Current stage name (renames apply).
    pub name: String,
    /// Created by scale-up (tag `AutoScaled=true`); only such stages are ever scaled down.
    pub auto_scaled: bool,
    /// The master stage, which publisher tokens are for; it is never deleted.
    pub is_master: bool,
    /// When the stage was created (event time, UTC).
    pub created_at: OffsetDateTime,
    /// The stage's tags as created.
    pub tags: BTreeMap<String, String>,
    /// Draining stages take no new viewers and are deleted once empty.
    pub draining: bool,
    /// Seats by user id.
    pub seats: BTreeMap<String, Seat>,
}

impl PoolStage {
    /// Active viewers seated on the stage.
    pub fn viewer_count(&self) -> u32 {
        self.seats.len() as u32
    }
}

/// Where a viewer token request should seat the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeatDecision {
    /// The user already holds a seat there; a token is renewed, no seat is taken.
    AlreadySeated {
        /// The stage the user sits on.
        stage_arn: String,
    },
    /// Take a seat on this stage.
    Join {
        /// The stage to seat the user on.
        stage_arn: String,
    },
    /// Every stage is at the scale-up threshold and the pool may grow: create an auto-scaled stage
    /// first, then decide again.
    CreateStage,
    /// Every open stage is full but a draining stage has room: end its draining, then decide again.
    ReopenStage {
        /// The draining stage to reopen.
        stage_arn: String,
    },
}

/// Scale-down thresholds (the Stage API: an auto-scaled stage with fewer than 5 viewers that
/// exists for more than 5 minutes is removed; here it drains first and never loses a viewer,
/// docs/design.md#decided-open-points).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleDownPolicy {
    /// An auto-scaled stage with fewer viewers than this starts draining.
    pub min_viewers: u32,
    /// ... once it is at least this old.
    pub min_age: Duration,
}

impl Default for ScaleDownPolicy {
    fn default() -> Self {
        Self {
            min_viewers: 5,
            min_age: Duration::from_secs(300),
        }
    }
}

/// A rule of the pool said no.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every stage is at the hard cap and the pool is at its stage limit (HTTP 503 `STAGE_FULL`).
    #[error("all stages are full ({max_viewers_per_stage} viewers each, {stages} stages)")]
    StageFull {
        /// Stages in the pool.
        stages: u32,
        /// The per-stage cap every stage has reached.
        max_viewers_per_stage: u32,
    },
    /// A new stage was needed but could not be created (HTTP 503 `STAGE_LIMIT_REACHED`).
    #[error("a new stage is needed but none can be created: {reason}")]
    StageLimitReached {
        /// Why: the pool's stage limit, or the provider's refusal (e.g. an IVS quota).
        reason: String,
    },
    /// No stage with that ARN is in the pool (HTTP 404 `NOT_FOUND`).
    #[error("stage {0} not found")]
    StageNotFound(String),
    /// The master stage cannot be deleted (HTTP 403 `FORBIDDEN`).
    #[error("the master stage cannot be deleted")]
    MasterStage,
    /// A stage with viewers cannot be deleted (HTTP 400 `VALIDATION_ERROR`).
    #[error("stage {stage_arn} still has {viewers} viewers")]
    StageHasViewers {
        /// The stage asked for.
        stage_arn: String,
        /// Viewers still seated on it.
        viewers: u32,
    },
    /// The user holds no seat on that stage (HTTP 404 `NOT_FOUND`).
    #[error("viewer {user_id} is not on stage {stage_arn}; request a viewer token first")]
    NotSeated {
        /// The client's user id.
        user_id: String,
        /// The stage named in the request.
        stage_arn: String,
    },
}

/// The pool's state, folded from its events.
#[derive(Clone, Debug, Default)]
pub struct StagePool {
    stages: BTreeMap<String, PoolStage>,
    seat_of: HashMap<String, String>,
}

impl StagePool {
    /// Folds one event in. Events of other aggregates are ignored.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::StageCreated(e) => {
                self.stages
                    .entry(e.stage_arn.clone())
                    .or_insert_with(|| PoolStage {
                        arn: e.stage_arn.clone(),
                        name: e.name.clone(),
                        auto_scaled: e.auto_scaled,
                        is_master: e.is_master,
                        created_at: at,
                        tags: e.tags.clone(),
                        draining: false,
                        seats: BTreeMap::new(),
                    });
            }
            Event::StageRenamed(e) => {
                if let Some(stage) = self.stages.get_mut(&e.stage_arn) {
                    stage.name = e.name.clone();
                }
            }
            Event::StageDrainStarted(e) => {
                if let Some(stage) = self.stages.get_mut(&e.stage_arn) {
                    stage.draining = true;
                }
            }
            Event::StageDrainEnded(e) => {
                if let Some(stage) = self.stages.get_mut(&e.stage_arn) {
                    stage.draining = false;
                }
            }
            Event::StageDeleted(e) => {
                if let Some(stage) = self.stages.remove(&e.stage_arn) {
                    for user in stage.seats.keys() {
                        self.seat_of.remove(user);
                    }
                }
            }
            Event::ViewerJoined(e) => {
                self.remove_seat(&e.user_id);
                if let Some(stage) = self.stages.get_mut(&e.stage_arn) {
                    stage.seats.insert(
                        e.user_id.clone(),
                        Seat {
                            participant_id: e.participant_id.clone(),
                            joined_at: at,
                            last_seen_at: at,
                        },
                    );
                    self.seat_of.insert(e.user_id.clone(), e.stage_arn.clone());
                }
            }
            Event::ViewerTokenRenewed(e) => {
                if let Some(seat) = self.seat_mut(&e.user_id, &e.stage_arn) {
                    seat.participant_id = e.participant_id.clone();
                    seat.last_seen_at = seat.last_seen_at.max(at);
                }
            }
            Event::ViewerHeartbeatRecorded(e) => {
                if let Some(seat) = self.seat_mut(&e.user_id, &e.stage_arn) {
                    seat.last_seen_at = seat.last_seen_at.max(at);
                }
            }
            Event::ViewerHeartbeatsRecorded(batch) => {
                for beat in &batch.heartbeats {
                    if let Some(seat) = self.seat_mut(&beat.user_id, &beat.stage_arn) {
                        seat.last_seen_at = seat.last_seen_at.max(beat.at);
                    }
                }
            }
            Event::ViewerLeft(ViewerLeft { user_id, .. })
            | Event::ViewerExpired(ViewerExpired { user_id, .. }) => {
                self.remove_seat(user_id);
            }
            _ => {}
        }
    }

    fn seat_mut(&mut self, user_id: &str, stage_arn: &str) -> Option<&mut Seat> {
        self.stages.get_mut(stage_arn)?.seats.get_mut(user_id)
    }

    fn remove_seat(&mut self, user_id: &str) {
        if let Some(arn) = self.seat_of.remove(user_id)
            && let Some(stage) = self.stages.get_mut(&arn)
        {
            stage.seats.remove(user_id);
        }
    }

    /// The master stage, once created.
    pub fn master(&self) -> Option<&PoolStage> {
        self.stages.values().find(|s| s.is_master)
    }

    /// The stage with this ARN, if the pool holds it.
    pub fn stage(&self, arn: &str) -> Option<&PoolStage> {
        self.stages.get(arn)
    }

    /// All stages, master first, then by creation time.
    pub fn stages(&self) -> Vec<&PoolStage> {
        let mut stages: Vec<_> = self.stages.values().collect();
        stages.sort_by(|a, b| {
            b.is_master
                .cmp(&a.is_master)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.arn.cmp(&b.arn))
        });
        stages
    }

    /// The stage and seat a user holds, if any.
    pub fn seat_of(&self, user_id: &str) -> Option<(&PoolStage, &Seat)> {
        let stage = self.stages.get(self.seat_of.get(user_id)?)?;
        Some((stage, stage.seats.get(user_id)?))
    }

    /// Active viewers seated across every stage of the pool.
    pub fn total_viewers(&self) -> u32 {
        self.seat_of.len() as u32
    }

    /// The least-loaded open (not draining) stage with fewer than `below` viewers (ties: master,
    /// then oldest).
    fn least_loaded_below(&self, below: u32) -> Option<&PoolStage> {
        self.stages()
            .into_iter()
            .filter(|s| !s.draining && s.viewer_count() < below)
            .min_by_key(|s| s.viewer_count())
    }

    /// The fullest draining stage with fewer than `below` viewers: the one to reopen first.
    fn draining_with_room(&self, below: u32) -> Option<&PoolStage> {
        self.stages()
            .into_iter()
            .filter(|s| s.draining && s.viewer_count() < below)
            .max_by_key(|s| s.viewer_count())
    }

    /// Where a viewer token request seats `user` (docs/design.md#decided-open-points): the user's
    /// own seat if they have one; else the least-loaded stage below the scale-up threshold; else a
    /// draining stage below it, reopened; else a new auto-scaled stage if the pool is below its
    /// stage limit; else the least-loaded stage (or a draining one, reopened) below the hard cap;
    /// else [`PoolError::StageFull`].
    pub fn decide_seat(
        &self,
        user: &UserId,
        limits: PoolLimits,
    ) -> Result<SeatDecision, PoolError> {
        if let Some((stage, _)) = self.seat_of(user.as_str()) {
            return Ok(SeatDecision::AlreadySeated {
                stage_arn: stage.arn.clone(),
            });
        }
        let threshold = limits.scale_up_threshold.min(limits.max_viewers_per_stage);
        if let Some(stage) = self.least_loaded_below(threshold) {
            return Ok(SeatDecision::Join {
                stage_arn: stage.arn.clone(),
            });
        }
        if let Some(stage) = self.draining_with_room(threshold) {
            return Ok(SeatDecision::ReopenStage {
                stage_arn: stage.arn.clone(),
            });
        }
        if (self.stages.len() as u32) < limits.max_stages {
            return Ok(SeatDecision::CreateStage);
        }
        self.seat_below_cap(limits)
    }

    /// The seat to give when no stage can be created: the least-loaded stage below the hard cap.
    pub fn seat_below_cap(&self, limits: PoolLimits) -> Result<SeatDecision, PoolError> {
        if let Some(stage) = self.least_loaded_below(limits.max_viewers_per_stage) {
            return Ok(SeatDecision::Join {
                stage_arn: stage.arn.clone(),
            });
        }
        match self.draining_with_room(limits.max_viewers_per_stage) {
            Some(stage) => Ok(SeatDecision::ReopenStage {
                stage_arn: stage.arn.clone(),
            }),
            None => Err(PoolError::StageFull {
                stages: self.stages.len() as u32,
                max_viewers_per_stage: limits.max_viewers_per_stage,
            }),
        }
    }

    /// The name of the next auto-scaled stage, `auto-stage-<unix ms>` as in the seed.
    pub fn auto_stage_name(at: OffsetDateTime) -> String {
        format!("auto-stage-{}", at.unix_timestamp_nanos() / 1_000_000)
    }

    /// An operator may add a stage while the pool is below its stage limit.
    pub fn decide_create_stage(&self, limits: PoolLimits) -> Result<(), PoolError> {
        if (self.stages.len() as u32) < limits.max_stages {
            Ok(())
        } else {
            Err(PoolError::StageLimitReached {
                reason: format!("the pool holds its limit of {} stages", limits.max_stages),
            })
        }
    }

    /// Renames a stage of the pool.
    pub fn decide_rename(&self, stage_arn: &str, name: &str) -> Result<StageRenamed, PoolError> {
        self.stages
            .get(stage_arn)
            .ok_or_else(|| PoolError::StageNotFound(stage_arn.to_owned()))?;
        Ok(StageRenamed {
            stage_arn: stage_arn.to_owned(),
            name: name.to_owned(),
        })
    }

    /// An operator deletes a stage: never the master, never one with viewers (docs/api.md#routes).
    pub fn decide_delete(&self, stage_arn: &str) -> Result<StageDeleted, PoolError> {
        let stage = self
            .stages
            .get(stage_arn)
            .ok_or_else(|| PoolError::StageNotFound(stage_arn.to_owned()))?;
        if stage.is_master {
            return Err(PoolError::MasterStage);
        }
        if stage.viewer_count() > 0 {
            return Err(PoolError::StageHasViewers {
                stage_arn: stage_arn.to_owned(),
                viewers: stage.viewer_count(),
            });
        }
        Ok(StageDeleted {
            stage_arn: stage_arn.to_owned(),
            reason: StageDeletionReason::Operator,
        })
    }

    /// Reopens a draining stage.
    pub fn decide_reopen(&self, stage_arn: &str) -> Result<StageDrainEnded, PoolError> {
        let stage = self
            .stages
            .get(stage_arn)
            .ok_or_else(|| PoolError::StageNotFound(stage_arn.to_owned()))?;
        Ok(StageDrainEnded {
            stage_arn: stage_arn.to_owned(),
            viewer_count: stage.viewer_count(),
        })
    }

    /// The next scale-down step at `now`, if any: an empty draining auto-scaled stage is deleted;
    /// an open auto-scaled stage with fewer than `min_viewers`, at least `min_age` old, starts
    /// draining. Nobody is ever disconnected. One event at a time: the caller publishes it and asks
    /// again.
    pub fn decide_scale_down(&self, now: OffsetDateTime, policy: ScaleDownPolicy) -> Option<Event> {
        let auto = self
            .stages()
            .into_iter()
            .filter(|s| s.auto_scaled && !s.is_master);
        for stage in auto {
            if stage.draining && stage.viewer_count() == 0 {
                return Some(Event::StageDeleted(StageDeleted {
                    stage_arn: stage.arn.clone(),
                    reason: StageDeletionReason::ScaleDown,
                }));
            }
            if !stage.draining
                && stage.viewer_count() < policy.min_viewers
                && now - stage.created_at >= policy.min_age
            {
                return Some(Event::StageDrainStarted(StageDrainStarted {
                    stage_arn: stage.arn.clone(),
                    viewer_count: stage.viewer_count(),
                }));
            }
        }
        None
    }

    /// Checks that a heartbeat comes from a seated viewer of that stage.
    pub fn check_heartbeat(&self, user: &UserId, stage_arn: &str) -> Result<(), PoolError> {
        self.seated_on(user, stage_arn).map(|_| ())
    }

    fn seated_on(&self, user: &UserId, stage_arn: &str) -> Result<&Seat, PoolError> {
        let stage = self
            .stages
            .get(stage_arn)
            .ok_or_else(|| PoolError::StageNotFound(stage_arn.to_owned()))?;
        stage
            .seats
            .get(user.as_str())
            .ok_or_else(|| PoolError::NotSeated {
                user_id: user.to_string(),
                stage_arn: stage_arn.to_owned(),
            })
    }

    /// A viewer leaves: the session lasted from the join to `at`.
    pub fn decide_leave(
        &self,
        user: &UserId,
        stage_arn: &str,
        at: OffsetDateTime,
    ) -> Result<ViewerLeft, PoolError> {
        let seat = self.seated_on(user, stage_arn)?;
        Ok(ViewerLeft {
            user_id: user.to_string(),
            stage_arn: stage_arn.to_owned(),
            joined_at: seat.joined_at,
            watch_duration_seconds: seconds_between(seat.joined_at, at.max(seat.joined_at)),
        })
    }

    /// Viewers silent for longer than `timeout` at `now` lose their seat (the Stage API: 60 s);
    /// their session ends at their last sign of life.
    pub fn decide_expiry(&self, now: OffsetDateTime, timeout: Duration) -> Vec<ViewerExpired> {
        let mut expired = Vec::new();
        for stage in self.stages() {
            for (user_id, seat) in &stage.seats {
                if now - seat.last_seen_at > timeout {
                    expired.push(ViewerExpired {
                        user_id: user_id.clone(),
                        stage_arn: stage.arn.clone(),
                        joined_at: seat.joined_at,
                        last_seen_at: seat.last_seen_at,
                        watch_duration_seconds: seconds_between(seat.joined_at, seat.last_seen_at),
                    });
                }
            }
        }
        expired
    }
}

#[cfg(test)]
#[path = "stage_pool_tests.rs"]
mod tests;
