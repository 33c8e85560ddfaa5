//! `/dashboard`: the operators' live dashboard, a static page served by onair itself (HTML, CSS
//! and JavaScript embedded in the binary; uPlot, MIT, vendored with its license for the line
//! chart) and two JSON routes it reads. These routes are for the page and are not part of the
//! OpenAPI spec:
//!
//! - `GET /dashboard` (and `/dashboard/app.js`, `/dashboard/app.css`, `/dashboard/vendor/...`):
//!   open, like `/docs`; the page holds no data. Its HTML carries [`DASHBOARD_CSP`]: scripts
//!   and styles from the page's own origin only, nothing inline.
//! - `GET /dashboard/api/overview`: the figures of src/http/dashboard/overview.rs as JSON.
//! - `GET /dashboard/api/feed[?type=TEXT]`: server-sent events (`text/event-stream`): an
//!   `overview` event at once and every [`OVERVIEW_EVERY`], and an `event` event
//!   (`{sequence, type, subject, time}`) for each event stored in the stream from
//!   [`FEED_BACKLOG`] events back, only those whose type contains `TEXT` when it is given; at most
//!   [`FEED_EVENTS_PER_SECOND`] a second, the rest are counted in a `skipped` event
//!   (`{"skipped": n}`).
//!
//! Both JSON routes need an operator's credentials in headers (never in the URL): an API key
//! (`x-api-key`, the Stage API's operator credential), or a back-office operator of global scope
//! (`x-operator-website` + `x-operator-key`; an operator scoped to one master agent may not see
//! the whole platform: 403 `FORBIDDEN`). Missing or wrong credentials: 401 `UNAUTHORIZED`.
//! The page reads the feed with `fetch()` (an `EventSource` cannot send headers) and keeps the
//! credentials in `sessionStorage`.

pub mod history;
pub mod overview;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use poem::http::StatusCode;
use poem::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use poem::web::{Data, Query};
use poem::{Body, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use serde::Deserialize;
use serde_json::json;

use self::history::ViewerHistory;
use crate::app::AppState;
use crate::domain::operator::OperatorScope;
use crate::http::api_error::ApiError;
use crate::http::error_code::ErrorCode;

/// The `Content-Security-Policy` of the dashboard's HTML: everything from the page's origin,
/// nothing inline, no framing (the favicon is an empty `data:` image).
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'; object-src 'none'";

/// How often the feed sends the figures.
pub const OVERVIEW_EVERY: Duration = Duration::from_secs(2);
/// Events the feed starts back from the end of the stream.
pub const FEED_BACKLOG: u64 = 20;
/// Most `event` events a feed sends per second.
pub const FEED_EVENTS_PER_SECOND: u32 = 50;

const INDEX_HTML: &str = include_str!("../../../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../../../assets/dashboard/app.js");
const APP_CSS: &str = include_str!("../../../assets/dashboard/app.css");
const UPLOT_JS: &str = include_str!("../../../assets/dashboard/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../../assets/dashboard/vendor/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../../../assets/dashboard/vendor/LICENSE");

/// The dashboard's routes, nested at `/dashboard`; starts recording the viewer history from
/// `state`'s stats feed.
pub fn routes(state: &AppState) -> impl poem::Endpoint<Output = Response> + use<> {
    let history = ViewerHistory::default();
    history.follow(state.stats_feed.clone());
    Route::new()
        .at("/", get(page))
        .at(
            "/app.js",
            get(asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .at("/app.css", get(asset(APP_CSS, "text/css; charset=utf-8")))
        .at(
            "/vendor/uPlot.iife.min.js",
            get(asset(UPLOT_JS, "text/javascript; charset=utf-8")),
        )
        .at(
            "/vendor/uPlot.min.css",
            get(asset(UPLOT_CSS, "text/css; charset=utf-8")),
        )
        .at(
            "/vendor/LICENSE",
            get(asset(UPLOT_LICENSE, "text/plain; charset=utf-8")),
        )
        .at("/api/overview", get(overview_json))
        .at("/api/feed", get(feed))
        .data(history)
        .map_to_response()
}

#[handler]
fn page() -> Response {
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .header(CONTENT_SECURITY_POLICY, DASHBOARD_CSP)
        .header(CACHE_CONTROL, "no-cache")
        .body(INDEX_HTML)
}

fn asset(body: &'static str, content_type: &'static str) -> impl poem::Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .header(CACHE_CONTROL, "no-cache")
            .body(body)
    })
}

/// Checks the request's operator credentials (see the module docs).
async fn authorize(req: &Request, state: &AppState) -> Result<(), ApiError> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    if let Some(key) = header("x-api-key") {
        return match state.api_keys.verify(&state.db, key).await? {
            Some(_) => Ok(()),
            None => Err(ApiError::unauthorized("invalid API key")),
        };
    }
    let (Some(website), Some(key)) = (header("x-operator-website"), header("x-operator-key"))
    else {
        return Err(ApiError::unauthorized(
            "missing credentials: x-api-key, or x-operator-website and x-operator-key",
        ));
    };
    if !website.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::unauthorized("unknown website or wrong key"));
    }
    match crate::records::operators::verify(&state.db, website, key).await? {
        Some(OperatorScope::Global) => Ok(()),
        Some(OperatorScope::MasterAgent(_)) => Err(ApiError::coded(
            ErrorCode::Forbidden,
            "the dashboard shows the whole platform; an operator scoped to one master agent \
             may not see it",
        )),
        None => Err(ApiError::unauthorized("unknown website or wrong key")),
    }
}

#[handler]
async fn overview_json(
    req: &Request,
    state: Data<&Arc<AppState>>,
    history: Data<&ViewerHistory>,
) -> Response {
    if let Err(e) = authorize(req, &state).await {
        return e.into_response();
    }
    match overview::overview(&state, &history).await {
        Ok(figures) => poem::web::Json(figures)
            .with_header(CACHE_CONTROL, "no-store")
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Query of `GET /dashboard/api/feed`.
#[derive(Deserialize)]
struct FeedQuery {
    /// Only events whose type contains this text.
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn sse_frame(event: &str, data: &serde_json::Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

#[handler]
async fn feed(
    req: &Request,
    state: Data<&Arc<AppState>>,
    history: Data<&ViewerHistory>,
    Query(query): Query<FeedQuery>,
) -> Response {
    if let Err(e) = authorize(req, &state).await {
        return e.into_response();
    }
    let events = match crate::ops::feed::follow(&state.store, FEED_BACKLOG).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard feed could not read the stream");
            return ApiError::coded(
                ErrorCode::ServiceUnavailable,
                "the event stream did not answer; try again",
            )
            .into_response();
        }
    };
    let filter = query.kind.unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let (state, history) = (state.0.clone(), history.0.clone());
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut ticker = tokio::time::interval(OVERVIEW_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut second, mut sent, mut skipped) = (Instant::now(), 0u32, 0u64);
        loop {
            let frame = tokio::select! {
                _ = tx.closed() => return,
                _ = ticker.tick() => {
                    let mut frame = match overview::overview(&state, &history).await {
                        Ok(figures) => sse_frame("overview", &figures),
                        Err(_) => sse_frame("error", &json!({"message": "figures unavailable"})),
                    };
                    if skipped > 0 {
                        frame.push_str(&sse_frame("skipped", &json!({"skipped": skipped})));
                        skipped = 0;
                    }
                    frame
                }
                event = events.next() => {
                    let Some(event) = event else { return };
                    if !event.kind.contains(filter.as_str()) {
                        continue;
                    }
                    if second.elapsed() >= Duration::from_secs(1) {
                        (second, sent) = (Instant::now(), 0);
                    }
                    if sent >= FEED_EVENTS_PER_SECOND {
                        skipped += 1;
                        continue;
                    }
                    sent += 1;
                    sse_frame("event", &json!(event))
                }
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, std::io::Error>(frame.into_bytes()), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/event-stream")
        .header(CACHE_CONTROL, "no-store")
        .header("x-accel-buffering", "no")
        .body(Body::from_bytes_stream(body))
}
