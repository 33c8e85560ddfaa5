//! The HTTP side of `/metrics`: the middleware that counts and times every API request, and the
//! route that renders the recorder ([`crate::runtime::metrics`] lists the metrics).

use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response, handler, web::Data};

use crate::app::AppState;
use crate::runtime::metrics::handle;

/// Counts and times every API request by operation and status.
pub async fn track<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let response = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => crate::http::api_error::framework_error_to_response(e).await,
    };
    let operation = response
        .extensions()
        .get::<poem_openapi::OperationId>()
        .map_or("other", |id| id.0);
    metrics::counter!("onair_http_requests_total", "operation" => operation,
        "status" => response.status().as_u16().to_string())
    .increment(1);
    metrics::histogram!("onair_http_request_duration_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// `GET /metrics`.
#[handler]
pub async fn serve(state: Data<&Arc<AppState>>) -> Response {
    let handle = handle();
    metrics::gauge!("onair_chat_open_sockets").set(state.chat.hub.len() as f64);
    crate::runtime::metrics::record_process_gauges();
    if let Ok(stream) = state.store.stream().await {
        for name in &state.projection_names {
            if let Some(backlog) = crate::projections::consumer_backlog(&stream, name).await {
                metrics::gauge!("onair_projection_pending_events", "projection" => *name)
                    .set(backlog as f64);
            }
        }
    }
    handle
        .render()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response()
}
