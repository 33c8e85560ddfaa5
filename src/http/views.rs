//! Answer shapes more than one tag shares: a member's public profile (the client gateway's
//! login, the back office's `CreateMember` / `EditMember`).

use poem_openapi::Object;

use crate::events::MemberProfile;

/// A member's public profile.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct MemberView {
    /// `account@agent.masterAgent`.
    #[oai(rename = "memberID")]
    pub member_id: String,
    /// `member` or `streamer`.
    pub role: String,
    /// Display name, 1 to 50 characters.
    pub nickname: String,
    /// Avatar URL; empty when none.
    pub avatar: String,
    /// VIP level, free text; empty when none.
    pub vip: String,
    /// Badge shown in chat (the seed's `equipmentBar`); empty when none.
    pub equipment_bar: String,
    /// The seed's `accountID`; by default the account part of `memberID`.
    #[oai(rename = "accountID")]
    pub account_id: String,
}

impl From<MemberProfile> for MemberView {
    fn from(p: MemberProfile) -> Self {
        Self {
            member_id: p.member_id,
            role: p.role.as_str().to_owned(),
            nickname: p.nickname,
            avatar: p.avatar,
            vip: p.vip,
            equipment_bar: p.equipment_bar,
            account_id: p.account_id,
        }
    }
}
