//! Every error code of the API (the table in [`crate::http::api_error`]), each with its HTTP
//! status and its wire string. Handlers and middleware name a code, never spell it.

use poem::http::StatusCode;

/// A stable, machine-readable error code: the `error` field of every error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: a parameter is missing, empty, too long, of the wrong type, or the body is not JSON.
    ValidationError,
    /// 401: no or an unknown API key, no member `Authorization`, wrong back-office credentials.
    Unauthorized,
    /// 401: a member `Authorization` that is malformed or not signed by onair.
    TokenInvalid,
    /// 401: a member `Authorization` past its expiry.
    TokenExpired,
    /// 401: a member `Authorization` issued before a password or role change.
    TokenRevoked,
    /// 401: unknown `memberID` or wrong password (one answer for both).
    LoginFailed,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: unknown stage, viewer not on the stage, unknown route.
    NotFound,
    /// 404: `POST /api/action/{actionName}` with a name that is not an action.
    UnknownAction,
    /// 404: the member does not exist.
    MemberNotFound,
    /// 404: the streamer does not exist.
    StreamerNotFound,
    /// 404: the gift does not exist or is disabled.
    GiftNotFound,
    /// 405: a route exists but not for this method.
    MethodNotAllowed,
    /// 409: registering a member id that exists.
    MemberExists,
    /// 409: `startStream` while live.
    AlreadyLive,
    /// 409: `endStream` while offline.
    NotLive,
    /// 409: `follow` twice.
    AlreadyFollowing,
    /// 409: `unfollow` without following.
    NotFollowing,
    /// 409: a retry while the first request with its `Idempotency-Key` runs.
    RequestInProgress,
    /// 413: body above `ONAIR_MAX_BODY_BYTES`.
    PayloadTooLarge,
    /// 415: a body that is not `application/json`.
    UnsupportedMediaType,
    /// 422: an `Idempotency-Key` sent again with another route or body.
    IdempotencyKeyReused,
    /// 426: a plain request to a WebSocket route (`/ws`, `/primus`).
    UpgradeRequired,
    /// 429: over a rate limit.
    TooManyRequests,
    /// 500: the participant token could not be signed.
    TokenGenerationFailed,
    /// 500: anything else; details are logged, not shown.
    InternalError,
    /// 503: every stage is at its cap and the pool at its stage limit.
    StageFull,
    /// 503: a stage was needed and none could be created.
    StageLimitReached,
    /// 503: NATS or Postgres did not answer; nothing was stored.
    ServiceUnavailable,
    /// 503: the read models of a GET had not reached its `X-Min-Sequence` in time.
    ReadModelBehind,
}

impl ErrorCode {
    /// Every code, in the order of the table.
    pub const ALL: [ErrorCode; 30] = [
        Self::ValidationError,
        Self::Unauthorized,
        Self::TokenInvalid,
        Self::TokenExpired,
        Self::TokenRevoked,
        Self::LoginFailed,
        Self::Forbidden,
        Self::NotFound,
        Self::UnknownAction,
        Self::MemberNotFound,
        Self::StreamerNotFound,
        Self::GiftNotFound,
        Self::MethodNotAllowed,
        Self::MemberExists,
        Self::AlreadyLive,
        Self::NotLive,
        Self::AlreadyFollowing,
        Self::NotFollowing,
        Self::RequestInProgress,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::IdempotencyKeyReused,
        Self::UpgradeRequired,
        Self::TooManyRequests,
        Self::TokenGenerationFailed,
        Self::InternalError,
        Self::StageFull,
        Self::StageLimitReached,
        Self::ServiceUnavailable,
        Self::ReadModelBehind,
    ];

    /// The wire string, e.g. `VALIDATION_ERROR`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ValidationError => "VALIDATION_ERROR",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::TokenInvalid => "TOKEN_INVALID",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::TokenRevoked => "TOKEN_REVOKED",
            Self::LoginFailed => "LOGIN_FAILED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::UnknownAction => "UNKNOWN_ACTION",
            Self::MemberNotFound => "MEMBER_NOT_FOUND",
            Self::StreamerNotFound => "STREAMER_NOT_FOUND",
            Self::GiftNotFound => "GIFT_NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::MemberExists => "MEMBER_EXISTS",
            Self::AlreadyLive => "ALREADY_LIVE",
            Self::NotLive => "NOT_LIVE",
            Self::AlreadyFollowing => "ALREADY_FOLLOWING",
            Self::NotFollowing => "NOT_FOLLOWING",
            Self::RequestInProgress => "REQUEST_IN_PROGRESS",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::UpgradeRequired => "UPGRADE_REQUIRED",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::TokenGenerationFailed => "TOKEN_GENERATION_FAILED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::StageFull => "STAGE_FULL",
            Self::StageLimitReached => "STAGE_LIMIT_REACHED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::ReadModelBehind => "READ_MODEL_BEHIND",
        }
    }

    /// The HTTP status this code is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::ValidationError => StatusCode::BAD_REQUEST,
            Self::Unauthorized
            | Self::TokenInvalid
            | Self::TokenExpired
            | Self::TokenRevoked
            | Self::LoginFailed => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound
            | Self::UnknownAction
            | Self::MemberNotFound
            | Self::StreamerNotFound
            | Self::GiftNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MemberExists
            | Self::AlreadyLive
            | Self::NotLive
            | Self::AlreadyFollowing
            | Self::NotFollowing
            | Self::RequestInProgress => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::TokenGenerationFailed | Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StageFull
            | Self::StageLimitReached
            | Self::ServiceUnavailable
            | Self::ReadModelBehind => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_documented_table_keeps_its_wire_string_and_status() {
        let table = include_str!("api_error.rs");
        for code in ErrorCode::ALL {
            let row = table
                .lines()
                .filter(|l| l.starts_with("//! | "))
                .find(|l| l.contains(&format!("`{}`", code.as_str())))
                .unwrap_or_else(|| panic!("{code} is not in the table"));
            let status = code.status().as_u16().to_string();
            assert!(
                row.starts_with(&format!("//! | {status} ")),
                "{code}: {row}"
            );
        }
    }

    #[test]
    fn wire_strings_are_unique_screaming_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
        }
    }
}
