//! 426 `UPGRADE_REQUIRED`: what the WebSocket routes (`/ws`, `/primus`) answer a request that does
//! not ask to switch to the WebSocket protocol (RFC 9110 §15.5.22: a 426 names the protocol to
//! upgrade to in `Upgrade`; RFC 6455 §4.1: `Upgrade: websocket`), in the API's error shape.

use poem::http::{HeaderMap, header};
use poem::web::websocket::{WebSocketStream, WebSocketUpgraded};
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};

use super::api_error::ErrorBody;
use super::error_code::ErrorCode;

/// The protocol a WebSocket route upgrades to (RFC 6455 §4.1).
pub const WEBSOCKET: &str = "websocket";

/// The answer of a WebSocket route to a request that is not an upgrade.
#[derive(ApiResponse, Debug)]
pub enum UpgradeRequired {
    /// `UPGRADE_REQUIRED`: not a WebSocket upgrade; open the socket with `Upgrade: websocket`
    /// (a WebSocket client does).
    #[oai(status = 426)]
    UpgradeRequired(
        Json<ErrorBody>,
        /// `websocket`: the protocol this route speaks.
        #[oai(header = "Upgrade")]
        String,
    ),
}

impl UpgradeRequired {
    /// The 426 of `route` (`/ws`, `/primus`).
    pub fn of(route: &str) -> Self {
        Self::UpgradeRequired(
            Json(ErrorBody::new(
                ErrorCode::UpgradeRequired,
                format!("{route} is a WebSocket: open it with Upgrade: websocket"),
                None,
            )),
            WEBSOCKET.to_owned(),
        )
    }

    /// The answer as a response (for `/primus`, which poem-openapi does not serve).
    pub fn response(route: &str) -> Response {
        Self::of(route).into_response()
    }
}

/// Whether a request asks for the WebSocket protocol: an `Upgrade` header naming `websocket` (any
/// case, possibly among other protocols).
pub fn asks_for_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|protocol| protocol.trim().eq_ignore_ascii_case(WEBSOCKET))
}

/// The answer of a WebSocket route served by poem-openapi: the upgrade (101) or, to a request
/// that did not ask for one, 426; the spec documents both.
pub enum SocketAnswer<H> {
    /// 101: the socket is open.
    Upgraded(WebSocketUpgraded<H>),
    /// 426: not an upgrade request.
    UpgradeRequired(UpgradeRequired),
}

impl<H, Fut> IntoResponse for SocketAnswer<H>
where
    H: FnOnce(WebSocketStream) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
{
    fn into_response(self) -> Response {
        match self {
            Self::Upgraded(upgraded) => upgraded.into_response(),
            Self::UpgradeRequired(refused) => refused.into_response(),
        }
    }
}

impl<H, Fut> ApiResponse for SocketAnswer<H>
where
    H: FnOnce(WebSocketStream) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
{
    fn meta() -> MetaResponses {
        let mut meta = WebSocketUpgraded::<H>::meta();
        meta.responses.extend(UpgradeRequired::meta().responses);
        meta
    }

    fn register(registry: &mut Registry) {
        WebSocketUpgraded::<H>::register(registry);
        UpgradeRequired::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    #[test]
    fn only_an_upgrade_to_websocket_asks_for_one() {
        let mut headers = HeaderMap::new();
        assert!(!asks_for_websocket(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!asks_for_websocket(&headers));
        for asking in ["websocket", "WebSocket", "h2c, websocket"] {
            headers.insert(header::UPGRADE, HeaderValue::from_static(asking));
            assert!(asks_for_websocket(&headers), "{asking}");
        }
    }

    #[test]
    fn the_426_names_the_protocol_and_keeps_the_error_shape() {
        let response = UpgradeRequired::response("/ws");
        assert_eq!(response.status().as_u16(), 426);
        assert_eq!(response.headers()[header::UPGRADE], "websocket");
    }
}
