//! Member `Authorization` tokens (docs/api.md#client-gateway: `loginAction` / `loginStreamer`
//! return one; `sendGift`, `setRoomInfo`, the chat's `verify` ... take it).
//!
//! A token is a JWT signed with HMAC-SHA256 (the `jsonwebtoken` crate). Claims: `sub` (member id),
//! `role` (`member` or `streamer`), `iat` and `exp` (Unix seconds, UTC), `jti` (UUID), `iss`
//! (`onair`). The secret is generated once and kept in Postgres (`auth_secrets`), so every instance
//! accepts the tokens of every other; `ONAIR_MEMBER_TOKEN_SECRET` may set it instead.
//! Expiry is exact (no leeway) and measured against the application's injectable clock
//! ([`crate::runtime::clock::Clock`], passed in as `now`), not the system time: jsonwebtoken's own
//! `exp` check reads the system time, so it is turned off and [`MemberTokens::verify`] compares
//! `exp` (and `nbf`, when a token carries one) with `now` itself. Clients may send the token bare
//! or as `Bearer <token>`.
//!
//! Revocation: the claim `ver` is the member's `token_version` when the token was issued. A
//! password or role change (`EditMember`) bumps it, and [`MemberTokens::verify_current`] refuses
//! tokens of an older version, or of a member who no longer exists (`TOKEN_REVOKED`).

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::member::Role;

const ISSUER: &str = "onair";

/// The claims of a member token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberClaims {
    /// The member id, `account@agent.masterAgent`.
    pub sub: String,
    /// The member's role when the token was issued.
    pub role: Role,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Token id, a UUID v7.
    pub jti: Uuid,
    /// Issuer, always `onair`; tokens of another issuer are refused.
    pub iss: String,
    /// The member's token version at issue (absent in tokens from before versions: 0).
    #[serde(default)]
    pub ver: i32,
    /// Not before, Unix seconds; onair issues none, a token that carries one is refused before it
    /// (as `TOKEN_INVALID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token, or only whitespace (HTTP 401 `UNAUTHORIZED`).
    #[error("Authorization is required")]
    Missing,
    /// Malformed, signed with another secret, of another issuer, or without `exp`, `sub` or
    /// `iss` (HTTP 401 `TOKEN_INVALID`).
    #[error("the Authorization token is not valid")]
    Invalid,
    /// Past `exp`, no leeway (HTTP 401 `TOKEN_EXPIRED`).
    #[error("the Authorization token has expired; log in again")]
    Expired,
    /// The member is gone or its token version moved on (HTTP 401 `TOKEN_REVOKED`).
    #[error("the Authorization token was revoked (the password or role changed); log in again")]
    Revoked,
    /// Postgres did not answer the version check (HTTP 503 `SERVICE_UNAVAILABLE`).
    #[error("the member records did not answer; try again")]
    Unavailable,
}

/// A freshly issued token.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    /// The signed JWT, sent back as `Authorization`.
    pub token: String,
    /// What the token says.
    pub claims: MemberClaims,
    /// When the token expires (UTC, whole seconds), `exp` as a time.
    pub expires_at: OffsetDateTime,
}

/// Issues and checks member tokens; cheap to clone.
#[derive(Clone)]
pub struct MemberTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_seconds: i64,
}

impl MemberTokens {
    /// Tokens signed with `secret`, valid for `ttl_seconds`.
    pub fn new(secret: &[u8], ttl_seconds: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_seconds: i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2),
        }
    }

    /// A token for `member_id` with `role` and the member's `version` (`token_version`), issued
    /// at `now`.
    pub fn issue(
        &self,
        member_id: &str,
        role: Role,
        version: i32,
        now: OffsetDateTime,
    ) -> IssuedToken {
        let iat = now.unix_timestamp();
        let claims = MemberClaims {
            sub: member_id.to_owned(),
            role,
            iat,
            exp: iat + self.ttl_seconds,
            jti: Uuid::now_v7(),
            iss: ISSUER.to_owned(),
            ver: version,
            nbf: None,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HMAC signing of plain claims cannot fail");
        IssuedToken {
            expires_at: OffsetDateTime::from_unix_timestamp(claims.exp)
                .unwrap_or(OffsetDateTime::now_utc()),
            token,
            claims,
        }
    }

    /// Checks a token (bare or `Bearer <token>`) at `now` (the injected clock's time) and returns
    /// its claims: `Expired` once `now` is past `exp` (no leeway), `Invalid` before its `nbf`.
    pub fn verify(
        &self,
        raw: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<MemberClaims, TokenError> {
        let raw = raw.map(str::trim).filter(|t| !t.is_empty());
        let Some(raw) = raw else {
            return Err(TokenError::Missing);
        };
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // Time is checked below, against `now`; jsonwebtoken would read the system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let claims = jsonwebtoken::decode::<MemberClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        check_time(&claims, now)?;
        Ok(claims)
    }
}

/// Whether `claims` are valid at `now`: refused as `Expired` once `now` is past `exp` (no leeway;
/// a token is still good during the second of its `exp`, as jsonwebtoken and the chat's
/// [`crate::domain::chat::TokenSession::expired`] judge it), as `Invalid` before `nbf`.
fn check_time(claims: &MemberClaims, now: OffsetDateTime) -> Result<(), TokenError> {
    let now = now.unix_timestamp();
    if claims.nbf.is_some_and(|nbf| now < nbf) {
        return Err(TokenError::Invalid);
    }
    if now > claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(())
}

impl MemberTokens {
    /// [`verify`](Self::verify) at `now`, then checks the token against the member's record: refused as
    /// `Revoked` when the member is gone or its version moved on (a password or role change),
    /// `Unavailable` when Postgres does not answer.
    pub async fn verify_current(
        &self,
        db: &PgPool,
        raw: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<MemberClaims, TokenError> {
        let claims = self.verify(raw, now)?;
        let current: Option<(i32,)> =
            sqlx::query_as("SELECT token_version FROM members WHERE member_id = $1")
                .bind(&claims.sub)
                .fetch_optional(db)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "member token check failed");
                    TokenError::Unavailable
                })?;
        match current {
            Some((version,)) if version == claims.ver => Ok(claims),
            _ => Err(TokenError::Revoked),
        }
    }
}

/// The token secret: `configured` when given, else the one in Postgres, created on first use
/// (64 random bytes; concurrent first starts agree on one).
pub async fn load_or_create_secret(
    db: &PgPool,
    configured: Option<&str>,
) -> Result<Vec<u8>, sqlx::Error> {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        return Ok(secret.as_bytes().to_vec());
    }
    let mut fresh = vec![0u8; 64];
    rand::rng().fill_bytes(&mut fresh);
    sqlx::query(
        "INSERT INTO auth_secrets (name, secret) VALUES ('member-token', $1)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&fresh)
    .execute(db)
    .await?;
    let (secret,): (Vec<u8>,) =
        sqlx::query_as("SELECT secret FROM auth_secrets WHERE name = 'member-token'")
            .fetch_one(db)
            .await?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn a_token_verifies_until_it_expires() {
        let tokens = MemberTokens::new(b"secret", 60);
        let now = OffsetDateTime::now_utc();
        let issued = tokens.issue("ben@mabu.mabumaster", Role::Member, 0, now);
        let claims = tokens.verify(Some(&issued.token), now).unwrap();
        assert_eq!(claims.sub, "ben@mabu.mabumaster");
        assert_eq!(claims.role, Role::Member);
        assert_eq!(
            tokens.verify(Some(&format!("Bearer {}", issued.token)), now),
            Ok(claims)
        );
        let old = tokens.issue(
            "ben@mabu.mabumaster",
            Role::Member,
            0,
            now - Duration::hours(1),
        );
        assert_eq!(
            tokens.verify(Some(&old.token), now),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn expiry_is_judged_at_the_given_time_not_the_system_time() {
        let tokens = MemberTokens::new(b"secret", 60);
        let now = OffsetDateTime::now_utc();
        let issued = tokens.issue("ben@mabu.mabumaster", Role::Member, 0, now);
        let exp = OffsetDateTime::from_unix_timestamp(issued.claims.exp).unwrap();
        assert!(tokens.verify(Some(&issued.token), exp).is_ok());
        assert_eq!(
            tokens.verify(Some(&issued.token), exp + Duration::seconds(1)),
            Err(TokenError::Expired)
        );
        // Issued in the past by the system time, but valid at the (earlier) time given.
        let old = tokens.issue(
            "ben@mabu.mabumaster",
            Role::Member,
            0,
            now - Duration::hours(1),
        );
        assert!(
            tokens
                .verify(Some(&old.token), now - Duration::minutes(59))
                .is_ok()
        );
    }

    #[test]
    fn foreign_tampered_and_missing_tokens_are_refused() {
        let tokens = MemberTokens::new(b"secret", 60);
        let other = MemberTokens::new(b"another", 60);
        let now = OffsetDateTime::now_utc();
        let foreign = other.issue("ben@mabu.mabumaster", Role::Streamer, 0, now);
        assert_eq!(
            tokens.verify(Some(&foreign.token), now),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            tokens.verify(Some("abc.def.ghi"), now),
            Err(TokenError::Invalid)
        );
        assert_eq!(tokens.verify(None, now), Err(TokenError::Missing));
        assert_eq!(tokens.verify(Some("  "), now), Err(TokenError::Missing));
    }
}
