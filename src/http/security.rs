//! API key authentication (seeds/ivs-api.md: header `x-api-key`, every route but `/health`).

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::ApiKey;

use super::AppState;
use poem::IntoResponse;

use super::api_error::ErrorBody;
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
    match state.api_keys.verify(&state.db, &key.key).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(poem::Error::from_status(
            poem::http::StatusCode::UNAUTHORIZED,
        )),
        Err(e) => {
            tracing::warn!(error.cause_chain = %e, "api key lookup failed");
            let body = ErrorBody {
                error: "SERVICE_UNAVAILABLE".to_owned(),
                message: "the database did not answer; try again".to_owned(),
                details: None,
            };
            Err(poem::Error::from_response(
                poem::web::Json(body)
                    .with_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                    .into_response(),
            ))
        }
    }
}
