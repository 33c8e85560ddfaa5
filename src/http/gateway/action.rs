//! The body every action shares, and what the handlers read from it: the `query` fields, the
//! caller's verified member token, the streamer a query names.

use poem_openapi::Object;

use crate::app::AppState;
use crate::domain::member::{MemberId, Role};
use crate::http::action_query::ActionQuery;
use crate::http::api_error::{ApiError, ErrorCode};
use crate::http::field::{Checked, NullableRule};
use crate::read_models::rooms::{self as room_queries, RoomRow};
use crate::records::member_auth::MemberClaims;

/// Body of every action.
#[derive(Object, Debug)]
pub struct ActionRequest {
    /// The action's parameters: the **text** of a JSON object (see each action), e.g.
    /// `"{\"giftID\":1,\"giftCount\":1}"`.
    pub query: Checked<String>,
    /// The member token from `loginAction` / `loginStreamer` (bare or `Bearer <token>`); may also
    /// be given inside `query` as `Authorization`.
    #[oai(rename = "Authorization")]
    pub authorization: Checked<Option<String>, NullableRule>,
}

/// The parsed body: the query and the token wherever it was given.
pub struct Action {
    /// The parsed `query`.
    pub query: ActionQuery,
    /// The member token, from the body or from `query`.
    pub authorization: Option<String>,
}

impl Action {
    /// Parses the body: `query` must be the text of a JSON object (400 otherwise).
    pub fn parse(body: ActionRequest) -> Result<Self, ApiError> {
        let query = ActionQuery::parse(&body.query.get("query")?)?;
        let given = body.authorization.get("Authorization")?;
        let authorization = match given.filter(|a| !a.trim().is_empty()) {
            Some(a) => Some(a),
            None => query.optional_text("Authorization")?,
        };
        Ok(Self {
            query,
            authorization,
        })
    }

    /// The caller's verified claims (401 `UNAUTHORIZED`, `TOKEN_INVALID`, `TOKEN_EXPIRED`).
    pub async fn member(&self, state: &AppState) -> Result<MemberClaims, ApiError> {
        Ok(state
            .member_tokens
            .verify_current(&state.db, self.authorization.as_deref(), state.clock.now())
            .await?)
    }

    /// The caller's claims, which must be a streamer's (403 `FORBIDDEN` otherwise).
    pub async fn streamer(&self, state: &AppState) -> Result<MemberClaims, ApiError> {
        let claims = self.member(state).await?;
        if claims.role != Role::Streamer {
            return Err(ApiError::forbidden("only a streamer may use this action"));
        }
        Ok(claims)
    }
}

/// The member id in `field` of `query` (400 `VALIDATION_ERROR` naming `query.<field>`).
pub fn member_id(query: &ActionQuery, field: &'static str) -> Result<MemberId, ApiError> {
    let raw = query.text(field)?;
    MemberId::parse(&raw, field).map_err(|e| ApiError::validation(format!("query.{e}")))
}

/// A registered streamer, or 404 `STREAMER_NOT_FOUND`.
pub async fn require_streamer(state: &AppState, id: &MemberId) -> Result<RoomRow, ApiError> {
    room_queries::room(&state.db, id.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::coded(
                ErrorCode::StreamerNotFound,
                format!("streamer {id} not found"),
            )
        })
}
