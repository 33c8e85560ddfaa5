//! Errors to HTTP, in one place. Every error body is
//! `{"success": false, "error": CODE, "message": ..., "details": ...}` (docs/api.md#error-bodies;
//! `success` as in the success envelope, which the API descriptions' example clients test) with a
//! stable machine-readable `CODE`; a `VALIDATION_ERROR`'s `details` names the field first, as
//! the seed's example does (`userId is required`):
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `VALIDATION_ERROR` | a parameter is missing, empty, too long, of the wrong type, or the body is not JSON |
//! | 401 | `UNAUTHORIZED` | no `x-api-key`, or an unknown or revoked key; no member `Authorization`; unknown back-office `website` or wrong `key` |
//! | 401 | `TOKEN_INVALID` | a member `Authorization` that is malformed or not signed by onair |
//! | 401 | `TOKEN_EXPIRED` | a member `Authorization` past its expiry: log in again |
//! | 401 | `TOKEN_REVOKED` | a member `Authorization` issued before a password or role change: log in again |
//! | 401 | `LOGIN_FAILED` | unknown `memberID` or wrong password (one answer for both) |
//! | 403 | `FORBIDDEN` | deleting the master stage; a member acting as another member; a member using a streamer action or login |
//! | 404 | `NOT_FOUND` | unknown stage, viewer not on the stage, unknown route |
//! | 404 | `UNKNOWN_ACTION` | `POST /api/action/{actionName}` with a name that is not an action |
//! | 404 | `MEMBER_NOT_FOUND`, `STREAMER_NOT_FOUND`, `GIFT_NOT_FOUND` | the member, streamer or gift does not exist (or the gift is disabled) |
//! | 409 | `MEMBER_EXISTS` | registering a member id that exists |
//! | 409 | `ALREADY_LIVE`, `NOT_LIVE` | `startStream` while live, `endStream` while offline |
//! | 409 | `ALREADY_FOLLOWING`, `NOT_FOLLOWING` | `follow` twice, `unfollow` without following |
//! | 409 | `REQUEST_IN_PROGRESS` | a retry while the first request with its `Idempotency-Key` runs |
//! | 405 | `METHOD_NOT_ALLOWED` | a route exists but not for this method |
//! | 422 | `IDEMPOTENCY_KEY_REUSED` | an `Idempotency-Key` sent again with another route or body |
//! | 426 | `UPGRADE_REQUIRED` | a plain request to a WebSocket route (`/ws`, `/primus`); `Upgrade: websocket` |
//! | 429 | `TOO_MANY_REQUESTS` | an API key over its rate limit; more than 10 login attempts per minute for one member id |
//! | 413 | `PAYLOAD_TOO_LARGE` | body above `ONAIR_MAX_BODY_BYTES` |
//! | 415 | `UNSUPPORTED_MEDIA_TYPE` | a body that is not `application/json` |
//! | 500 | `TOKEN_GENERATION_FAILED` | the participant token could not be signed |
//! | 500 | `INTERNAL_ERROR` | anything else; details are logged, not shown |
//! | 503 | `STAGE_FULL` | every stage is at its cap and the pool at its stage limit |
//! | 503 | `STAGE_LIMIT_REACHED` | a stage was needed and none could be created |
//! | 503 | `SERVICE_UNAVAILABLE` | NATS or Postgres did not answer; nothing was stored |
//! | 503 | `READ_MODEL_BEHIND` | the read models of a GET had not reached its `X-Min-Sequence` in time |
//!
//! A request answered 4xx changed nothing (docs/design.md#invariants, 4).

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

pub use super::error_code::ErrorCode;
use super::error_text::describe_parse_error;
pub use super::error_text::field_details;
use crate::commands::gifts::SendGiftError;
use crate::commands::ingest::IngestError;
use crate::commands::login::LoginError;
use crate::commands::maintenance::SystemMessageError;
use crate::commands::pool::PoolServiceError;
use crate::commands::room_info::RoomInfoError;
use crate::domain::gift::GiftRuleError;
use crate::domain::operator::ScopeError;
use crate::domain::room_info::RoomInfoRuleError;
use crate::domain::stage_pool::PoolError;
use crate::domain::user_id::IdError;
use crate::ivs::ProviderError;

/// The error body of every route: `{"success": false, "error": CODE, "message": ...,
/// "details": ...}` (the Stage API description's error format; `success` as in the success
/// envelope, on which its example clients branch).
#[derive(Object, Debug, Clone, serde::Serialize)]
pub struct ErrorBody {
    /// Always `false` (a success answer is `{"success": true, "data": ...}`).
    pub success: bool,
    /// Stable error code, e.g. `VALIDATION_ERROR`.
    pub error: String,
    /// What went wrong, naming the parameter when one is at fault.
    pub message: String,
    /// More detail, when there is any. A `VALIDATION_ERROR` always has it, leading with the
    /// field at fault (`userId is required`, `maxResults is invalid: ...`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl ErrorBody {
    /// The body of `code` with `message` and optional `details` (a `VALIDATION_ERROR` without
    /// them gets [`field_details`] of its message).
    pub fn new(code: ErrorCode, message: impl Into<String>, details: Option<String>) -> Self {
        let message = message.into();
        let details = details
            .or_else(|| (code == ErrorCode::ValidationError).then(|| field_details(&message)));
        Self {
            success: false,
            error: code.as_str().to_owned(),
            message,
            details,
        }
    }

    /// A bare response of this body with `code`'s status (for middleware outside the API's
    /// typed answers).
    pub fn response(code: ErrorCode, message: impl Into<String>) -> Response {
        poem::web::Json(Self::new(code, message, None))
            .with_status(code.status())
            .into_response()
    }
}

/// The error answers of the API.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// `VALIDATION_ERROR`: a parameter is missing or invalid; nothing was changed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `UNAUTHORIZED` (missing, unknown or revoked `x-api-key`; missing member `Authorization`;
    /// wrong back-office credentials), `TOKEN_INVALID`, `TOKEN_EXPIRED`, `TOKEN_REVOKED` or `LOGIN_FAILED`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `FORBIDDEN`: the operation is not allowed (deleting the master stage, acting as another
    /// member, a streamer action by a member, a back-office operator acting outside its master
    /// agent).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `NOT_FOUND` (unknown stage, or the viewer holds no seat on it), `UNKNOWN_ACTION`,
    /// `MEMBER_NOT_FOUND`, `STREAMER_NOT_FOUND` or `GIFT_NOT_FOUND`.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `TOO_MANY_REQUESTS`: the API key is over its rate limit (requests per minute), or a member
    /// id over its login attempts (10 per minute); nothing was
    /// changed. `Retry-After` (whole seconds) tells when to try again; every answer counted
    /// against an API key carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Whole seconds until the next attempt is allowed.
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
    /// `REQUEST_IN_PROGRESS` (a request with the same `Idempotency-Key` is still being answered,
    /// `Retry-After: 1`), `MEMBER_EXISTS`, `ALREADY_LIVE`, `NOT_LIVE`, `ALREADY_FOLLOWING` or
    /// `NOT_FOLLOWING`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `IDEMPOTENCY_KEY_REUSED`: the `Idempotency-Key` was used with another route or body.
    #[oai(status = 422)]
    UnprocessableEntity(Json<ErrorBody>),
    /// `PAYLOAD_TOO_LARGE`: the body is above `ONAIR_MAX_BODY_BYTES` (default 64 KiB); nothing
    /// was read or changed.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `UNSUPPORTED_MEDIA_TYPE`: a route that takes a body got one without
    /// `Content-Type: application/json`; nothing was changed.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `TOKEN_GENERATION_FAILED` or `INTERNAL_ERROR`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `STAGE_FULL`, `STAGE_LIMIT_REACHED` or `SERVICE_UNAVAILABLE` (nothing was stored), or
    /// `READ_MODEL_BEHIND` (a GET's `X-Min-Sequence` was not reached in time; retry).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(code: ErrorCode, message: impl Into<String>, details: Option<String>) -> Json<ErrorBody> {
    Json(ErrorBody::new(code, message, details))
}

impl ApiError {
    /// The answer of `code` (its status picks the variant), with `message` and optional
    /// `details`.
    pub fn with_details(
        code: ErrorCode,
        message: impl Into<String>,
        details: Option<String>,
    ) -> Self {
        let b = body(code, message, details);
        match code.status() {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(b),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized(b),
            StatusCode::FORBIDDEN => ApiError::Forbidden(b),
            StatusCode::NOT_FOUND => ApiError::NotFound(b),
            StatusCode::CONFLICT => ApiError::Conflict(b),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::UnprocessableEntity(b),
            StatusCode::TOO_MANY_REQUESTS => ApiError::TooManyRequests(b, None),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(b),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(b),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(b),
            _ => ApiError::Internal(b),
        }
    }

    /// The answer of `code` with `message`.
    pub fn coded(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_details(code, message, None)
    }

    /// 400 `VALIDATION_ERROR`: a parameter is missing or invalid; `message` names it, and
    /// `details` says it field first ([`field_details`]).
    pub fn validation(message: impl Into<String>) -> Self {
        Self::coded(ErrorCode::ValidationError, message)
    }

    /// 404 `NOT_FOUND`: what `message` names does not exist (an unknown stage, a viewer
    /// without a seat on it).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::coded(ErrorCode::NotFound, message)
    }

    /// 401 `UNAUTHORIZED`: no or an unknown API key, no member `Authorization`, or wrong
    /// back-office credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::coded(ErrorCode::Unauthorized, message)
    }

    /// 429 `TOO_MANY_REQUESTS`: over a rate limit (an API key's, or a member id's login
    /// attempts); `details`, when given, states the limit; `retry_after_secs` becomes the
    /// `Retry-After` header.
    pub fn too_many_requests(
        message: impl Into<String>,
        details: Option<String>,
        retry_after_secs: Option<u64>,
    ) -> Self {
        ApiError::TooManyRequests(
            body(ErrorCode::TooManyRequests, message, details),
            retry_after_secs,
        )
    }

    /// 503 `SERVICE_UNAVAILABLE`: a service (NATS, Postgres, IVS) did not answer or is not ready
    /// yet; the client may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::coded(ErrorCode::ServiceUnavailable, message)
    }

    /// 403 `FORBIDDEN`: the caller may not do this (acting as another member, a member using a
    /// streamer action or login, a moderation rule, an operator outside its scope).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::coded(ErrorCode::Forbidden, message)
    }

    /// A 500 `INTERNAL_ERROR` whose cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error.cause_chain = %cause, "internal error");
        Self::coded(ErrorCode::InternalError, "internal server error")
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> Self {
        ApiError::validation(e.to_string())
    }
}

impl From<crate::domain::member::MemberIdError> for ApiError {
    fn from(e: crate::domain::member::MemberIdError) -> Self {
        ApiError::validation(e.to_string())
    }
}

impl From<crate::runtime::socket_limits::SocketRefused> for ApiError {
    fn from(e: crate::runtime::socket_limits::SocketRefused) -> Self {
        ApiError::too_many_requests(e.message, Some(e.details), Some(e.retry_after_secs))
    }
}

impl From<ScopeError> for ApiError {
    fn from(e: ScopeError) -> Self {
        ApiError::forbidden(e.to_string())
    }
}

impl From<crate::records::member_auth::TokenError> for ApiError {
    fn from(e: crate::records::member_auth::TokenError) -> Self {
        use crate::records::member_auth::TokenError;
        let code = match e {
            TokenError::Missing => ErrorCode::Unauthorized,
            TokenError::Invalid => ErrorCode::TokenInvalid,
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::Revoked => ErrorCode::TokenRevoked,
            TokenError::Unavailable => ErrorCode::ServiceUnavailable,
        };
        ApiError::coded(code, e.to_string())
    }
}

impl From<crate::event_store::EventStoreError> for ApiError {
    /// Each store failure is told as what it is: a guard another writer got past first (the write
    /// was refused, nothing stored: retry), a refused event, or a store that did not answer.
    fn from(e: crate::event_store::EventStoreError) -> Self {
        use crate::event_store::EventStoreError;
        match e {
            EventStoreError::Conflict { .. } | EventStoreError::ChainBroken => {
                tracing::info!(error = %e, "event store guard refused the write");
                ApiError::unavailable(
                    "another change was stored first; nothing was stored, try again",
                )
            }
            EventStoreError::Rejected(_) => {
                tracing::warn!(error = %e, "event store refused the event");
                ApiError::unavailable("the event store refused the event; nothing was stored")
            }
            EventStoreError::Unavailable(_) => {
                tracing::warn!(error.cause_chain = %e, "event store error");
                ApiError::unavailable(
                    "the event store did not answer; nothing was stored, try again",
                )
            }
        }
    }
}

impl From<crate::domain::room::RoomError> for ApiError {
    fn from(e: crate::domain::room::RoomError) -> Self {
        use crate::domain::room::RoomError;
        let code = match &e {
            RoomError::AlreadyLive { .. } => ErrorCode::AlreadyLive,
            RoomError::NotLive => ErrorCode::NotLive,
            RoomError::AlreadyFollowing { .. } => ErrorCode::AlreadyFollowing,
            RoomError::NotFollowing { .. } => ErrorCode::NotFollowing,
            _ => ErrorCode::ValidationError,
        };
        ApiError::coded(code, e.to_string())
    }
}

impl From<crate::commands::members::MemberError> for ApiError {
    fn from(e: crate::commands::members::MemberError) -> Self {
        use crate::commands::members::MemberError;
        match e {
            MemberError::Invalid(m) => ApiError::validation(m),
            MemberError::Exists(_) => ApiError::coded(ErrorCode::MemberExists, e.to_string()),
            MemberError::NotFound(_) => ApiError::coded(ErrorCode::MemberNotFound, e.to_string()),
            MemberError::Store(e) => e.into(),
            MemberError::Database(e) => e.into(),
            MemberError::Hash(_) => ApiError::internal(&e),
        }
    }
}

impl From<crate::commands::gift_catalog::GiftCatalogError> for ApiError {
    fn from(e: crate::commands::gift_catalog::GiftCatalogError) -> Self {
        use crate::commands::gift_catalog::GiftCatalogError;
        match e {
            GiftCatalogError::Invalid(m) => ApiError::validation(m),
            GiftCatalogError::Store(e) => e.into(),
            GiftCatalogError::Database(e) => e.into(),
        }
    }
}

impl From<SendGiftError> for ApiError {
    fn from(e: SendGiftError) -> Self {
        let message = e.to_string();
        let code = match e {
            SendGiftError::Store(e) => return e.into(),
            SendGiftError::Database(e) => return e.into(),
            SendGiftError::Rule(GiftRuleError::NotTheSender) => ErrorCode::Forbidden,
            SendGiftError::Rule(_) => ErrorCode::ValidationError,
            SendGiftError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            SendGiftError::StreamerNotFound(_) => ErrorCode::StreamerNotFound,
            SendGiftError::GiftNotFound(_) => ErrorCode::GiftNotFound,
            SendGiftError::MemberNotFound(_) => ErrorCode::MemberNotFound,
        };
        ApiError::coded(code, message)
    }
}

impl From<RoomInfoError> for ApiError {
    fn from(e: RoomInfoError) -> Self {
        match e {
            RoomInfoError::Rule(RoomInfoRuleError::OtherRoom) => ApiError::forbidden(e.to_string()),
            RoomInfoError::Rule(RoomInfoRuleError::NothingToSet) => {
                ApiError::validation(e.to_string())
            }
            RoomInfoError::Text(rule) => rule.into(),
            RoomInfoError::StreamerNotFound(_) => {
                ApiError::coded(ErrorCode::StreamerNotFound, e.to_string())
            }
            RoomInfoError::Store(e) => e.into(),
            RoomInfoError::Database(e) => e.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::TooManyAttempts {
                retry_after_secs, ..
            } => ApiError::too_many_requests(e.to_string(), None, Some(retry_after_secs)),
            LoginError::Failed => ApiError::coded(ErrorCode::LoginFailed, e.to_string()),
            LoginError::WrongRole(_) => ApiError::forbidden(e.to_string()),
            LoginError::Store(e) => e.into(),
            LoginError::Database(e) => e.into(),
        }
    }
}

impl From<SystemMessageError> for ApiError {
    fn from(e: SystemMessageError) -> Self {
        ApiError::validation(e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(e) => e.into(),
        }
    }
}

/// What a [`sqlx::Error`] means to a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseFailure {
    /// Postgres could not be reached or could not serve the request now (connection, pool,
    /// TLS, shutdown, resources, serialization or deadlock): a retry may succeed (503).
    Unavailable,
    /// A text Postgres cannot hold (a NUL: SQLSTATE 22021 or 22P05): the request's fault (400).
    TextRefused,
    /// Anything else: a bug in a query or a decoding (500, logged with its cause chain).
    Bug,
}

/// Classifies a database error: connection and pool failures, SQLSTATE class 08 (connection),
/// 53 (insufficient resources), 57P01 to 57P03 (shutdown, cannot connect now), 40001 and 40P01
/// (serialization failure, deadlock) are [`DatabaseFailure::Unavailable`]; 22021 and 22P05 are
/// [`DatabaseFailure::TextRefused`]; everything else is a [`DatabaseFailure::Bug`].
pub fn classify_database_error(e: &sqlx::Error) -> DatabaseFailure {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DatabaseFailure::Unavailable,
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("22021" | "22P05") => DatabaseFailure::TextRefused,
            Some("57P01" | "57P02" | "57P03" | "40001" | "40P01") => DatabaseFailure::Unavailable,
            Some(code) if code.starts_with("08") || code.starts_with("53") => {
                DatabaseFailure::Unavailable
            }
            _ => DatabaseFailure::Bug,
        },
        _ => DatabaseFailure::Bug,
    }
}

impl From<crate::commands::moderation::ModerateError> for ApiError {
    /// A malformed command or a timed mute out of range is a 400 naming the field; a moderator
    /// without the right is 403 `FORBIDDEN`; a store failure is 503.
    fn from(e: crate::commands::moderation::ModerateError) -> Self {
        use crate::commands::moderation::ModerateError;
        use crate::domain::chat::ModerationError;
        match e {
            ModerateError::Invalid(m) => ApiError::validation(m),
            ModerateError::Rule(ModerationError::Duration) => {
                ApiError::validation(format!("query.{}", ModerationError::Duration))
            }
            ModerateError::Rule(rule) => ApiError::forbidden(rule.to_string()),
            ModerateError::Store(s) => s.into(),
        }
    }
}

impl From<crate::commands::rooms::RoomCommandError> for ApiError {
    /// A refused room rule is its 409 or 400; a store failure is 503.
    fn from(e: crate::commands::rooms::RoomCommandError) -> Self {
        match e {
            crate::commands::rooms::RoomCommandError::Rule(rule) => rule.into(),
            crate::commands::rooms::RoomCommandError::Store(store) => store.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    /// Postgres unavailable: 503 `SERVICE_UNAVAILABLE`; a text it cannot hold: 400
    /// `VALIDATION_ERROR`; anything else is a bug: 500 `INTERNAL_ERROR`, logged at error level
    /// with its cause chain.
    fn from(e: sqlx::Error) -> Self {
        match classify_database_error(&e) {
            DatabaseFailure::TextRefused => {
                tracing::info!(error.cause_chain = ?e, "text refused by postgres");
                ApiError::validation("a text field holds a NUL character, which cannot be stored")
            }
            DatabaseFailure::Unavailable => {
                tracing::warn!(error.cause_chain = ?e, "postgres unavailable");
                ApiError::unavailable("the database did not answer; try again")
            }
            DatabaseFailure::Bug => {
                tracing::error!(error.cause_chain = ?e, "database error");
                ApiError::coded(ErrorCode::InternalError, "internal server error")
            }
        }
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        match &e {
            PoolError::StageFull { .. } => ApiError::with_details(
                ErrorCode::StageFull,
                "all stages are full",
                Some(e.to_string()),
            ),
            PoolError::StageLimitReached { .. } => ApiError::with_details(
                ErrorCode::StageLimitReached,
                "the stage limit is reached",
                Some(e.to_string()),
            ),
            PoolError::StageNotFound(_) | PoolError::NotSeated { .. } => {
                ApiError::not_found(e.to_string())
            }
            PoolError::MasterStage => ApiError::forbidden(e.to_string()),
            PoolError::StageHasViewers { .. } => ApiError::validation(e.to_string()),
        }
    }
}

impl From<PoolServiceError> for ApiError {
    fn from(e: PoolServiceError) -> Self {
        match e {
            PoolServiceError::Rule(rule) => rule.into(),
            PoolServiceError::Provider(ProviderError::Token(reason)) => {
                tracing::error!(%reason, "token generation failed");
                ApiError::coded(
                    ErrorCode::TokenGenerationFailed,
                    "the participant token could not be generated",
                )
            }
            PoolServiceError::Provider(ProviderError::QuotaExceeded(reason)) => {
                ApiError::with_details(
                    ErrorCode::StageLimitReached,
                    "the stage limit is reached",
                    Some(reason),
                )
            }
            PoolServiceError::Provider(ProviderError::NotFound(arn)) => {
                ApiError::not_found(format!("stage {arn} not found"))
            }
            PoolServiceError::Provider(ProviderError::Unavailable(reason)) => {
                tracing::warn!(%reason, "IVS unavailable");
                ApiError::unavailable("IVS is unavailable; try again")
            }
            PoolServiceError::Store(e) => e.into(),
            PoolServiceError::Contended => {
                ApiError::unavailable("the stage pool is busy; try again")
            }
            PoolServiceError::NoMasterStage => {
                ApiError::unavailable("the master stage is not ready yet; try again")
            }
        }
    }
}

/// Turns the framework's own errors (bad JSON, wrong types, missing key, unknown route, ...) into the
/// same error body as everything else.
pub async fn framework_error_to_response(err: poem::Error) -> Response {
    // Our own error answers pass through untouched.
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => (
            ErrorCode::ValidationError,
            describe_parse_error(&err.to_string()),
        ),
        StatusCode::UNAUTHORIZED => (
            ErrorCode::Unauthorized,
            "missing or invalid API key (header x-api-key)".to_owned(),
        ),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this route does not accept that method".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::PayloadTooLarge,
            "the request body is too large".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedMediaType,
            format!("{err}; send Content-Type: application/json"),
        ),
        s if s.is_server_error() => {
            tracing::error!(error = %err, "unhandled server error");
            (ErrorCode::InternalError, "internal server error".to_owned())
        }
        _ => (ErrorCode::ValidationError, err.to_string()),
    };
    let details = (code == ErrorCode::ValidationError).then(|| field_details(&message));
    let body = Json(ErrorBody::new(code, message, details));
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(body).into_response(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(body).into_response(),
        _ => poem::web::Json(body.0).with_status(status).into_response(),
    }
}

#[cfg(test)]
#[path = "api_error_tests.rs"]
mod tests;
