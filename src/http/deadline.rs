//! The request deadline: an API request that has no answer after [`REQUEST_DEADLINE`] is answered
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

/// The longest an API request runs before it is answered 503: under the 10 s clients and the
/// load balancer wait (`deploy/nginx.conf`, the cluster fault suite).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(9);

/// The middleware (see the module docs).
pub async fn bound<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    match tokio::time::timeout(REQUEST_DEADLINE, ep.call(req)).await {
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
