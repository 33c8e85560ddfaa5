//! Back-office operators (seeds/gateway-chat.md: the back office authenticates with `website` and
//! `key`). Operator records in Postgres table `operators`: one row per website, holding only a
//! SHA-256 hash of the key (a random 40-character secret, so a fast hash is enough); the key is
//! shown once, by `onair operator create`.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;

/// Prefix of every operator key, so a leaked one is easy to recognise.
pub const KEY_PREFIX: &str = "onair_op_";

/// An operator, without its key.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OperatorRecord {
    pub website: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Why an operator could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("website must be 1 to 100 visible characters without spaces")]
    InvalidWebsite,
    #[error("operator {0} already exists (revoke it first to issue a new key)")]
    Exists(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Creates the operator of `website`, or gives a revoked one a new key; returns the key (shown only
/// now).
pub async fn create(pool: &PgPool, website: &str) -> Result<String, OperatorError> {
    if website.is_empty() || website.len() > 100 || !website.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OperatorError::InvalidWebsite);
    }
    let key = format!("{KEY_PREFIX}{}", crate::ivs::arn::random_id(40));
    let stored = sqlx::query(
        "INSERT INTO operators (website, key_hash) VALUES ($1, $2)
         ON CONFLICT (website) DO UPDATE SET key_hash = EXCLUDED.key_hash, revoked_at = NULL,
             created_at = now()
         WHERE operators.revoked_at IS NOT NULL",
    )
    .bind(website)
    .bind(hash(&key))
    .execute(pool)
    .await?
    .rows_affected();
    if stored == 0 {
        return Err(OperatorError::Exists(website.to_owned()));
    }
    Ok(key)
}

/// Whether `key` is the active key of `website`.
pub async fn verify(pool: &PgPool, website: &str, key: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(i32,)> = sqlx::query_as(
        "SELECT 1 FROM operators WHERE website = $1 AND key_hash = $2 AND revoked_at IS NULL",
    )
    .bind(website)
    .bind(hash(key))
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// Every operator, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<OperatorRecord>, sqlx::Error> {
    sqlx::query_as("SELECT website, created_at, revoked_at FROM operators ORDER BY created_at")
        .fetch_all(pool)
        .await
}

/// Revokes the key of `website`; returns whether an active one was revoked.
pub async fn revoke(pool: &PgPool, website: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE operators SET revoked_at = now() WHERE website = $1 AND revoked_at IS NULL",
    )
    .bind(website)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() > 0)
}
