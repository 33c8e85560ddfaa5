//! `Idempotency-Key` on POST routes (DESIGN.md §2): the first answer of a request is kept for 24 h
//! (table `idempotency_records`), and a retry with the same key, route and body gets that answer
//! again, marked `Idempotent-Replayed: true`, without doing the work twice. The key is scoped to the
//! API key. The same key with another route or body answers 422 `IDEMPOTENCY_KEY_REUSED`; a retry
//! while the first request still runs answers 409 `REQUEST_IN_PROGRESS` with `Retry-After: 1`. Only
//! 2xx answers are kept: after an error the request may simply be sent again. Handlers also derive
//! event ids from the key, so a crash between storing the event and keeping the answer still
//! stores the event once (JetStream's duplicate window).

use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AppState;
use super::api_error::{ErrorBody, framework_error_to_response};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// Set on a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = poem::web::Json(ErrorBody {
        error: code.to_owned(),
        message: message.to_owned(),
        details: None,
    })
    .with_status(status)
    .into_response();
    if status == StatusCode::CONFLICT {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[derive(sqlx::FromRow)]
struct Record {
    route: String,
    request_hash: Vec<u8>,
    status: Option<i16>,
    content_type: Option<String>,
    event_sequence: Option<String>,
    body: Option<Vec<u8>>,
}

/// The middleware (applied to the API routes).
pub async fn replay_or_record<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    state: Arc<AppState>,
) -> poem::Result<Response> {
    let key = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
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
    let Ok(Some(owner)) = state.api_keys.verify(&state.db, &api_key).await else {
        return call(&ep, req).await;
    };
    let route = req.uri().path().to_owned();
    let body = req.take_body().into_bytes().await.unwrap_or_default();
    let request_hash = Sha256::digest(&body).to_vec();
    req.set_body(body);

    match claim(&state, owner.id, &key, &route, &request_hash).await {
        Ok(true) => {}
        Ok(false) => return replay(&state, owner.id, &key, &route, &request_hash).await,
        Err(e) => {
            // Without the table the request still runs; event ids derived from the key keep the
            // stored events single.
            tracing::warn!(error = %e, "idempotency records unavailable; running the request");
            return call(&ep, req).await;
        }
    }

    let response = call(&ep, req).await?;
    if !response.status().is_success() {
        forget(&state, owner.id, &key).await;
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
    let kept = sqlx::query(
        "UPDATE idempotency_records SET status = $3, content_type = $4, event_sequence = $5,
           body = $6 WHERE api_key_id = $1 AND idempotency_key = $2",
    )
    .bind(owner.id)
    .bind(&key)
    .bind(parts.status.as_u16() as i16)
    .bind(header_text("content-type"))
    .bind(header_text("x-event-sequence"))
    .bind(bytes.to_vec())
    .execute(&state.db)
    .await;
    if let Err(e) = kept {
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

/// Takes the key for this request: true when it is new (or its record expired).
async fn claim(
    state: &AppState,
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
         RETURNING true",
    )
    .bind(owner)
    .bind(key)
    .bind(route)
    .bind(request_hash)
    .fetch_optional(&state.db)
    .await?;
    Ok(row.is_some())
}

async fn forget(state: &AppState, owner: Uuid, key: &str) {
    let _ = sqlx::query(
        "DELETE FROM idempotency_records WHERE api_key_id = $1 AND idempotency_key = $2",
    )
    .bind(owner)
    .bind(key)
    .execute(&state.db)
    .await;
}

async fn replay(
    state: &AppState,
    owner: Uuid,
    key: &str,
    route: &str,
    request_hash: &[u8],
) -> poem::Result<Response> {
    let record: Option<Record> = sqlx::query_as(
        "SELECT route, request_hash, status, content_type, event_sequence, body
         FROM idempotency_records WHERE api_key_id = $1 AND idempotency_key = $2",
    )
    .bind(owner)
    .bind(key)
    .fetch_optional(&state.db)
    .await
    .ok()
    .flatten();
    let Some(record) = record else {
        return Ok(error(
            StatusCode::CONFLICT,
            "REQUEST_IN_PROGRESS",
            "a request with this Idempotency-Key is being answered; retry",
        ));
    };
    if record.route != route || record.request_hash != request_hash {
        return Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with another route or body; use a new key",
        ));
    }
    let (Some(status), Some(body)) = (record.status, record.body) else {
        return Ok(error(
            StatusCode::CONFLICT,
            "REQUEST_IN_PROGRESS",
            "a request with this Idempotency-Key is being answered; retry",
        ));
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
    Ok(response.body(body))
}
