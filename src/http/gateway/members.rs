//! `loginAction` and `loginStreamer`: a member or streamer logs in ([`crate::commands::login`]).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use super::action::{Action, ActionRequest, member_id};
use super::answers::{LoginAnswer, LoginResponse};
use crate::app::AppState;
use crate::commands::login::{self, LoginDeps};
use crate::domain::member::Role;
use crate::http::api_error::ApiError;
use crate::http::envelope::{Envelope, timestamp};
use crate::http::tags::ApiTags;

/// The client gateway's login actions.
#[derive(Default)]
pub struct LoginApi;

#[OpenApi(prefix_path = "/api/action", tag = "ApiTags::Gateway")]
impl LoginApi {
    /// loginAction: a member logs in
    ///
    /// `query`: `{"memberID": "account@agent.masterAgent", "password": "..."}`. Members only
    /// (streamers use `loginStreamer`). Unknown member or wrong password: 401 `LOGIN_FAILED`.
    /// More than 10 attempts per minute for one `memberID`: 429 `TOO_MANY_REQUESTS`.
    #[oai(path = "/loginAction", method = "post", operation_id = "loginAction")]
    async fn login_action(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<LoginResponse, ApiError> {
        login(&state, body.0, Role::Member).await
    }

    /// loginStreamer: a streamer logs in
    ///
    /// `query`: `{"memberID": "account@agent.masterAgent", "password": "..."}`. Streamers only.
    /// Unknown streamer or wrong password: 401 `LOGIN_FAILED`. More than 10 attempts per minute
    /// for one `memberID`: 429 `TOO_MANY_REQUESTS`.
    #[oai(
        path = "/loginStreamer",
        method = "post",
        operation_id = "loginStreamer"
    )]
    async fn login_streamer(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<ActionRequest>,
    ) -> Result<LoginResponse, ApiError> {
        login(&state, body.0, Role::Streamer).await
    }
}

async fn login(
    state: &AppState,
    body: ActionRequest,
    role: Role,
) -> Result<LoginResponse, ApiError> {
    let action = Action::parse(body)?;
    let id = member_id(&action.query, "memberID")?;
    let password = action.query.text("password")?;
    let deps = LoginDeps {
        db: &state.db,
        store: &state.store,
        tokens: &state.member_tokens,
        dummy_password_hash: &state.dummy_password_hash,
    };
    let logged_in = login::login(deps, &id, password, role, state.clock.now()).await?;
    Ok(LoginResponse::Ok(
        Json(Envelope::ok(LoginAnswer {
            authorization: logged_in.token.token,
            expires_at: timestamp(logged_in.token.expires_at),
            member: logged_in.profile.into(),
        })),
        logged_in.sequence,
    ))
}
