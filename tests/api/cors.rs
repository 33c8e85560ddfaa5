//! Browsers (src/http/cors.rs): CORS preflights and headers from the `ONAIR_CORS_ORIGINS`
//! allow-list, none for other origins, and the `Origin` check of WebSocket upgrades on `/primus`
//! and `/ws` (403 for a refused origin).

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::helpers::{Services, TestApp, spawn_app_with};
use crate::socket_limits::socket_url;

const ALLOWED: &str = "http://app.example.test:5173";
const REFUSED: &str = "https://evil.example.test";

async fn app_allowing(services: &Services, origins: &[&str]) -> TestApp {
    let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
    spawn_app_with(services, move |s| {
        s.cors_origins = origins;
        s.min_sequence_wait_ms = 50;
    })
    .await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The comma-separated values of `name`, lowercased.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    header(headers, name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

async fn preflight(app: &TestApp, origin: &str, path: &str, method: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}{path}", app.address))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header(
            "Access-Control-Request-Headers",
            "x-api-key, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_before_auth_and_rate_limits() {
    let services = Services::start().await;
    let app = app_allowing(&services, &[ALLOWED]).await;
    for (path, method) in [
        ("/api/token/viewer", "POST"),
        ("/api/stage/arn%3Aaws%3Aivs%3Ax", "DELETE"),
        ("/api/action/loginAction", "POST"),
        ("/api/stats/publisher", "GET"),
    ] {
        // No x-api-key is sent: a preflight never carries one.
        let resp = preflight(&app, ALLOWED, path, method).await;
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let h = resp.headers();
        assert_eq!(header(h, "access-control-allow-origin"), Some(ALLOWED));
        let methods = list(h, "access-control-allow-methods");
        assert!(
            methods.contains(&method.to_ascii_lowercase()),
            "{methods:?}"
        );
        let allowed = list(h, "access-control-allow-headers");
        for name in [
            "x-api-key",
            "content-type",
            "authorization",
            "idempotency-key",
            "x-min-sequence",
        ] {
            assert!(allowed.contains(&name.to_owned()), "{name} in {allowed:?}");
        }
        assert!(header(h, "access-control-max-age").is_some());
        assert!(header(h, "ratelimit-limit").is_none(), "not counted");
    }
}

#[tokio::test]
async fn answers_to_an_allowed_origin_carry_cors_headers_errors_included() {
    let services = Services::start().await;
    let app = app_allowing(&services, &[ALLOWED, "http://other.example.test"]).await;
    let exposed = |h: &HeaderMap| {
        let exposed = list(h, "access-control-expose-headers");
        for name in [
            "x-event-sequence",
            "retry-after",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "idempotent-replayed",
        ] {
            assert!(exposed.contains(&name.to_owned()), "{name} in {exposed:?}");
        }
    };
    // 200, as the Stage API's fetch example reads it.
    let ok = app
        .client
        .post(format!("{}/api/token/viewer", app.address))
        .header("Origin", ALLOWED)
        .header("x-api-key", &app.api_key)
        .json(&json!({"userId": "cors-viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        header(ok.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_eq!(header(ok.headers(), "vary"), Some("Origin"));
    assert!(header(ok.headers(), "access-control-allow-credentials").is_none());
    exposed(ok.headers());

    // 401 without a key.
    let unauthorized = app
        .client
        .get(format!("{}/api/stats/publisher", app.address))
        .header("Origin", "http://other.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(
        header(unauthorized.headers(), "access-control-allow-origin"),
        Some("http://other.example.test")
    );
    exposed(unauthorized.headers());

    // 429 over a key's rate limit: the page can read Retry-After.
    let (_, slow_key) = onair::records::api_keys::create(&app.db, "cors-slow", 1)
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            app.client
                .get(format!("{}/api/stats/publisher", app.address))
                .header("Origin", ALLOWED)
                .header("x-api-key", &slow_key)
                .send()
                .await
                .unwrap(),
        );
    }
    let limited = last.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(
        header(limited.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert!(header(limited.headers(), "retry-after").is_some());
    exposed(limited.headers());

    // 503 when the read models do not reach X-Min-Sequence in time (projectors stopped).
    app.projectors.kill();
    let late = app.viewer_token("cors-late").await.event_sequence();
    let behind = app
        .client
        .get(format!("{}/api/stats", app.address))
        .header("Origin", ALLOWED)
        .header("x-api-key", &app.api_key)
        .header("X-Min-Sequence", late.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(behind.status(), 503);
    assert_eq!(
        header(behind.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let body: Value = behind.json().await.unwrap();
    assert_eq!(body["error"], "READ_MODEL_BEHIND");
}

#[tokio::test]
async fn a_refused_origin_gets_no_cors_headers() {
    let services = Services::start().await;
    let app = app_allowing(&services, &[ALLOWED]).await;
    let resp = app
        .client
        .get(format!("{}/api/stats/publisher", app.address))
        .header("Origin", REFUSED)
        .header("x-api-key", &app.api_key)
        .send()
        .await
        .unwrap();
    // Served as to a non-browser client: the browser does not let the page read it.
    assert_eq!(resp.status(), 200);
    assert!(header(resp.headers(), "access-control-allow-origin").is_none());
    assert!(header(resp.headers(), "access-control-expose-headers").is_none());

    let pre = preflight(&app, REFUSED, "/api/token/viewer", "POST").await;
    assert!(!pre.status().is_success(), "{}", pre.status());
    assert!(header(pre.headers(), "access-control-allow-origin").is_none());
    assert!(header(pre.headers(), "access-control-allow-methods").is_none());
}

#[tokio::test]
async fn without_an_allow_list_no_page_gets_cors_headers_and_a_star_allows_any() {
    let services = Services::start().await;
    let closed = app_allowing(&services, &[]).await;
    let pre = preflight(&closed, ALLOWED, "/api/token/viewer", "POST").await;
    assert!(header(pre.headers(), "access-control-allow-origin").is_none());

    let open = app_allowing(&services, &["*"]).await;
    let pre = preflight(&open, REFUSED, "/api/token/viewer", "POST").await;
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(
        header(pre.headers(), "access-control-allow-origin"),
        Some(REFUSED)
    );
}

/// Opens `path` with `Origin: origin` (none: no header): Ok, or the refusal's status and body.
async fn upgrade(app: &TestApp, path: &str, origin: Option<&str>) -> Result<(), (u16, Value)> {
    let mut request = socket_url(app, path).into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            let _ = ws.close(None).await;
            Ok(())
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("{path}: {e}"),
    }
}

#[tokio::test]
async fn websocket_upgrades_are_checked_against_the_allow_list() {
    let services = Services::start().await;
    let app = app_allowing(&services, &[ALLOWED]).await;
    let own = app.address.clone();
    for path in ["/primus", "/primus/?sessionID=abc", "/ws"] {
        let (status, body) = upgrade(&app, path, Some(REFUSED)).await.unwrap_err();
        assert_eq!(status, 403, "{path}");
        assert_eq!(body["error"], "FORBIDDEN", "{path}");
        upgrade(&app, path, Some(ALLOWED))
            .await
            .unwrap_or_else(|e| panic!("{path} from the allowed origin: {e:?}"));
        upgrade(&app, path, Some(&own))
            .await
            .unwrap_or_else(|e| panic!("{path} from its own origin: {e:?}"));
        upgrade(&app, path, None)
            .await
            .unwrap_or_else(|e| panic!("{path} without Origin: {e:?}"));
    }

    // Without a list only the server's own pages and non-browser clients open sockets.
    let closed = app_allowing(&services, &[]).await;
    let own = closed.address.clone();
    for path in ["/primus", "/ws"] {
        assert_eq!(
            upgrade(&closed, path, Some(ALLOWED)).await.unwrap_err().0,
            403
        );
        upgrade(&closed, path, Some(&own)).await.unwrap();
        upgrade(&closed, path, None).await.unwrap();
    }
}
