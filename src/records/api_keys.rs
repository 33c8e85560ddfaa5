//! API keys (docs/api.md#the-stage-api: header `x-api-key`). Operator records in Postgres table
//! `api_keys`: only a SHA-256 hash of each key is stored; the key is shown once, at creation.
//!
//! **Comparison is hash-based, never on the key itself.** A presented key is hashed with SHA-256
//! first, and only the digest is looked up: by equality on `key_hash` in Postgres ([`verify`]) and
//! as the map key of [`VerifiedKeyCache`]. No code compares the raw key byte by byte, so the time
//! an answer takes cannot tell an attacker how many leading characters of a guess are right: a
//! timing difference could at most reveal a prefix of a SHA-256 digest, which does not lead back
//! to a key (keys are 40 random characters, about 238 bits). Keys never appear in logs: the request
//! span logs the route, not headers, and only [`ApiKeyRecord`] (no secret) travels further.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of every key, so leaked keys are easy to recognise.
pub const KEY_PREFIX: &str = "onair_";

/// A stored key, without its secret.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// Key id, a UUID v7; rate limits and idempotency records are kept per key id.
    pub id: Uuid,
    /// A name to recognise the key by.
    pub name: String,
    /// The key's first 12 characters (`onair_` and 6 more), to tell keys apart.
    pub key_prefix: String,
    /// Requests per minute allowed with this key, also its burst (default 100).
    pub rate_limit_per_minute: i32,
    /// When the key was created (UTC).
    pub created_at: OffsetDateTime,
    /// When the key was revoked (UTC); `None` while it is active.
    pub revoked_at: Option<OffsetDateTime>,
}

/// The SHA-256 digest stored and looked up for `key` (see the module docs: every comparison is of
/// digests).
fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates a key named `name`; returns the record and the key (shown only now).
pub async fn create(
    db: &PgPool,
    name: &str,
    rate_limit_per_minute: i32,
) -> Result<(ApiKeyRecord, String), sqlx::Error> {
    let key = format!("{KEY_PREFIX}{}", crate::ivs::arn::random_id(40));
    let record = sqlx::query_as::<_, ApiKeyRecord>(
        "INSERT INTO api_keys (id, name, key_prefix, key_hash, rate_limit_per_minute)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, key_prefix, rate_limit_per_minute, created_at, revoked_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(&key[..KEY_PREFIX.len() + 6])
    .bind(hash(&key))
    .bind(rate_limit_per_minute)
    .fetch_one(db)
    .await?;
    Ok((record, key))
}

/// The active (not revoked) key matching `key`, if any.
pub async fn verify(db: &PgPool, key: &str) -> Result<Option<ApiKeyRecord>, sqlx::Error> {
    sqlx::query_as::<_, ApiKeyRecord>(
        "SELECT id, name, key_prefix, rate_limit_per_minute, created_at, revoked_at
         FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(key))
    .fetch_optional(db)
    .await
}

/// Every key, newest first.
pub async fn list(db: &PgPool) -> Result<Vec<ApiKeyRecord>, sqlx::Error> {
    sqlx::query_as::<_, ApiKeyRecord>(
        "SELECT id, name, key_prefix, rate_limit_per_minute, created_at, revoked_at
         FROM api_keys ORDER BY created_at DESC",
    )
    .fetch_all(db)
    .await
}

/// Revokes the key with this id; returns whether an active key was revoked.
pub async fn revoke(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .execute(db)
            .await?;
    Ok(result.rows_affected() > 0)
}

/// Sets the rate limit (requests per minute, at least 1) of the active key with this id; returns
/// whether there was one. Running servers apply it once their cached copy of the key expires
/// (`ONAIR_API_KEY_CACHE_SECS`); the budget the key has used this minute carries over.
pub async fn set_rate_limit(
    db: &PgPool,
    id: Uuid,
    rate_limit_per_minute: i32,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE api_keys SET rate_limit_per_minute = $2 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(rate_limit_per_minute)
    .execute(db)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Remembers verified keys for a short time so that a request does not cost a database round trip;
/// a revoked key stops working within `ttl`. Unknown keys are never cached.
pub struct VerifiedKeyCache {
    ttl: std::time::Duration,
    entries:
        std::sync::RwLock<std::collections::HashMap<Vec<u8>, (ApiKeyRecord, std::time::Instant)>>,
}

/// Most keys remembered at once; the cache is emptied when full.
const CACHE_CAPACITY: usize = 10_000;

impl VerifiedKeyCache {
    /// A cache that remembers each verified key for `ttl` (zero: no caching).
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Default::default(),
        }
    }

    /// Like [`verify`], answered from memory when the key was verified less than `ttl` ago.
    pub async fn verify(
        &self,
        db: &PgPool,
        key: &str,
    ) -> Result<Option<ApiKeyRecord>, sqlx::Error> {
        if self.ttl.is_zero() {
            return Box::pin(verify(db, key)).await;
        }
        let hashed = hash(key);
        if let Some((record, at)) = self.entries.read().expect("key cache").get(&hashed)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(record.clone()));
        }
        // Boxed: a cache hit is every request's path; the query's future would enlarge it.
        let found = Box::pin(verify(db, key)).await?;
        let mut entries = self.entries.write().expect("key cache");
        match &found {
            Some(record) => {
                if entries.len() >= CACHE_CAPACITY {
                    entries.clear();
                }
                entries.insert(hashed, (record.clone(), std::time::Instant::now()));
            }
            None => {
                entries.remove(&hashed);
            }
        }
        Ok(found)
    }
}
