//! Idempotency records (table `idempotency_records`, docs/api.md#idempotency): the first 2xx answer
//! of a POST with an `Idempotency-Key`, kept 24 h per API key and key, so a retry is answered again
//! without doing the work twice. [`crate::http::idempotency`] is the middleware that uses them.

use sqlx::PgPool;
use uuid::Uuid;

/// A kept request: what it was, and its answer once it has one.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IdempotencyRecord {
    /// The request's path.
    pub route: String,
    /// SHA-256 of the request body.
    pub request_hash: Vec<u8>,
    /// The answer's status; `None` while the first request runs.
    pub status: Option<i16>,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// The answer's `X-Event-Sequence`.
    pub event_sequence: Option<String>,
    /// The answer's body; `None` while the first request runs.
    pub body: Option<Vec<u8>>,
}

/// The answer to keep.
#[derive(Clone, Debug)]
pub struct KeptAnswer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// `X-Event-Sequence`, if any.
    pub event_sequence: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// How long a claim without an answer holds its key: after that the request that claimed it is
/// taken as gone (its instance died mid-request) and a retry may claim the key again. Its event id
/// is derived from the key, so the retry's event is the same one (JetStream's duplicate window).
pub const ABANDONED_CLAIM_SECS: i32 = 15;

/// Takes `key` of `owner` (an API key id) for a request: true when it is new (or its record was
/// older than 24 h, or an answerless claim older than [`ABANDONED_CLAIM_SECS`], and is replaced),
/// false when another request holds it.
pub async fn claim(
    db: &PgPool,
    owner: Uuid,
    key: &str,
    route: &str,
    request_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let row: Option<(bool,)> = sqlx::query_as(
        "INSERT INTO idempotency_records (api_key_id, idempotency_key, route, request_hash)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (api_key_id, idempotency_key) DO UPDATE SET route = EXCLUDED.route,
           request_hash = EXCLUDED.request_hash, status = NULL, content_type = NULL,
           event_sequence = NULL, body = NULL, created_at = now()
         WHERE idempotency_records.created_at < now() - interval '24 hours'
            OR (idempotency_records.status IS NULL
                AND idempotency_records.created_at < now() - make_interval(secs => $5))
         RETURNING true",
    )
    .bind(owner)
    .bind(key)
    .bind(route)
    .bind(request_hash)
    .bind(f64::from(ABANDONED_CLAIM_SECS))
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// Keeps the answer of the request that claimed `key`.
pub async fn keep(
    db: &PgPool,
    owner: Uuid,
    key: &str,
    answer: &KeptAnswer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_records SET status = $3, content_type = $4, event_sequence = $5,
           body = $6 WHERE api_key_id = $1 AND idempotency_key = $2",
    )
    .bind(owner)
    .bind(key)
    .bind(answer.status as i16)
    .bind(&answer.content_type)
    .bind(&answer.event_sequence)
    .bind(&answer.body)
    .execute(db)
    .await?;
    Ok(())
}

/// Releases `key` after an error answer, so the request may simply be sent again.
pub async fn forget(db: &PgPool, owner: Uuid, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_records WHERE api_key_id = $1 AND idempotency_key = $2")
        .bind(owner)
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// The record of `key`, if any.
pub async fn find(
    db: &PgPool,
    owner: Uuid,
    key: &str,
) -> Result<Option<IdempotencyRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT route, request_hash, status, content_type, event_sequence, body
         FROM idempotency_records WHERE api_key_id = $1 AND idempotency_key = $2",
    )
    .bind(owner)
    .bind(key)
    .fetch_optional(db)
    .await
}
