//! Reads of chat presence: the members present in each room (`rm_room_presence`, built by the
//! `room_activity` projection from `member_joined_room` / `member_left_room`), joined with the
//! chat instances that announce they are alive (`chat_instances`). The writes of
//! `chat_instances` and `chat_welcomes` are records of what this deployment's instances did, not
//! facts of the stream: they live in [`crate::records::chat_presence`].

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

/// A verified member's connection present in a room, as the presence read model has it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PresentConnection {
    /// The connection (socket) id its `member_joined_room` carried.
    pub connection_id: String,
    /// When it joined (event time, UTC).
    pub since: OffsetDateTime,
}

/// Connections of verified members present in `room` on instances other than `instance_id`
/// (and on no instance: joins recorded before instances were named), with their join time.
pub async fn present_elsewhere(
    db: &PgPool,
    room: &str,
    instance_id: &str,
) -> Result<Vec<PresentConnection>, sqlx::Error> {
    sqlx::query_as(
        "SELECT connection_id, since FROM rm_room_presence
         WHERE room = $1 AND instance_id IS DISTINCT FROM $2",
    )
    .bind(room)
    .bind(instance_id)
    .fetch_all(db)
    .await
}

/// A connection present in a room on an instance that has gone silent.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrphanedConnection {
    /// The room it is present in.
    pub room: String,
    /// The connection id its `member_joined_room` carried.
    pub connection_id: String,
    /// The member it belongs to.
    pub member_id: String,
    /// The member's nickname; `None` when the member record is gone.
    pub nickname: Option<String>,
}

/// Every connection present on an instance that has not announced itself for longer than
/// `timeout` (or never did), earliest join first.
pub async fn orphaned_connections(
    db: &PgPool,
    timeout: Duration,
) -> Result<Vec<OrphanedConnection>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.room, p.connection_id, p.member_id, m.nickname
         FROM rm_room_presence p LEFT JOIN members m ON m.member_id = p.member_id
         WHERE p.instance_id IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM chat_instances i
             WHERE i.instance_id = p.instance_id
               AND i.last_seen > now() - make_interval(secs => $1))
         ORDER BY p.since",
    )
    .bind(timeout.as_secs_f64())
    .fetch_all(db)
    .await
}
