//! The routes of one process, by its roles: the edges' routes mounted together here, so that no
//! edge imports another.

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, IntoResponse, Response};

use crate::app::AppState;
use crate::runtime::socket_limits::SocketRefused;
use crate::server::config::{ServeRole, ServeSettings};
use crate::{chat, http};

/// Every route this process serves. With the `api` role: the REST API (src/http/) with the chat
/// socket and the chat's client script (src/chat/) mounted among its routes, each given the chat
/// service and the flood guards it uses; a socket the flood guards refuse is answered 429 as the
/// API answers it. Without it: a worker's `/health` and
/// `/metrics`.
pub fn for_roles(state: Arc<AppState>, settings: &ServeSettings) -> BoxEndpoint<'static, Response> {
    if !settings.has_role(ServeRole::Api) {
        return http::worker_routes(state).boxed();
    }
    let service = state.chat.clone();
    let client_script_path = service.settings().client_path.clone();
    let chat = http::ChatMounts {
        primus: Arc::new(
            chat::socket::primus
                .data(service.clone())
                .data(state.socket_limits.clone())
                .catch_error(|refused: SocketRefused| async move {
                    http::api_error::ApiError::from(refused).into_response()
                })
                .catch_error(|_: chat::socket::NotAnUpgrade| async move {
                    http::upgrade_required::UpgradeRequired::response("/primus")
                })
                .boxed(),
        ),
        client_script: Arc::new(chat::client_script::serve.data(service).boxed()),
        client_script_min_path: chat::client_script::min_path(&client_script_path),
        client_script_path,
    };
    http::routes(
        state,
        settings.max_body_bytes,
        settings.cors_origins.clone(),
        settings.trusted_proxies.clone(),
        chat,
    )
    .boxed()
}
