//! The stage pool's and the stream status's events (the Stage API): stages joining, draining
//! and leaving the pool, viewers taking, renewing and losing seats, heartbeats, publisher tokens,
//! and the publisher's stream starting and ending. Seat-changing events share the pool's
//! subjects (`onair.pool.<pool>.*`), so one expected-sequence guard covers them
//! (docs/design.md#invariants).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A stage joined the pool: the master stage at first start, or an auto-scaled one.
/// The stage's creation time is the event's `ce-time`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageCreated {
    /// IVS stage ARN (`arn:aws:ivs:<region>:<account>:stage/<id>`), as the stage provider made it.
    pub stage_arn: String,
    /// Stage name: `master-stage` for the master, `auto-stage-<Unix ms>` for one the pool
    /// created to add seats, else the operator's name (or the name an adopted IVS stage had).
    pub name: String,
    /// Whether the pool created it to add seats (tag `AutoScaled=true`); only such stages are
    /// drained and deleted by scale-down.
    pub auto_scaled: bool,
    /// Whether this is the master stage: publisher tokens are for it, and it is never deleted.
    pub is_master: bool,
    /// The stage's IVS tags: onair sets `Environment` and `ManagedBy=onair` (and `AutoScaled=true`
    /// on auto-scaled stages); an operator-created stage also has the operator's own.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A viewer took a seat on a stage (a viewer token was issued to a user without a seat).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerJoined {
    /// The plain user id of the request (not the `viewer-` participant user id).
    pub user_id: String,
    /// ARN of the stage the seat is on.
    pub stage_arn: String,
    /// IVS participant id, the token's `jti`.
    pub participant_id: String,
    /// When the viewer token expires: RFC 3339, UTC (1 h after issue by default).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "super::rfc3339::Rfc3339")]
    pub token_expires_at: OffsetDateTime,
    /// The custom attributes of the token request, JSON values as the client sent them (`{}` when
    /// none).
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A seated viewer asked for a new token; the seat is kept, the participant id changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerTokenRenewed {
    /// The plain user id of the request (not the `viewer-` participant user id).
    pub user_id: String,
    /// ARN of the stage where the viewer keeps the seat.
    pub stage_arn: String,
    /// The new token's IVS participant id (its `jti`); replaces the seat's previous one.
    pub participant_id: String,
    /// When the new viewer token expires: RFC 3339, UTC (1 h after issue by default).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "super::rfc3339::Rfc3339")]
    pub token_expires_at: OffsetDateTime,
}

/// A seated viewer sent a heartbeat (the Stage API: every 30 s).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerHeartbeatRecorded {
    /// The seated viewer's plain user id; also the event's aggregate id (`ce-subject`).
    pub user_id: String,
    /// ARN of the stage the viewer is seated on. The heartbeat's time is the event's `ce-time`.
    pub stage_arn: String,
}

/// One heartbeat of a [`ViewerHeartbeatsRecorded`] batch: the same fact as one
/// `onair.viewer.heartbeat_recorded.v1`, with its own time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedHeartbeat {
    /// The seated viewer's plain user id.
    pub user_id: String,
    /// ARN of the stage the viewer is seated on.
    pub stage_arn: String,
    /// When the heartbeat was recorded: RFC 3339, UTC, milliseconds (what its answer said).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "super::rfc3339::Rfc3339")]
    pub at: OffsetDateTime,
}

/// Heartbeats that reached one instance within a moment, stored as one message (group commit,
/// `ONAIR_HEARTBEAT_BATCH_WINDOW_US` and `ONAIR_HEARTBEAT_BATCH_MAX`). Applying it is applying each
/// heartbeat as an `onair.viewer.heartbeat_recorded.v1` at its `at`; `ce-time` is the latest `at`.
/// Its id is derived from the heartbeats it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerHeartbeatsRecorded {
    /// The heartbeats, in the order they arrived (at least two).
    pub heartbeats: Vec<RecordedHeartbeat>,
}

/// A viewer left on their own; `watchDurationSeconds` is this session's length (leave time minus
/// join time, whole seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerLeft {
    /// The viewer's plain user id.
    pub user_id: String,
    /// ARN of the stage whose seat was freed.
    pub stage_arn: String,
    /// When the session began (the `ce-time` of its `onair.viewer.joined.v1`): RFC 3339, UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "super::rfc3339::Rfc3339")]
    pub joined_at: OffsetDateTime,
    /// Session length from join to leave, in whole seconds (rounded down).
    pub watch_duration_seconds: u64,
}

/// A viewer was silent longer than the heartbeat timeout (the Stage API: 60 s) and lost the seat;
/// `watchDurationSeconds` runs from the join to the last sign of life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerExpired {
    /// The viewer's plain user id.
    pub user_id: String,
    /// ARN of the stage whose seat was freed.
    pub stage_arn: String,
    /// When the session began (the `ce-time` of its `onair.viewer.joined.v1`): RFC 3339, UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "super::rfc3339::Rfc3339")]
    pub joined_at: OffsetDateTime,
    /// The last sign of life, the latest of join, token renewal and heartbeat: RFC 3339, UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "super::rfc3339::Rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Session length from `joinedAt` to `lastSeenAt`, in whole seconds (rounded down).
    pub watch_duration_seconds: u64,
}

/// A publisher token was issued for the master stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublisherTokenIssued {
    /// The plain user id of the request (the token's participant user id is
    /// `broadcaster-<userId>`); also the event's aggregate id.
    pub user_id: String,
    /// ARN of the master stage.
    pub stage_arn: String,
    /// IVS participant id, the token's `jti`.
    pub participant_id: String,
    /// When the publisher token expires: RFC 3339, UTC (4 h after issue by default).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "super::rfc3339::Rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// An operator renamed a stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRenamed {
    /// ARN of the renamed stage.
    pub stage_arn: String,
    /// The new name: 1 to 128 characters of `[a-zA-Z0-9-_]` (IVS rule).
    pub name: String,
}

/// An auto-scaled stage stopped taking new viewers because it had too few (scale-down); it is
/// deleted once empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageDrainStarted {
    /// ARN of the auto-scaled stage that stops taking new viewers.
    pub stage_arn: String,
    /// Viewers on the stage when draining started.
    pub viewer_count: u32,
}

/// A draining stage takes viewers again because the pool needed its seats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageDrainEnded {
    /// ARN of the draining stage that takes new viewers again.
    pub stage_arn: String,
    /// Viewers on the stage when it reopened.
    pub viewer_count: u32,
}

/// Why a stage left the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageDeletionReason {
    /// `DELETE /api/stage/{stageArn}`.
    Operator,
    /// An empty draining auto-scaled stage.
    ScaleDown,
}

/// A stage left the pool (it had no viewers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageDeleted {
    /// ARN of the stage removed from the pool; it is deleted at the provider afterwards.
    pub stage_arn: String,
    /// `operator` (`DELETE /api/stage/{stageArn}`) or `scale_down` (an empty draining stage).
    pub reason: StageDeletionReason,
}

/// The publisher started streaming on a stage (IVS EventBridge `Participant Published`, posted to
/// `POST /api/ingest/eventbridge`). `ce-time` is when it happened at the source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamStarted {
    /// ARN of the stage the publisher streams on (the master stage).
    pub stage_arn: String,
    /// IVS participant id of the publisher, when the source gives it (EventBridge
    /// `participant_id`).
    #[serde(default)]
    pub participant_id: Option<String>,
    /// IVS stage session id, when the source gives it (EventBridge `session_id`).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Where the fact came from, e.g. `eventbridge`.
    pub source: String,
}

/// The publisher stopped streaming (IVS EventBridge `Participant Unpublished`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamEnded {
    /// ARN of the stage the publisher streamed on (the master stage).
    pub stage_arn: String,
    /// IVS participant id of the publisher, when the source gives it (EventBridge
    /// `participant_id`).
    #[serde(default)]
    pub participant_id: Option<String>,
    /// IVS stage session id, when the source gives it (EventBridge `session_id`).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Where the fact came from, e.g. `eventbridge`.
    pub source: String,
}
