//! API key authentication (seeds/ivs-api.md: header `x-api-key`, every route but `/health`).

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::ApiKey;

use super::AppState;
use super::api_error::framework_error_to_response;
use crate::api_keys::{self, ApiKeyRecord};

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
    match api_keys::verify(&state.db, &key.key).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(poem::Error::from_status(
            poem::http::StatusCode::UNAUTHORIZED,
        )),
        Err(e) => {
            tracing::warn!(error.cause_chain = %e, "api key lookup failed");
            let response = framework_error_to_response(poem::Error::from_status(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
            ))
            .await;
            Err(poem::Error::from_response(response))
        }
    }
}
