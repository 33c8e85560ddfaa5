//! Read-your-writes (docs/api.md#read-your-writes). Every write answer carries `X-Event-Sequence`,
//! the stream sequence of the event it stored. A request that sends `X-Min-Sequence: N` waits until
//! the read models its route uses ([`read_models_for`]) have reached N (bounded by
//! `ONAIR_MIN_SEQUENCE_WAIT_MS`, default 2 s), so it sees the write it follows, like Marten's
//! non-stale queries. If they do not get there in time, the answer is 503 `READ_MODEL_BEHIND`,
//! naming them, and the client may retry. A lagging gifts projection thus never holds up a Stage
//! API read.
//!
//! A read model has reached N when its checkpoint is at least N, or when its consumer has nothing
//! left to apply: then every event up to the end of the stream, N included, that it reads is
//! applied (N was stored before the request came).

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::{Endpoint, IntoResponse, Request, Response};

use super::api_error::{ApiError, ErrorCode, framework_error_to_response};
use crate::app::AppState;
use crate::projections;
use crate::read_models::checkpoints;

/// The request header.
pub const MIN_SEQUENCE: &str = "x-min-sequence";

/// The Stage API's read models.
const STAGE_READ_MODELS: &[&str] = &["stages", "viewers", "publisher"];
/// The room side's read models (client gateway, back office).
const ROOM_READ_MODELS: &[&str] = &["rooms", "followers", "gifts", "room_activity"];

/// The projections whose read models a request to `path` reads; `None`: all of them (a route
/// this table does not know waits for everything, which is never wrong, only slower).
pub fn read_models_for(path: &str) -> Option<&'static [&'static str]> {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/api/backoffice/getGiftRecord") {
        Some(&["gifts"])
    } else if under("/api/action") || under("/api/backoffice") {
        Some(ROOM_READ_MODELS)
    } else if under("/api/stats") || under("/api/stage") || under("/api/viewer") {
        Some(STAGE_READ_MODELS)
    } else {
        None
    }
}

/// Whether every projection in `names` (`None`: all) has reached `sequence`; `Err(behind)` lists
/// those that have not.
pub async fn read_models_reached(
    state: &AppState,
    sequence: u64,
    names: Option<&[&str]>,
) -> Result<Result<(), Vec<&'static str>>, ApiError> {
    let checkpoints = checkpoints::all(&state.db).await?;
    let behind: Vec<&'static str> = state
        .projection_names
        .iter()
        .copied()
        .filter(|name| names.is_none_or(|names| names.contains(name)))
        .filter(|name| {
            checkpoints
                .iter()
                .find(|(p, _)| p == name)
                .is_none_or(|(_, c)| (*c as u64) < sequence)
        })
        .collect();
    if behind.is_empty() {
        return Ok(Ok(()));
    }
    let stream = state
        .store
        .stream()
        .await
        .map_err(|_| ApiError::unavailable("the event store did not answer; try again"))?;
    let mut still_behind = Vec::new();
    for name in behind {
        if projections::consumer_backlog(&stream, name).await != Some(0) {
            still_behind.push(name);
        }
    }
    Ok(if still_behind.is_empty() {
        Ok(())
    } else {
        Err(still_behind)
    })
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
    // Boxed: only requests that send the header wait; the others keep a small future.
    Box::pin(wait_then_call(ep, req, state, sequence)).await
}

async fn wait_then_call<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    state: Arc<AppState>,
    sequence: u64,
) -> poem::Result<Response> {
    let deadline = Instant::now() + state.min_sequence_wait;
    let names = read_models_for(req.uri().path());
    loop {
        match read_models_reached(&state, sequence, names).await {
            Ok(Ok(())) => break,
            Ok(Err(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(Err(behind)) => {
                return Ok(ApiError::coded(
                    ErrorCode::ReadModelBehind,
                    format!(
                        "the read models {} have not reached sequence {sequence} within {} ms; \
                         try again",
                        behind.join(", "),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_waits_for_the_read_models_it_reads() {
        assert_eq!(read_models_for("/api/stats"), Some(STAGE_READ_MODELS));
        assert_eq!(
            read_models_for("/api/viewer/list/arn%3Aaws"),
            Some(STAGE_READ_MODELS)
        );
        assert_eq!(read_models_for("/api/stage"), Some(STAGE_READ_MODELS));
        assert_eq!(
            read_models_for("/api/action/getRoomInfo"),
            Some(ROOM_READ_MODELS)
        );
        assert_eq!(
            read_models_for("/api/backoffice/getGiftRecord"),
            Some(&["gifts"][..])
        );
        assert_eq!(
            read_models_for("/api/backoffice/ListGifts"),
            Some(ROOM_READ_MODELS)
        );
        // Not a prefix match on names: unknown routes wait for everything.
        assert_eq!(read_models_for("/api/statsx"), None);
        assert_eq!(read_models_for("/health"), None);
    }

    #[test]
    fn the_named_read_models_are_projections() {
        let all: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
        for name in STAGE_READ_MODELS.iter().chain(ROOM_READ_MODELS) {
            assert!(all.contains(name), "{name}");
        }
    }
}
