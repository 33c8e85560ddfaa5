//! `POST /api/token/publisher`, `POST /api/token/viewer` (docs/api.md#routes) and
//! `GET /api/token/public-key`.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::api_error::ApiError;
use super::common::{IdempotencyHeader, idempotency_event_id};
use super::envelope::{Envelope, timestamp};
use super::field::{Checked, UserIdRule};
use super::security::ApiKeyAuth;
use super::tags::ApiTags;
use crate::app::AppState;
use crate::domain::user_id::UserId;
use crate::ivs::token::MAX_ATTRIBUTES_BYTES;

/// Body of both token routes.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct TokenRequest {
    /// The app's user id: 1 to 100 characters, no control characters.
    pub user_id: Checked<String, UserIdRule>,
    /// Custom attributes shown to every participant of the stage. Non-string values are passed to
    /// IVS as their JSON text; at most 1024 bytes in total (IVS limit).
    pub attributes: Checked<Option<BTreeMap<String, Value>>>,
}

/// A publisher token.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct PublisherToken {
    /// The participant token (JWT, ES384).
    pub token: String,
    /// IVS participant id (the token's `jti`).
    pub participant_id: String,
    /// The master stage.
    pub stage_arn: String,
    /// IVS participant user id: `broadcaster-<userId>`.
    pub user_id: String,
    /// Expiry, RFC 3339 UTC with ms (4 h after issue by default).
    pub expires_at: String,
    /// `["PUBLISH"]`.
    pub capabilities: Vec<String>,
    /// The attributes as sent.
    pub attributes: BTreeMap<String, Value>,
}

/// A viewer token and the seat it belongs to.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ViewerToken {
    /// The participant token (JWT, ES384).
    pub token: String,
    /// IVS participant id (the token's `jti`).
    pub participant_id: String,
    /// The stage the viewer is seated on.
    pub stage_arn: String,
    /// IVS participant user id: `viewer-<userId>`.
    pub user_id: String,
    /// Expiry, RFC 3339 UTC with ms (1 h after issue by default).
    pub expires_at: String,
    /// `["SUBSCRIBE"]`.
    pub capabilities: Vec<String>,
    /// Viewers on that stage, this one included.
    pub current_viewers: u32,
    /// The attributes as sent.
    pub attributes: BTreeMap<String, Value>,
}

/// The key that verifies every participant token onair signs.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct PublicKey {
    /// The `kid` header of the tokens (an IVS public-key ARN).
    pub kid: String,
    /// `ES384`.
    pub algorithm: String,
    /// SPKI PEM of the P-384 public key.
    pub public_key_pem: String,
}

/// Answer of `POST /api/token/publisher`.
#[derive(ApiResponse)]
pub enum PublisherTokenResponse {
    /// The token; `X-Event-Sequence` is the stream sequence of the event that records it.
    #[oai(status = 200)]
    Ok(
        Json<Envelope<PublisherToken>>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
}

/// Answer of `POST /api/token/viewer`.
#[derive(ApiResponse)]
pub enum ViewerTokenResponse {
    /// The token and seat; `X-Event-Sequence` is the stream sequence of the seat's event.
    #[oai(status = 200)]
    Ok(
        Json<Envelope<ViewerToken>>,
        #[oai(header = "X-Event-Sequence")] u64,
    ),
}

/// Answer of `GET /api/token/public-key`.
#[derive(ApiResponse)]
pub enum PublicKeyResponse {
    /// The public key and its `kid`.
    #[oai(status = 200)]
    Ok(Json<Envelope<PublicKey>>),
}

/// Checks the attributes and turns them into IVS's string map.
fn token_attributes(
    attributes: &Option<BTreeMap<String, Value>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let mut size = 0;
    for (key, value) in attributes.iter().flatten() {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        size += key.len() + text.len();
        out.insert(key.clone(), text);
    }
    if size > MAX_ATTRIBUTES_BYTES {
        return Err(ApiError::validation(format!(
            "attributes must be at most {MAX_ATTRIBUTES_BYTES} bytes in total (IVS limit), got {size}"
        )));
    }
    Ok(out)
}

/// The token API (`/api/token/*`): publisher and viewer participant tokens, and the key
/// that verifies them.
#[derive(Default)]
pub struct TokenApi;

#[OpenApi]
impl TokenApi {
    /// Create a publisher token
    ///
    /// Mints a token with `PUBLISH` for the master stage, valid 4 h by default.
    #[oai(
        path = "/api/token/publisher",
        method = "post",
        tag = "ApiTags::Token",
        operation_id = "createPublisherToken"
    )]
    async fn publisher(
        &self,
        state: Data<&Arc<AppState>>,
        auth: ApiKeyAuth,
        body: Json<TokenRequest>,
        /// Optional idempotency key: a retry with the same key records the token once.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyHeader,
    ) -> Result<PublisherTokenResponse, ApiError> {
        let body = body.0;
        let user = UserId::parse(&body.user_id.get("userId")?, "userId")?;
        let original = body.attributes.get("attributes")?;
        let attributes = token_attributes(&original)?;
        let event_id = idempotency_event_id(&auth, "publisher-token", &idempotency_key);
        let (stage_arn, token, published) = state
            .pool
            .issue_publisher_token(&user, attributes, event_id)
            .await?;
        Ok(PublisherTokenResponse::Ok(
            Json(Envelope::ok(PublisherToken {
                token: token.token,
                participant_id: token.participant_id,
                stage_arn,
                user_id: format!("broadcaster-{user}"),
                expires_at: timestamp(token.expires_at),
                capabilities: vec!["PUBLISH".to_owned()],
                attributes: original.unwrap_or_default(),
            })),
            published.sequence,
        ))
    }

    /// Create a viewer token
    ///
    /// Seats the user on the least-loaded stage (creating an auto-scaled stage when every stage
    /// holds 45 viewers) and mints a `SUBSCRIBE` token valid 1 h by default. A user holds one seat:
    /// asking again renews the token for the same stage. The viewer must then send a heartbeat every
    /// 30 s; after 60 s of silence the seat is freed.
    #[oai(
        path = "/api/token/viewer",
        method = "post",
        tag = "ApiTags::Token",
        operation_id = "createViewerToken"
    )]
    async fn viewer(
        &self,
        state: Data<&Arc<AppState>>,
        auth: ApiKeyAuth,
        body: Json<TokenRequest>,
        /// Optional idempotency key: a retry with the same key takes one seat.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyHeader,
    ) -> Result<ViewerTokenResponse, ApiError> {
        let body = body.0;
        let user = UserId::parse(&body.user_id.get("userId")?, "userId")?;
        let original = body.attributes.get("attributes")?;
        let attributes = token_attributes(&original)?;
        let event_id = idempotency_event_id(&auth, "viewer-token", &idempotency_key);
        let original = original.unwrap_or_default();
        let granted = state
            .pool
            .assign_viewer_seat(
                &user,
                original.clone().into_iter().collect(),
                attributes,
                event_id,
            )
            .await?;
        Ok(ViewerTokenResponse::Ok(
            Json(Envelope::ok(ViewerToken {
                token: granted.token.token,
                participant_id: granted.token.participant_id,
                stage_arn: granted.stage_arn,
                user_id: format!("viewer-{user}"),
                expires_at: timestamp(granted.token.expires_at),
                capabilities: vec!["SUBSCRIBE".to_owned()],
                current_viewers: granted.current_viewers,
                attributes: original,
            })),
            granted.published.sequence,
        ))
    }

    /// Get the token-signing public key
    ///
    /// The P-384 public key that verifies every participant token onair signs (ES384, `kid` in the
    /// token header). No API key needed. Import it into IVS with `ImportPublicKey` to use
    /// self-signed tokens on real stages.
    #[oai(
        path = "/api/token/public-key",
        method = "get",
        tag = "ApiTags::Token",
        operation_id = "getTokenPublicKey"
    )]
    async fn public_key(&self, state: Data<&Arc<AppState>>) -> PublicKeyResponse {
        PublicKeyResponse::Ok(Json(Envelope::ok(PublicKey {
            kid: state.public_key.kid.clone(),
            algorithm: "ES384".to_owned(),
            public_key_pem: state.public_key.pem.clone(),
        })))
    }
}
