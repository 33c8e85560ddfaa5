//! onair's own client script with the API of `ActionheroWebsocketClient` (src/chat/client.js),
//! served at `ONAIR_CHAT_CLIENT_PATH` (default `/public/javascript/ActionheroWebsocketClient.js`,
//! the path actionhero serves its client at) and at the same path ending in `.min.js` (the file
//! the seed's pages load). Pages keep their `<script src>`; only the host changes.

use poem::http::header;
use poem::{IntoResponse, Response, handler, web::Data};
use std::sync::Arc;

use super::ChatService;

/// The script's source, with `%%URL%%` still to fill.
pub const SOURCE: &str = include_str!("client.js");

/// The script with its default URL filled in (empty: the page's own origin).
pub fn render(url: &str) -> String {
    let escaped = url.replace('\\', "\\\\").replace('\'', "\\'");
    SOURCE.replace("%%URL%%", &escaped)
}

/// The `.min.js` twin of a client path.
pub fn min_path(path: &str) -> String {
    match path.strip_suffix(".js") {
        Some(stem) => format!("{stem}.min.js"),
        None => format!("{path}.min.js"),
    }
}

/// `GET <client path>`; its endpoint carries the chat service (src/server/routes.rs mounts it).
#[handler]
pub async fn serve(chat: Data<&Arc<ChatService>>) -> Response {
    render(&chat.settings().client_url)
        .with_content_type("application/javascript; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "public, max-age=300")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_filled_in_and_quoted() {
        assert!(render("").contains("url: '' || window.location.origin"));
        assert!(render("https://chat.example.com").contains("'https://chat.example.com'"));
        assert!(render("x'y").contains("'x\\'y'"));
        assert_eq!(
            min_path("/public/javascript/ActionheroWebsocketClient.js"),
            "/public/javascript/ActionheroWebsocketClient.min.js"
        );
    }
}
