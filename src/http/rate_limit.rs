//! The per-API-key rate limit as a poem middleware around the API routes (not `/docs` or
//! `/openapi.*`); the algorithm and its shared state are [`crate::records::rate_limit`].
//!
//! A request whose `x-api-key` is a valid key is counted against that key. Over the limit it is
//! answered 429 `TOO_MANY_REQUESTS` with `Retry-After` and never reaches the handler. Every counted
//! answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
//! (draft-ietf-httpapi-ratelimit-headers). When Postgres does not answer, the request goes
//! through uncounted (fail open). The count is [`crate::records::rate_limit::RateLimiter::check`]:
//! in memory from a leased slice of the key's budget, Postgres once per slice.

use std::sync::Arc;

use poem::http::{HeaderMap, HeaderName, HeaderValue};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::app::AppState;
use crate::http::api_error::{ApiError, framework_error_to_response};
use crate::records::api_keys::ApiKeyRecord;
use crate::records::rate_limit::Decision;

/// The API key of the request's `x-api-key` header, as verified by the rate limit (a request
/// extension): the API-key auth takes it instead of verifying the same key twice per request.
#[derive(Clone, Debug)]
pub struct VerifiedApiKey(pub ApiKeyRecord);

/// Writes `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and, when refused,
/// `Retry-After`.
pub fn write_headers(decision: &Decision, headers: &mut HeaderMap) {
    let mut set = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    set("ratelimit-limit", u64::from(decision.limit));
    set("ratelimit-remaining", u64::from(decision.remaining));
    set("ratelimit-reset", decision.reset_secs);
    if let Some(retry_after) = decision.retry_after_secs {
        set("retry-after", retry_after);
    }
}

/// The 429 answer of a refused request.
pub fn refusal(decision: &Decision) -> Response {
    let retry_after = decision.retry_after_secs.unwrap_or(1);
    let mut response = ApiError::too_many_requests(
        format!(
            "too many requests for this API key (limit {} per minute); retry in {retry_after} s",
            decision.limit
        ),
        Some(format!(
            "limit: {} requests per minute, burst {}; next request allowed in {retry_after} s, \
             full burst in {} s",
            decision.limit, decision.limit, decision.reset_secs
        )),
        Some(retry_after),
    )
    .into_response();
    write_headers(decision, response.headers_mut());
    response
}

/// Counts the request when it carries a valid key; `None` when it is not counted (no key, an
/// unknown key, limits disabled, or the database did not answer: fail open). The key it verified
/// is attached to the request as a [`VerifiedApiKey`], so the API-key auth does not verify it
/// again.
async fn count(state: &AppState, req: &mut Request) -> Option<Decision> {
    if !state.rate_limiter.enabled() {
        return None;
    }
    let key = req.headers().get("x-api-key")?.to_str().ok()?;
    let record = match state.api_keys.verify(&state.db, key).await {
        Ok(Some(record)) => record,
        // Unknown or revoked: the API-key auth answers 401. Lookup failed: it answers 503.
        Ok(None) | Err(_) => return None,
    };
    let (id, limit) = (record.id, record.rate_limit_per_minute);
    req.extensions_mut().insert(VerifiedApiKey(record));
    match state.rate_limiter.check(&state.db, id, limit).await {
        Ok(decision) => Some(decision),
        Err(e) => {
            tracing::warn!(
                error.cause_chain = %e,
                api_key_id = %id,
                "rate limit check failed; letting the request through (fail open)"
            );
            None
        }
    }
}

/// The rate-limit middleware (see the module docs): 429 without calling `ep` when the key is over
/// its limit, else `ep`'s answer with the `RateLimit-*` headers.
pub async fn enforce<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    state: Arc<AppState>,
) -> poem::Result<Response> {
    let Some(decision) = count(&state, &mut req).await else {
        return Ok(ep.call(req).await?.into_response());
    };
    if !decision.allowed {
        return Ok(refusal(&decision));
    }
    // Errors are turned into their answer here (as the catch-all would) so they carry the headers.
    let mut response = match ep.call(req).await {
        Ok(response) => response.into_response(),
        Err(e) => framework_error_to_response(e).await,
    };
    write_headers(&decision, response.headers_mut());
    Ok(response)
}
