//! API key authentication (docs/api.md#the-stage-api: header `x-api-key`, every route but
//! `/health`).

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::ApiKey;

use super::api_error::{ErrorBody, ErrorCode};
use super::rate_limit::VerifiedApiKey;
use crate::app::AppState;
use crate::records::api_keys::ApiKeyRecord;

/// A request authenticated by a valid, unrevoked API key.
#[derive(SecurityScheme)]
#[oai(
    rename = "ApiKeyAuth",
    ty = "api_key",
    key_name = "x-api-key",
    key_in = "header",
    checker = "check_api_key"
)]
pub struct ApiKeyAuth(pub ApiKeyRecord);

async fn check_api_key(req: &Request, key: ApiKey) -> poem::Result<ApiKeyRecord> {
    let state = req
        .data::<Arc<AppState>>()
        .expect("AppState is attached to every route");
    // Verified already by the rate limit, for this same header.
    if let Some(VerifiedApiKey(record)) = req.extensions().get::<VerifiedApiKey>() {
        return Ok(record.clone());
    }
    match state.api_keys.verify(&state.db, &key.key).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(poem::Error::from_status(
            poem::http::StatusCode::UNAUTHORIZED,
        )),
        Err(e) => {
            tracing::warn!(error.cause_chain = %e, "api key lookup failed");
            Err(poem::Error::from_response(ErrorBody::response(
                ErrorCode::ServiceUnavailable,
                "the database did not answer; try again",
            )))
        }
    }
}
