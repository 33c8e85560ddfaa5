//! Browsers: CORS for the REST API and the `Origin` check of WebSocket upgrades, both from one
//! allow-list, `ONAIR_CORS_ORIGINS` (src/server/config.rs,
//! docs/api.md#cors-and-websocket-origins).
//!
//! - **REST.** A request whose `Origin` is on the list (or any, with `*`) goes through poem's
//!   [`Cors`] middleware: a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
//!   200 right there, before authentication, rate limits and routing, allowing the methods
//!   [`ALLOWED_METHODS`] and the request headers [`ALLOWED_HEADERS`] (what the seeds' clients
//!   send); every other answer, errors included (401, 429, 503, ...), carries
//!   `Access-Control-Allow-Origin` (the request's origin), `Vary: Origin` and
//!   `Access-Control-Expose-Headers` with [`EXPOSED_HEADERS`]. Credentials (cookies) are not
//!   allowed: onair authenticates with headers. A request from an origin not on the list (or any
//!   origin, with an empty list) is served as if it came from no browser: without CORS headers,
//!   so the browser does not let the page read the answer.
//! - **WebSocket upgrades** (`/primus*` and `/ws`, any `Upgrade: websocket` request): accepted
//!   without an `Origin` (a non-browser client: browsers always send one), from the server's own
//!   origin (the `Origin`'s host and port equal the `Host` header, whatever the scheme, so a
//!   TLS-terminating proxy that keeps `Host` works), or from an allowed origin; any other is
//!   answered 403 `FORBIDDEN` before the upgrade, so a page of another site cannot open a socket
//!   in a visitor's name.

use std::collections::HashSet;
use std::sync::Arc;

use poem::http::{HeaderMap, Method, header};
use poem::middleware::Cors;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use super::api_error::{ErrorBody, ErrorCode};

/// Request headers a cross-origin page may send: the API key, the JSON body's type, the member
/// token, the idempotency key and the read-your-writes floor.
pub const ALLOWED_HEADERS: [&str; 5] = [
    "x-api-key",
    "content-type",
    "authorization",
    "idempotency-key",
    "x-min-sequence",
];

/// Response headers a cross-origin page may read: the event's stream sequence, the rate limit's
/// and the idempotent replay's headers.
pub const EXPOSED_HEADERS: [&str; 6] = [
    "x-event-sequence",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "idempotent-replayed",
];

/// Methods of the API's routes.
pub const ALLOWED_METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::DELETE];

/// How long a browser may cache a preflight's answer, in seconds (browsers cap it: Chromium at
/// 2 hours).
pub const PREFLIGHT_MAX_AGE_SECS: i32 = 3600;

/// The allow-list of `ONAIR_CORS_ORIGINS`: exact origins (lowercase `scheme://host[:port]`), or
/// any with `*`. Empty entries are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    any: bool,
    origins: HashSet<String>,
}

impl OriginPolicy {
    /// The policy of the configured list (entries as parsed by the setting: lowercase, no
    /// trailing `/`).
    pub fn new(origins: &[String]) -> Self {
        let origins: HashSet<String> = origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Self {
            any: origins.contains("*"),
            origins,
        }
    }

    /// Whether a page of `origin` may read the API's answers (CORS).
    pub fn allows_cross_origin(&self, origin: &str) -> bool {
        self.any || self.origins.contains(&origin.trim().to_ascii_lowercase())
    }

    /// Whether a WebSocket upgrade with this `Origin` (none: not a browser) to a server reached
    /// as `host` (the `Host` header) is accepted: no origin, the same host and port, or an
    /// allowed origin.
    pub fn allows_upgrade(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let same_origin = match (origin.split_once("://"), host) {
            (Some((_, authority)), Some(host)) => authority.eq_ignore_ascii_case(host.trim()),
            _ => false,
        };
        same_origin || self.allows_cross_origin(origin)
    }
}

/// Whether the request asks for a WebSocket upgrade (`Upgrade: websocket`).
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The middleware of the module docs, around every route.
pub struct CorsLayer {
    policy: Arc<OriginPolicy>,
}

impl CorsLayer {
    /// The middleware of `policy`.
    pub fn new(policy: OriginPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<E: Endpoint> Middleware<E> for CorsLayer {
    type Output = CorsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        let inner = Arc::new(ep);
        let policy = self.policy.clone();
        let cors = ALLOWED_METHODS
            .iter()
            .fold(Cors::new(), |c, m| c.allow_method(m.clone()))
            .allow_headers(ALLOWED_HEADERS)
            .expose_headers(EXPOSED_HEADERS)
            .allow_credentials(false)
            .max_age(PREFLIGHT_MAX_AGE_SECS)
            .allow_origins_fn(move |origin| policy.allows_cross_origin(origin));
        CorsEndpoint {
            policy: self.policy.clone(),
            with_cors: cors.transform(inner.clone()),
            inner,
        }
    }
}

/// The endpoint of [`CorsLayer`].
pub struct CorsEndpoint<E: Endpoint> {
    policy: Arc<OriginPolicy>,
    inner: Arc<E>,
    with_cors: <Cors as Middleware<Arc<E>>>::Output,
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        if is_websocket_upgrade(req.headers()) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            if !self.policy.allows_upgrade(origin.as_deref(), host) {
                let origin = origin.unwrap_or_default();
                tracing::warn!(%origin, path = req.uri().path(), "WebSocket upgrade from a refused origin");
                return Ok(ErrorBody::response(
                    ErrorCode::Forbidden,
                    format!("a page of {origin} may not open this WebSocket (ONAIR_CORS_ORIGINS)"),
                ));
            }
        }
        match origin {
            Some(origin) if self.policy.allows_cross_origin(&origin) => {
                match self.with_cors.call(req).await {
                    Ok(resp) => Ok(resp),
                    // A preflight asking for a method or header that is not allowed.
                    Err(e) if !e.is_from_response() => Ok(ErrorBody::response(
                        ErrorCode::Forbidden,
                        format!("CORS preflight refused: {e}"),
                    )),
                    Err(e) => Ok(e.into_response()),
                }
            }
            _ => self.inner.call(req).await.map(IntoResponse::into_response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> OriginPolicy {
        OriginPolicy::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn an_empty_list_allows_no_cross_origin_page() {
        let p = policy(&["", " "]);
        assert!(!p.allows_cross_origin("http://localhost:5173"));
        assert!(p.allows_upgrade(None, Some("api.example.com")));
        assert!(p.allows_upgrade(Some("https://api.example.com"), Some("api.example.com")));
        assert!(p.allows_upgrade(Some("http://127.0.0.1:3000"), Some("127.0.0.1:3000")));
        assert!(!p.allows_upgrade(Some("http://127.0.0.1:3001"), Some("127.0.0.1:3000")));
        assert!(!p.allows_upgrade(Some("https://evil.example"), Some("api.example.com")));
        assert!(!p.allows_upgrade(Some("null"), Some("api.example.com")));
        assert!(!p.allows_upgrade(Some("https://evil.example"), None));
    }

    #[test]
    fn listed_origins_match_exactly_and_a_star_matches_any() {
        let p = policy(&["https://app.example.com", "http://localhost:5173/"]);
        assert!(p.allows_cross_origin("https://app.example.com"));
        assert!(p.allows_cross_origin("HTTP://LOCALHOST:5173"));
        assert!(!p.allows_cross_origin("http://app.example.com"));
        assert!(!p.allows_cross_origin("https://app.example.com.evil.example"));
        assert!(p.allows_upgrade(Some("https://app.example.com"), Some("api.example.com")));
        let any = policy(&["*"]);
        assert!(any.allows_cross_origin("https://anything.example"));
        assert!(any.allows_upgrade(Some("null"), Some("api.example.com")));
    }

    #[test]
    fn only_websocket_upgrades_are_checked() {
        let mut h = HeaderMap::new();
        assert!(!is_websocket_upgrade(&h));
        h.insert(header::UPGRADE, "WebSocket".parse().unwrap());
        assert!(is_websocket_upgrade(&h));
        h.insert(header::UPGRADE, "h2c".parse().unwrap());
        assert!(!is_websocket_upgrade(&h));
    }
}
