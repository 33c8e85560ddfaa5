//! Read-your-writes (DESIGN.md §5). Every write answer carries `X-Event-Sequence`, the stream
//! sequence of the event it stored. A request that sends `X-Min-Sequence: N` waits until every
//! read model has reached N (bounded by `ONAIR_MIN_SEQUENCE_WAIT_MS`, default 2 s), so it sees the
//! write it follows, like Marten's non-stale queries. If the read models do not get there in time,
//! the answer is 503 `READ_MODEL_BEHIND` and the client may retry.
//!
//! A read model has reached N when its checkpoint is at least N, or when its consumer has nothing
//! left to apply: then every event up to the end of the stream, N included, that it reads is
//! applied (N was stored before the request came).

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::{Endpoint, IntoResponse, Request, Response};

use super::AppState;
use super::api_error::{ApiError, framework_error_to_response};
use crate::projections;

/// The request header.
pub const MIN_SEQUENCE: &str = "x-min-sequence";

/// Whether every projection has reached `sequence`.
pub async fn read_models_reached(state: &AppState, sequence: u64) -> Result<bool, ApiError> {
    let checkpoints: Vec<(String, i64)> =
        sqlx::query_as("SELECT projection, last_sequence FROM projection_checkpoints")
            .fetch_all(&state.db)
            .await?;
    let behind: Vec<&str> = state
        .projection_names
        .iter()
        .copied()
        .filter(|name| {
            checkpoints
                .iter()
                .find(|(p, _)| p == name)
                .is_none_or(|(_, c)| (*c as u64) < sequence)
        })
        .collect();
    if behind.is_empty() {
        return Ok(true);
    }
    let stream = state
        .store
        .stream()
        .await
        .map_err(|_| ApiError::unavailable("the event store did not answer; try again"))?;
    for name in behind {
        if projections::consumer_backlog(&stream, name).await != Some(0) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The middleware: waits for `X-Min-Sequence` before the request runs.
pub async fn wait_for_min_sequence<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    state: Arc<AppState>,
) -> poem::Result<Response> {
    let Some(raw) = req.headers().get(MIN_SEQUENCE) else {
        return Ok(ep.call(req).await?.into_response());
    };
    let Some(sequence) = raw.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) else {
        return Ok(ApiError::validation(
            "X-Min-Sequence must be a stream sequence (a whole number, as X-Event-Sequence gives)",
        )
        .into_response());
    };
    let deadline = Instant::now() + state.min_sequence_wait;
    loop {
        match read_models_reached(&state, sequence).await {
            Ok(true) => break,
            Ok(false) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(false) => {
                return Ok(ApiError::coded(
                    503,
                    "READ_MODEL_BEHIND",
                    format!(
                        "the read models have not reached sequence {sequence} within {} ms; \
                         try again",
                        state.min_sequence_wait.as_millis()
                    ),
                )
                .into_response());
            }
            Err(e) => return Ok(e.into_response()),
        }
    }
    match ep.call(req).await {
        Ok(response) => Ok(response.into_response()),
        Err(e) => Ok(framework_error_to_response(e).await),
    }
}
