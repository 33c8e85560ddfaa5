//! Given/when/then tests of the stage pool: seating, scaling, draining and expiry (src/domain/stage_pool.rs).

use super::*;
use crate::events::{
    RecordedHeartbeat, StageCreated, ViewerHeartbeatRecorded, ViewerHeartbeatsRecorded,
    ViewerJoined,
};
use time::macros::datetime;
use uuid::Uuid;

const T0: OffsetDateTime = datetime!(2025-10-19 12:00:00 UTC);

struct Given {
    pool: StagePool,
    seq: u64,
}

fn given() -> Given {
    Given {
        pool: StagePool::default(),
        seq: 0,
    }
}

impl Given {
    fn event(mut self, at: OffsetDateTime, event: Event) -> Self {
        self.seq += 1;
        self.pool.apply(&EventEnvelope {
            id: Uuid::now_v7(),
            occurred_at: at,
            sequence: self.seq,
            event,
        });
        self
    }
    fn stage(self, arn: &str, is_master: bool) -> Self {
        self.event(
            T0,
            Event::StageCreated(StageCreated {
                stage_arn: arn.into(),
                name: arn.into(),
                auto_scaled: !is_master,
                is_master,
                tags: Default::default(),
            }),
        )
    }
    fn viewers(mut self, arn: &str, n: usize) -> Self {
        for i in 0..n {
            self = self.joined(&format!("{arn}-v{i}"), arn, T0);
        }
        self
    }
    fn joined(self, user: &str, arn: &str, at: OffsetDateTime) -> Self {
        self.event(
            at,
            Event::ViewerJoined(ViewerJoined {
                user_id: user.into(),
                stage_arn: arn.into(),
                participant_id: format!("p-{user}"),
                token_expires_at: at + time::Duration::hours(1),
                attributes: Default::default(),
            }),
        )
    }
}

fn user(id: &str) -> UserId {
    UserId::parse(id, "userId").unwrap()
}

#[test]
fn a_new_viewer_joins_the_least_loaded_stage() {
    let g = given()
        .stage("master", true)
        .stage("auto", false)
        .viewers("master", 10)
        .viewers("auto", 3);
    assert_eq!(
        g.pool.decide_seat(&user("new"), PoolLimits::default()),
        Ok(SeatDecision::Join {
            stage_arn: "auto".into()
        })
    );
}

#[test]
fn the_46th_viewer_needs_a_new_stage() {
    let g = given().stage("master", true).viewers("master", 45);
    assert_eq!(
        g.pool.decide_seat(&user("v46"), PoolLimits::default()),
        Ok(SeatDecision::CreateStage)
    );
}

#[test]
fn at_the_stage_limit_stages_fill_up_to_the_hard_cap_then_refuse() {
    let limits = PoolLimits {
        max_stages: 1,
        ..Default::default()
    };
    let g = given().stage("master", true).viewers("master", 49);
    assert_eq!(
        g.pool.decide_seat(&user("v50"), limits),
        Ok(SeatDecision::Join {
            stage_arn: "master".into()
        })
    );
    let g = g.joined("v50", "master", T0);
    assert_eq!(
        g.pool.decide_seat(&user("v51"), limits),
        Err(PoolError::StageFull {
            stages: 1,
            max_viewers_per_stage: 50
        })
    );
}

#[test]
fn a_seated_user_keeps_their_one_seat() {
    let g = given()
        .stage("master", true)
        .stage("auto", false)
        .joined("u", "auto", T0);
    assert_eq!(
        g.pool.decide_seat(&user("u"), PoolLimits::default()),
        Ok(SeatDecision::AlreadySeated {
            stage_arn: "auto".into()
        })
    );
    assert_eq!(g.pool.total_viewers(), 1);
}

#[test]
fn leaving_reports_the_session_length_and_frees_the_seat() {
    let g = given().stage("master", true).joined("u", "master", T0);
    let left = g
        .pool
        .decide_leave(&user("u"), "master", T0 + time::Duration::seconds(1850))
        .unwrap();
    assert_eq!(left.watch_duration_seconds, 1850);
    let g = g.event(T0, Event::ViewerLeft(left));
    assert_eq!(g.pool.total_viewers(), 0);
    assert!(matches!(
        g.pool.decide_leave(&user("u"), "master", T0),
        Err(PoolError::NotSeated { .. })
    ));
}

#[test]
fn heartbeats_only_count_for_the_stage_the_viewer_sits_on() {
    let g = given()
        .stage("master", true)
        .stage("auto", false)
        .joined("u", "master", T0);
    assert!(g.pool.check_heartbeat(&user("u"), "master").is_ok());
    assert!(matches!(
        g.pool.check_heartbeat(&user("u"), "auto"),
        Err(PoolError::NotSeated { .. })
    ));
    assert!(matches!(
        g.pool.check_heartbeat(&user("u"), "nope"),
        Err(PoolError::StageNotFound(_))
    ));
}

#[test]
fn a_viewer_silent_past_the_timeout_expires_at_their_last_heartbeat() {
    let timeout = Duration::from_secs(60);
    let g = given()
        .stage("master", true)
        .joined("quiet", "master", T0)
        .joined("chatty", "master", T0)
        .event(
            T0 + time::Duration::seconds(30),
            Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
                user_id: "quiet".into(),
                stage_arn: "master".into(),
            }),
        )
        .event(
            T0 + time::Duration::seconds(80),
            Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
                user_id: "chatty".into(),
                stage_arn: "master".into(),
            }),
        );
    let expired = g
        .pool
        .decide_expiry(T0 + time::Duration::seconds(91), timeout);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].user_id, "quiet");
    assert_eq!(expired[0].watch_duration_seconds, 30);
    assert!(
        g.pool
            .decide_expiry(T0 + time::Duration::seconds(90), timeout)
            .is_empty()
    );
}

#[test]
fn a_batch_of_heartbeats_keeps_each_seat_at_its_own_time() {
    let timeout = Duration::from_secs(60);
    let beat = |user: &str, secs: i64| RecordedHeartbeat {
        user_id: user.into(),
        stage_arn: "master".into(),
        at: T0 + time::Duration::seconds(secs),
    };
    let g = given()
        .stage("master", true)
        .joined("quiet", "master", T0)
        .joined("chatty", "master", T0)
        .event(
            T0 + time::Duration::seconds(80),
            Event::ViewerHeartbeatsRecorded(ViewerHeartbeatsRecorded {
                heartbeats: vec![beat("quiet", 30), beat("chatty", 80), beat("nobody", 80)],
            }),
        );
    let expired = g
        .pool
        .decide_expiry(T0 + time::Duration::seconds(91), timeout);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].user_id, "quiet");
    assert_eq!(expired[0].watch_duration_seconds, 30);
}

fn drain_of(g: &Given, at: OffsetDateTime) -> Option<Event> {
    g.pool.decide_scale_down(at, ScaleDownPolicy::default())
}

#[test]
fn a_quiet_old_auto_scaled_stage_drains_then_is_deleted_when_empty() {
    let g = given()
        .stage("master", true)
        .stage("auto", false)
        .viewers("auto", 4);
    // Too young.
    assert_eq!(drain_of(&g, T0 + time::Duration::seconds(299)), None);
    let later = T0 + time::Duration::seconds(300);
    let Some(drain @ Event::StageDrainStarted(_)) = drain_of(&g, later) else {
        panic!("expected a drain");
    };
    let mut g = g.event(later, drain);
    assert_eq!(drain_of(&g, later), None, "viewers are never kicked");
    // Draining stages take no new viewers.
    assert_eq!(
        g.pool.decide_seat(&user("new"), PoolLimits::default()),
        Ok(SeatDecision::Join {
            stage_arn: "master".into()
        })
    );
    for i in 0..4 {
        let left = g
            .pool
            .decide_leave(&user(&format!("auto-v{i}")), "auto", later)
            .unwrap();
        g = g.event(later, Event::ViewerLeft(left));
    }
    assert!(matches!(
        drain_of(&g, later),
        Some(Event::StageDeleted(StageDeleted {
            reason: StageDeletionReason::ScaleDown,
            ..
        }))
    ));
}

#[test]
fn the_master_and_busy_stages_never_drain() {
    let g = given()
        .stage("master", true)
        .stage("auto", false)
        .viewers("auto", 5);
    assert_eq!(drain_of(&g, T0 + time::Duration::hours(1)), None);
}

#[test]
fn demand_reopens_a_draining_stage_before_creating_one() {
    let g = given()
        .stage("master", true)
        .stage("auto", false)
        .viewers("master", 45)
        .viewers("auto", 2);
    let g = g.event(
        T0,
        Event::StageDrainStarted(StageDrainStarted {
            stage_arn: "auto".into(),
            viewer_count: 2,
        }),
    );
    assert_eq!(
        g.pool.decide_seat(&user("new"), PoolLimits::default()),
        Ok(SeatDecision::ReopenStage {
            stage_arn: "auto".into()
        })
    );
}

#[test]
fn operators_cannot_delete_the_master_or_a_stage_with_viewers() {
    let g = given()
        .stage("master", true)
        .stage("busy", false)
        .stage("empty", false)
        .viewers("busy", 1);
    assert_eq!(g.pool.decide_delete("master"), Err(PoolError::MasterStage));
    assert!(matches!(
        g.pool.decide_delete("busy"),
        Err(PoolError::StageHasViewers { viewers: 1, .. })
    ));
    assert!(matches!(
        g.pool.decide_delete("nope"),
        Err(PoolError::StageNotFound(_))
    ));
    let deleted = g.pool.decide_delete("empty").unwrap();
    let g = g.event(T0, Event::StageDeleted(deleted));
    assert!(g.pool.stage("empty").is_none());
    assert_eq!(
        g.pool.decide_create_stage(PoolLimits {
            max_stages: 2,
            ..Default::default()
        }),
        Err(PoolError::StageLimitReached {
            reason: "the pool holds its limit of 2 stages".into()
        })
    );
}

#[test]
fn auto_stage_names_carry_unix_milliseconds() {
    assert_eq!(
        StagePool::auto_stage_name(datetime!(2025-10-19 10:11:49.374 UTC)),
        "auto-stage-1760868709374"
    );
}
