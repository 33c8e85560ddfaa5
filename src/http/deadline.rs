//! The request deadline: an API request that has no answer after its deadline
//! (`ONAIR_REQUEST_DEADLINE_MS`, 9 s by default) is answered
//! 503 `SERVICE_UNAVAILABLE` (retry), so a client never waits past its own timeout when a
//! dependency stalls (a NATS failover, PostgreSQL restarting: each of the request's steps may wait
//! up to 5 s for its connection). The handler is dropped where it stands, as when the client goes
//! away: anything it had stored stays stored, and a retry with the same `Idempotency-Key` stores
//! nothing twice (its event id is derived from the key).

use std::sync::Arc;
use std::time::Duration;

use poem::{Endpoint, IntoResponse, Request, Response};

use super::api_error::ErrorBody;
use super::error_code::ErrorCode;

/// The middleware (see the module docs): answers 503 when `deadline` passes first.
pub async fn bound<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    deadline: Duration,
) -> poem::Result<Response> {
    match tokio::time::timeout(deadline, ep.call(req)).await {
        Ok(answer) => answer.map(IntoResponse::into_response),
        Err(_) => {
            metrics::counter!("onair_http_request_deadline_exceeded_total").increment(1);
            Ok(ErrorBody::response(
                ErrorCode::ServiceUnavailable,
                "no answer within the request deadline; retry",
            ))
        }
    }
}
