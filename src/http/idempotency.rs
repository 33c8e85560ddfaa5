//! `Idempotency-Key` on POST routes (docs/api.md#idempotency): the first answer of a request is
//! kept for 24 h ([`crate::records::idempotency`]), and a retry with the same key, route and body
//! gets that answer again, marked `Idempotent-Replayed: true`, without doing the work twice. The
//! key is scoped to the API key. The same key with another route or body answers 422
//! `IDEMPOTENCY_KEY_REUSED`; a retry while the first request still runs answers 409
//! `REQUEST_IN_PROGRESS` with `Retry-After: 1`. Only 2xx answers are kept: after an error the
//! request may simply be sent again. Handlers also derive event ids from the key, so a crash
//! between storing the event and keeping the answer still stores the event once (JetStream's
//! duplicate window).

use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::api_error::{ErrorBody, ErrorCode, framework_error_to_response};
use crate::app::AppState;
use crate::domain::idempotency::{IdempotencyKey, InvalidIdempotencyKey};
use crate::records::idempotency::{self as records, KeptAnswer};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// Set on a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

fn error(code: ErrorCode, message: &str) -> Response {
    let mut response = ErrorBody::response(code, message);
    if code == ErrorCode::RequestInProgress {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn in_progress() -> Response {
    error(
        ErrorCode::RequestInProgress,
        "a request with this Idempotency-Key is being answered; retry",
    )
}

/// The middleware (applied to the API routes).
pub async fn replay_or_record<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    state: Arc<AppState>,
) -> poem::Result<Response> {
    // A key of bytes outside visible ASCII breaks the rule the spec states: refused, not ignored.
    // A key of ASCII that breaks it is left to the route, which refuses it as it reads the header.
    let raw = req.headers().get(HEADER);
    if raw.is_some_and(|v| v.to_str().is_err()) {
        return Ok(ErrorBody::response(
            ErrorCode::ValidationError,
            InvalidIdempotencyKey.to_string(),
        ));
    }
    let key = raw
        .and_then(|v| v.to_str().ok())
        .and_then(|k| IdempotencyKey::parse(k).ok());
    let api_key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Some(key), Some(api_key)) = (key, api_key) else {
        return call(&ep, req).await;
    };
    if req.method() != Method::POST {
        return call(&ep, req).await;
    }
    // Boxed: most requests carry no key, and the keyed path's database calls would otherwise
    // enlarge every request's future (it is moved, and copied, through each layer above).
    Box::pin(keyed(ep, req, state, key, api_key)).await
}

/// A POST with a valid `Idempotency-Key`: claims the key, runs the request, keeps the answer.
async fn keyed<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    state: Arc<AppState>,
    key: IdempotencyKey,
    api_key: String,
) -> poem::Result<Response> {
    let key = key.as_str();
    let Ok(Some(owner)) = state.api_keys.verify(&state.db, &api_key).await else {
        return call(&ep, req).await;
    };
    let route = req.uri().path().to_owned();
    let body = req.take_body().into_bytes().await.unwrap_or_default();
    let request_hash = Sha256::digest(&body).to_vec();
    req.set_body(body);

    match records::claim(&state.db, owner.id, key, &route, &request_hash).await {
        Ok(true) => {}
        Ok(false) => return Ok(replay(&state, owner.id, key, &route, &request_hash).await),
        Err(e) => {
            // Without the table the request still runs; event ids derived from the key keep the
            // stored events single.
            tracing::warn!(error = %e, "idempotency records unavailable; running the request");
            return call(&ep, req).await;
        }
    }

    let response = call(&ep, req).await?;
    if !response.status().is_success() {
        let _ = records::forget(&state.db, owner.id, key).await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let header_text = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = KeptAnswer {
        status: parts.status.as_u16(),
        content_type: header_text("content-type"),
        event_sequence: header_text("x-event-sequence"),
        body: bytes.to_vec(),
    };
    if let Err(e) = records::keep(&state.db, owner.id, key, &answer).await {
        tracing::warn!(error = %e, "idempotent answer not kept");
    }
    Ok(Response::from_parts(parts, bytes.into()))
}

async fn call<E: Endpoint>(ep: &Arc<E>, req: Request) -> poem::Result<Response> {
    Ok(match ep.call(req).await {
        Ok(response) => response.into_response(),
        Err(e) => framework_error_to_response(e).await,
    })
}

/// The kept answer of `key`, or why there is none to give.
async fn replay(
    state: &AppState,
    owner: Uuid,
    key: &str,
    route: &str,
    request_hash: &[u8],
) -> Response {
    let record = records::find(&state.db, owner, key).await.ok().flatten();
    let Some(record) = record else {
        return in_progress();
    };
    if record.route != route || record.request_hash != request_hash {
        return error(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with another route or body; use a new key",
        );
    }
    let (Some(status), Some(body)) = (record.status, record.body) else {
        return in_progress();
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK))
        .header(REPLAYED_HEADER, "true");
    if let Some(content_type) = record.content_type {
        response = response.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(sequence) = record.event_sequence {
        response = response.header("x-event-sequence", sequence);
    }
    response.body(body)
}
