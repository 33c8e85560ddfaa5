//! Back-office operators (docs/api.md#back-office-gateway: the back office authenticates with
//! `website` and `key`). Operator records in Postgres table `operators`: one row per website,
//! holding only a SHA-256 hash of the key (a random 40-character secret, so a fast hash is enough);
//! the key is shown once, by `onair operator create`. An operator may be scoped to one master agent
//! (src/domain/operator.rs).
//!
//! **Comparison is hash-based, never on the key itself**: [`verify`] hashes the presented key with
//! SHA-256 and asks Postgres for the row whose `website` and `key_hash` both match, so no code
//! compares the raw key byte by byte and the answer's timing reveals at most a prefix of a digest,
//! not of the key. A wrong key and an unknown website get the same answer.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::domain::operator::OperatorScope;

/// Prefix of every operator key, so a leaked one is easy to recognise.
pub const KEY_PREFIX: &str = "onair_op_";

/// An operator, without its key.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OperatorRecord {
    /// The back office's `website`, which names the operator (one per website).
    pub website: String,
    /// `None`: every master agent.
    pub master_agent: Option<String>,
    /// When the current key was issued (UTC); re-keying a revoked operator resets it.
    pub created_at: OffsetDateTime,
    /// When the key was revoked (UTC); `None` while it is active.
    pub revoked_at: Option<OffsetDateTime>,
}

/// The SHA-256 digest stored and looked up for `key` (see the module docs).
fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Why an operator could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// `website` is empty, longer than 100 or not printable ASCII without spaces.
    #[error("website must be 1 to 100 visible characters without spaces")]
    InvalidWebsite,
    /// The master agent is empty, longer than 100, not printable ASCII without spaces, or
    /// holds `.` or `@`.
    #[error("master agent must be 1 to 100 visible characters without spaces, '.' or '@'")]
    InvalidMasterAgent,
    /// The website already has an active operator; revoke it first.
    #[error("operator {0} already exists (revoke it first to issue a new key)")]
    Exists(String),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Creates the operator of `website`, scoped to `master_agent` when given (else global), or gives
/// a revoked one a new key and that scope; returns the key (shown only now).
pub async fn create(
    db: &PgPool,
    website: &str,
    master_agent: Option<&str>,
) -> Result<String, OperatorError> {
    let visible =
        |s: &str| !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_graphic());
    if !visible(website) {
        return Err(OperatorError::InvalidWebsite);
    }
    if let Some(master) = master_agent
        && (!visible(master) || master.contains(['.', '@']))
    {
        return Err(OperatorError::InvalidMasterAgent);
    }
    let key = format!("{KEY_PREFIX}{}", crate::ivs::arn::random_id(40));
    let stored = sqlx::query(
        "INSERT INTO operators (website, key_hash, master_agent) VALUES ($1, $2, $3)
         ON CONFLICT (website) DO UPDATE SET key_hash = EXCLUDED.key_hash, revoked_at = NULL,
             created_at = now(), master_agent = EXCLUDED.master_agent
         WHERE operators.revoked_at IS NOT NULL",
    )
    .bind(website)
    .bind(hash(&key))
    .bind(master_agent)
    .execute(db)
    .await?
    .rows_affected();
    if stored == 0 {
        return Err(OperatorError::Exists(website.to_owned()));
    }
    Ok(key)
}

/// The scope of `website`'s operator when `key` is its active key; `None` otherwise.
pub async fn verify(
    db: &PgPool,
    website: &str,
    key: &str,
) -> Result<Option<OperatorScope>, sqlx::Error> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT master_agent FROM operators
         WHERE website = $1 AND key_hash = $2 AND revoked_at IS NULL",
    )
    .bind(website)
    .bind(hash(key))
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(master,)| master.map_or(OperatorScope::Global, OperatorScope::MasterAgent)))
}

/// Every operator, oldest first.
pub async fn list(db: &PgPool) -> Result<Vec<OperatorRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT website, master_agent, created_at, revoked_at FROM operators ORDER BY created_at",
    )
    .fetch_all(db)
    .await
}

/// Revokes the key of `website`; returns whether an active one was revoked.
pub async fn revoke(db: &PgPool, website: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE operators SET revoked_at = now() WHERE website = $1 AND revoked_at IS NULL",
    )
    .bind(website)
    .execute(db)
    .await?;
    Ok(result.rows_affected() > 0)
}
