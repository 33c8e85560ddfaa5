//! Queries of the operations dashboard (`/dashboard`, src/http/dashboard/): live rooms with their
//! current session's top givers, chat and gift rates, and the API instances that are up.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::rooms::{self, RankingRow, RoomRow};

/// A live room and the first givers of its current live session's gift ranking.
#[derive(Clone, Debug)]
pub struct LiveRoom {
    /// The room (viewers present in its chat, followers, popularity).
    pub room: RoomRow,
    /// The session ranking's first entries, rank 1 first.
    pub top_givers: Vec<RankingRow>,
}

/// The `limit` most popular live rooms (as `getRankingRoomList` orders them), each with its
/// session ranking's first `givers` entries, and how many rooms are live.
pub async fn live_rooms(
    db: &PgPool,
    limit: i64,
    givers: i64,
) -> Result<(Vec<LiveRoom>, i64), sqlx::Error> {
    let (rows, total) = rooms::live_rooms(db, 0, limit).await?;
    let mut out = Vec::with_capacity(rows.len());
    for room in rows {
        let top_givers = rooms::ranking(db, &room.streamer_id, "session", givers).await?;
        out.push(LiveRoom { room, top_givers });
    }
    Ok((out, total))
}

/// Chat messages and gifts sent at or after `since` (event time): the chat messages counted by
/// the `room_activity` projection (its 10 s buckets that start at or after `since`) and the gift
/// records of the `gift_records` projection.
pub async fn activity_since(db: &PgPool, since: OffsetDateTime) -> Result<(i64, i64), sqlx::Error> {
    let (messages,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(sum(chat_messages), 0)::bigint FROM rm_room_activity
         WHERE bucket_start >= $1",
    )
    .bind(since)
    .fetch_one(db)
    .await?;
    let (gifts,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM rm_gift_records WHERE sent_at >= $1")
            .bind(since)
            .fetch_one(db)
            .await?;
    Ok((messages, gifts))
}

/// An API instance that announced itself (`chat_instances`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InstanceRow {
    /// The instance's id.
    pub instance_id: String,
    /// When it last announced itself (Postgres time, UTC).
    pub last_seen: OffsetDateTime,
}

/// The API instances that announced themselves within `timeout` (the chat's instance timeout),
/// by id.
pub async fn live_instances(
    db: &PgPool,
    timeout: Duration,
) -> Result<Vec<InstanceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT instance_id, last_seen FROM chat_instances
         WHERE last_seen > now() - make_interval(secs => $1) ORDER BY instance_id",
    )
    .bind(timeout.as_secs_f64())
    .fetch_all(db)
    .await
}
