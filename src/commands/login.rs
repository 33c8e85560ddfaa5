//! `loginAction` / `loginStreamer`: a member proves their password and gets a member token. Login
//! attempts are counted per member id (GCRA in Postgres, [`crate::records::rate_limit`]) whatever
//! their outcome, so a password cannot be guessed faster than [`LOGIN_ATTEMPTS_PER_MINUTE`] from
//! any number of clients and instances. A login publishes `onair.member.logged_in.v1`.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::commands::members;
use crate::domain::member::{MemberId, Role};
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::id::derived_event_id;
use crate::events::{Event, MemberLoggedIn, MemberProfile};
use crate::records::member_auth::{IssuedToken, MemberTokens};

/// Login attempts allowed per member id per minute (also the burst), whatever their outcome.
pub const LOGIN_ATTEMPTS_PER_MINUTE: i32 = 10;

/// What a login needs besides the request.
pub struct LoginDeps<'a> {
    /// Member records and the attempt counter.
    pub db: &'a PgPool,
    /// Where `member.logged_in` is published.
    pub store: &'a EventStore,
    /// Issues the token.
    pub tokens: &'a MemberTokens,
    /// A hash checked for unknown members, so a failed login takes as long either way.
    pub dummy_password_hash: &'a str,
}

/// A successful login.
#[derive(Clone, Debug)]
pub struct LoggedIn {
    /// The member token and its claims.
    pub token: IssuedToken,
    /// The member's public profile.
    pub profile: MemberProfile,
    /// Stream sequence of `member.logged_in`.
    pub sequence: u64,
}

/// Why a login failed; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// More than [`LOGIN_ATTEMPTS_PER_MINUTE`] attempts for this member id (HTTP 429).
    #[error("too many login attempts for {member}; try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// The member id tried.
        member: String,
        /// Whole seconds until the next attempt is allowed.
        retry_after_secs: u64,
    },
    /// Unknown member or wrong password, one answer for both (HTTP 401 `LOGIN_FAILED`).
    #[error("wrong memberID or password")]
    Failed,
    /// The account's role is not the one this login is for (HTTP 403 `FORBIDDEN`); the role
    /// held is the one the login was for.
    #[error("{}", match .0 {
        Role::Member => "this account is a streamer: log in with loginStreamer",
        Role::Streamer => "this account is not a streamer: log in with loginAction",
    })]
    WrongRole(Role),
    /// The event store did not answer (HTTP 503).
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Logs `id` in as `role` with `password`.
#[tracing::instrument(skip_all, fields(member.id = %id, member.role = role.as_str()), err(level = "info"))]
pub async fn login(
    deps: LoginDeps<'_>,
    id: &MemberId,
    password: String,
    role: Role,
    now: OffsetDateTime,
) -> Result<LoggedIn, LoginError> {
    check_attempt_rate(deps.db, id).await?;
    let Some(record) = members::find(deps.db, id.as_str()).await? else {
        // Spend the same time as a real check, so timing does not tell which members exist.
        let _ = members::verify_password(deps.dummy_password_hash.to_owned(), password).await;
        return Err(LoginError::Failed);
    };
    if !members::verify_password(record.password_hash.clone(), password).await {
        return Err(LoginError::Failed);
    }
    if record.role() != role {
        return Err(LoginError::WrongRole(role));
    }
    let token = deps
        .tokens
        .issue(id.as_str(), role, record.token_version, now);
    let published = deps
        .store
        .publish(NewEvent::new(
            now,
            Event::MemberLoggedIn(MemberLoggedIn {
                member_id: id.to_string(),
                role,
                token_id: token.claims.jti,
            }),
        ))
        .await?;
    Ok(LoggedIn {
        token,
        profile: record.profile(),
        sequence: published.sequence,
    })
}

/// Counts a login attempt for `id`; over the limit: [`LoginError::TooManyAttempts`]. Fails open if
/// Postgres cannot be asked, like every rate limit here.
async fn check_attempt_rate(db: &PgPool, id: &MemberId) -> Result<(), LoginError> {
    let bucket = derived_event_id(&["login-attempts", id.as_str()]);
    match crate::records::rate_limit::check(db, bucket, LOGIN_ATTEMPTS_PER_MINUTE).await {
        Ok(decision) if !decision.allowed => Err(LoginError::TooManyAttempts {
            member: id.to_string(),
            retry_after_secs: decision.retry_after_secs.unwrap_or(1),
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "login rate check failed; allowing the attempt");
            Ok(())
        }
    }
}
