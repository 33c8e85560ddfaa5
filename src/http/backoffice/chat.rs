//! `SetMaintenance` and `BroadcastSystemMessage`: the operator's chat controls
//! ([`crate::commands::maintenance`]).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::credentials::{Operator, operator_credentials};
use crate::app::AppState;
use crate::commands::maintenance::{self, SystemMessage};
use crate::domain::member::MemberId;
use crate::http::api_error::ApiError;
use crate::http::common::write_response;
use crate::http::envelope::Envelope;
use crate::http::field::Checked;
use crate::http::tags::ApiTags;

/// `SetMaintenance`.
#[derive(Object, Debug)]
pub struct MaintenanceRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// `true`: chat messages are refused with 40308 "System is maintaining".
    pub enabled: Checked<bool>,
}

/// `BroadcastSystemMessage`.
#[derive(Object, Debug)]
pub struct SystemMessageRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// The text (1 to 1000 characters), sent as the seed's `{"type":"system","message"}`.
    pub message: Checked<String>,
    /// Only this streamer's room; every room when absent.
    #[oai(rename = "streamerID")]
    pub streamer_id: Option<String>,
}

/// Answer of the chat operator routes.
#[derive(Object, Debug)]
pub struct Published {
    /// The event's stream sequence.
    pub sequence: u64,
}

operator_credentials!(MaintenanceRequest, SystemMessageRequest);

write_response!(
    PublishedResponse,
    Published,
    "Stored; `X-Event-Sequence` is the event's stream sequence."
);

/// The back office's chat controls.
#[derive(Default)]
pub struct ChatControlApi;

#[OpenApi(prefix_path = "/api/backoffice", tag = "ApiTags::BackOffice")]
impl ChatControlApi {
    /// SetMaintenance: switch the chat's maintenance mode
    ///
    /// While on, every chat message is refused with the system message 40308, on every instance.
    #[oai(
        path = "/SetMaintenance",
        method = "post",
        operation_id = "SetMaintenance"
    )]
    async fn set_maintenance(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<MaintenanceRequest>,
    ) -> Result<PublishedResponse, ApiError> {
        let body = body.0;
        let scope = Operator::authenticate(&state, &body).await?.scope;
        scope.allows_shared("maintenance mode")?;
        let enabled = body.enabled.get("enabled")?;
        let published =
            maintenance::set_maintenance(&state.store, enabled, state.clock.now()).await?;
        Ok(published_answer(published.sequence))
    }

    /// BroadcastSystemMessage: a `system` chat message to one room or every room
    #[oai(
        path = "/BroadcastSystemMessage",
        method = "post",
        operation_id = "BroadcastSystemMessage"
    )]
    async fn broadcast_system_message(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<SystemMessageRequest>,
    ) -> Result<PublishedResponse, ApiError> {
        let body = body.0;
        let scope = Operator::authenticate(&state, &body).await?.scope;
        let message = SystemMessage::parse(body.message.get("message")?)?;
        let streamer = match body.streamer_id.filter(|s| !s.is_empty()) {
            Some(raw) => {
                let streamer = MemberId::parse(&raw, "streamerID")?;
                scope.allows_member(&streamer)?;
                Some(streamer)
            }
            None => {
                scope.allows_shared("a message to every room")?;
                None
            }
        };
        let published = maintenance::broadcast_system_message(
            &state.store,
            message,
            streamer.as_ref(),
            state.clock.now(),
        )
        .await?;
        Ok(published_answer(published.sequence))
    }
}

fn published_answer(sequence: u64) -> PublishedResponse {
    PublishedResponse::Ok(Json(Envelope::ok(Published { sequence })), sequence)
}
