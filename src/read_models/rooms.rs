//! Queries over `rm_rooms`, `rm_followers` and `rm_gift_rankings`, joined with the member records
//! for nicknames and avatars.

use sqlx::PgPool;
use time::OffsetDateTime;

/// A room as `getRoomInfo` and `getRankingRoomList` show it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RoomRow {
    /// The streamer's member id (`account@agent.masterAgent`).
    pub streamer_id: String,
    /// The streamer's `agentID` (`agent.masterAgent`), from the member record.
    pub agent_id: String,
    /// The streamer's nickname, from the member record.
    pub nickname: String,
    /// The streamer's avatar URL, from the member record; empty if none.
    pub avatar: String,
    /// Room title; empty until set.
    pub title: String,
    /// Room announcement; empty until set.
    pub announcement: String,
    /// Cover image URL; empty until set.
    pub cover: String,
    /// Whether a live session is running (`startStream` without `endStream` yet).
    pub is_live: bool,
    /// Start of the running live session (event time, UTC); `None` while offline.
    pub live_since: Option<OffsetDateTime>,
    /// Verified members present in the room's chat now (each once, however many sockets).
    pub viewers: i32,
    /// The last published popularity value; 0 before any.
    pub popularity: i64,
    /// How many members follow the streamer.
    pub followers: i64,
}

const ROOM_SELECT: &str = "
    SELECT m.member_id AS streamer_id, m.agent_id, m.nickname, m.avatar,
           COALESCE(r.title, '') AS title, COALESCE(r.announcement, '') AS announcement,
           COALESCE(r.cover, '') AS cover, COALESCE(r.is_live, false) AS is_live, r.live_since,
           (SELECT count(DISTINCT p.member_id) FROM rm_room_presence p
             WHERE p.streamer_id = m.member_id)::int AS viewers,
           COALESCE(r.popularity, 0) AS popularity,
           (SELECT count(*) FROM rm_followers f WHERE f.streamer_id = m.member_id) AS followers
    FROM members m LEFT JOIN rm_rooms r ON r.streamer_id = m.member_id";

/// The room of a registered streamer (a streamer without room events gets the defaults).
pub async fn room(db: &PgPool, streamer: &str) -> Result<Option<RoomRow>, sqlx::Error> {
    // The SQL is built from constants only.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ROOM_SELECT} WHERE m.member_id = $1 AND m.role = 'streamer'"
    )))
    .bind(streamer)
    .fetch_optional(db)
    .await
}

/// Live rooms by popularity (highest first; ties: live longest first), one page, and how many
/// rooms are live.
pub async fn live_rooms(
    db: &PgPool,
    offset: i64,
    limit: i64,
) -> Result<(Vec<RoomRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ROOM_SELECT} WHERE r.is_live AND m.role = 'streamer'
         ORDER BY r.popularity DESC, r.live_since, m.member_id OFFSET $1 LIMIT $2"
    )))
    .bind(offset)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let (total,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM rm_rooms r JOIN members m ON m.member_id = r.streamer_id
         WHERE r.is_live AND m.role = 'streamer'",
    )
    .fetch_one(db)
    .await?;
    Ok((rows, total))
}

/// Whether `follower` follows `streamer`, per the read model.
pub async fn is_following(
    db: &PgPool,
    follower: &str,
    streamer: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i32,)> =
        sqlx::query_as("SELECT 1 FROM rm_followers WHERE streamer_id = $1 AND follower_id = $2")
            .bind(streamer)
            .bind(follower)
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
}

/// One entry of a stored gift ranking.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RankingRow {
    /// The presenter's member id.
    pub member_id: String,
    /// The nickname given with the presenter's latest gift.
    pub nickname: String,
    /// Sum of `points × count` of the presenter's gifts in that ranking.
    pub score: i64,
}

/// The first `limit` of a room's ranking (`scope`: `session` or `all_time`), rank 1 first.
pub async fn ranking(
    db: &PgPool,
    streamer: &str,
    scope: &str,
    limit: i64,
) -> Result<Vec<RankingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT member_id, nickname, score FROM rm_gift_rankings
         WHERE streamer_id = $1 AND scope = $2
         ORDER BY score DESC, reached_at LIMIT $3",
    )
    .bind(streamer)
    .bind(scope)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Streamers whose rooms may need a popularity update: live ones, and offline ones whose
/// popularity has not yet fallen to 0.
pub async fn rooms_for_popularity(db: &PgPool) -> Result<Vec<(String, bool, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT streamer_id, is_live, popularity FROM rm_rooms WHERE is_live OR popularity > 0
         UNION
         SELECT DISTINCT p.streamer_id, COALESCE(r.is_live, false), COALESCE(r.popularity, 0)
         FROM rm_room_presence p LEFT JOIN rm_rooms r ON r.streamer_id = p.streamer_id",
    )
    .fetch_all(db)
    .await
}

/// Verified members present in a streamer's chat room, each once however many sockets they
/// have open there.
pub async fn present_viewers(db: &PgPool, streamer: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(DISTINCT member_id) FROM rm_room_presence WHERE streamer_id = $1",
    )
    .bind(streamer)
    .fetch_one(db)
    .await?;
    Ok(n)
}

/// Gift points and chat messages of a room in buckets starting at or after `since`.
pub async fn activity_since(
    db: &PgPool,
    streamer: &str,
    since: OffsetDateTime,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE(sum(gift_points), 0)::bigint, COALESCE(sum(chat_messages), 0)::bigint
         FROM rm_room_activity WHERE streamer_id = $1 AND bucket_start >= $2",
    )
    .bind(streamer)
    .bind(since)
    .fetch_one(db)
    .await
}
