//! `CreateMember` and `EditMember` ([`crate::commands::members`]).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::credentials::{Operator, operator_credentials};
use crate::app::AppState;
use crate::commands::members::{self, MemberEdit, NewMember};
use crate::domain::member::{MemberId, Role};
use crate::http::api_error::ApiError;
use crate::http::common::write_response;
use crate::http::envelope::Envelope;
use crate::http::field::Checked;
use crate::http::tags::ApiTags;
use crate::http::views::MemberView;

/// `CreateMember`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreateMemberRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// `account@agent.masterAgent`.
    #[oai(rename = "memberID")]
    pub member_id: Checked<String>,
    /// 8 to 128 characters; stored as an Argon2id hash.
    pub password: Checked<String>,
    /// `member` (default) or `streamer`.
    pub role: Option<String>,
    /// 1 to 50 characters.
    pub nickname: Checked<String>,
    /// Avatar URL, at most 2048 characters; empty by default.
    pub avatar: Option<String>,
    /// VIP level, free text of at most 256 characters; empty by default.
    pub vip: Option<String>,
    /// Badge shown in chat (the seed's `equipmentBar`), at most 256 characters; empty by
    /// default.
    pub equipment_bar: Option<String>,
    /// Defaults to the account part of `memberID`.
    #[oai(rename = "accountID")]
    pub account_id: Option<String>,
}

/// `EditMember`: absent fields keep their value.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct EditMemberRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// The member to edit: `account@agent.masterAgent`.
    #[oai(rename = "memberID")]
    pub member_id: Checked<String>,
    /// A new password (8 to 128 characters); tokens issued before it are revoked (401 TOKEN_REVOKED).
    pub password: Option<String>,
    /// `member` or `streamer`.
    pub role: Option<String>,
    /// New display name, 1 to 50 characters.
    pub nickname: Option<String>,
    /// New avatar URL, at most 2048 characters (`""` clears it).
    pub avatar: Option<String>,
    /// New VIP level, at most 256 characters (`""` clears it).
    pub vip: Option<String>,
    /// New badge (`equipmentBar`), at most 256 characters (`""` clears it).
    pub equipment_bar: Option<String>,
    /// New `accountID`, 1 to 256 characters.
    #[oai(rename = "accountID")]
    pub account_id: Option<String>,
}

operator_credentials!(CreateMemberRequest, EditMemberRequest);

write_response!(
    MemberResponse,
    MemberView,
    "Stored; `X-Event-Sequence` is the sequence of `member.registered` / `member.edited`."
);

fn parse_role(raw: Option<&str>, field: &str) -> Result<Option<Role>, ApiError> {
    raw.map(|r| {
        r.parse::<Role>()
            .map_err(|e| ApiError::validation(format!("invalid parameter {field}: {e}")))
    })
    .transpose()
}

/// The back office's member actions.
#[derive(Default)]
pub struct MemberActionsApi;

#[OpenApi(prefix_path = "/api/backoffice", tag = "ApiTags::BackOffice")]
impl MemberActionsApi {
    /// CreateMember: register a member or streamer
    ///
    /// Publishes `member.registered` (without the password). Existing `memberID`: 409
    /// `MEMBER_EXISTS`.
    #[oai(path = "/CreateMember", method = "post", operation_id = "CreateMember")]
    async fn create_member(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<CreateMemberRequest>,
    ) -> Result<MemberResponse, ApiError> {
        let body = body.0;
        let scope = Operator::authenticate(&state, &body).await?.scope;
        let member_id = MemberId::parse(&body.member_id.get("memberID")?, "memberID")?;
        scope.allows_member(&member_id)?;
        let password = body.password.get("password")?;
        let nickname = body.nickname.get("nickname")?;
        let role = parse_role(body.role.as_deref(), "role")?.unwrap_or(Role::Member);
        let (profile, sequence) = members::register(
            &state.db,
            &state.store,
            NewMember {
                member_id,
                role,
                password,
                nickname,
                avatar: body.avatar.unwrap_or_default(),
                vip: body.vip.unwrap_or_default(),
                equipment_bar: body.equipment_bar.unwrap_or_default(),
                account_id: body.account_id.filter(|a| !a.is_empty()),
            },
            state.clock.now(),
        )
        .await?;
        Ok(MemberResponse::Ok(
            Json(Envelope::ok(profile.into())),
            sequence,
        ))
    }

    /// EditMember: change a member's profile, role or password (the renamed UpdateStreamer)
    ///
    /// Publishes `member.edited` (without the password). Unknown `memberID`: 404
    /// `MEMBER_NOT_FOUND`.
    #[oai(path = "/EditMember", method = "post", operation_id = "EditMember")]
    async fn edit_member(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<EditMemberRequest>,
    ) -> Result<MemberResponse, ApiError> {
        let body = body.0;
        let scope = Operator::authenticate(&state, &body).await?.scope;
        let member_id = MemberId::parse(&body.member_id.get("memberID")?, "memberID")?;
        scope.allows_member(&member_id)?;
        let edit = MemberEdit {
            role: parse_role(body.role.as_deref(), "role")?,
            password: body.password,
            nickname: body.nickname,
            avatar: body.avatar,
            vip: body.vip,
            equipment_bar: body.equipment_bar,
            account_id: body.account_id,
        };
        let (profile, sequence) = members::edit(
            &state.db,
            &state.store,
            member_id.as_str(),
            edit,
            state.clock.now(),
        )
        .await?;
        Ok(MemberResponse::Ok(
            Json(Envelope::ok(profile.into())),
            sequence,
        ))
    }
}
