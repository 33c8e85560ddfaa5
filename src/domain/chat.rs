//! Chat rules (docs/chat.md): the system codes, what a
//! member may say, moderation of a room (bans, mutes, timed mutes, admins) and the `relationship`
//! codes of `joinRoom` / `welcome`. Pure: the caller passes the time and the room's state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::member::{MemberId, Role};
pub use crate::events::chat::ModerationAction;

/// The seed's system messages (`{"context":"api","data":{"code","message"}}`), plus 42901 for the
/// per-member message rate limit, which the seed does not name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemCode {
    /// 40101: `say` before `verify`.
    NotLoggedIn,
    /// 40301: banned from the room.
    Banned,
    /// 40302: the token is invalid or expired.
    TokenInvalid,
    /// 40303: temporarily muted.
    TemporarilyMuted,
    /// 40304: muted.
    Muted,
    /// 40305: the message's `memberID` differs from the verified one.
    AuthenticationFailed,
    /// 40306: a URL from anyone but the streamer.
    UrlNotAllowed,
    /// 40308: maintenance mode.
    Maintenance,
    /// 42901: more messages than the rate limit allows.
    TooFast,
}

impl SystemCode {
    /// The numeric `code` sent in the system message (e.g. 40101).
    pub fn code(self) -> u32 {
        match self {
            Self::NotLoggedIn => 40101,
            Self::Banned => 40301,
            Self::TokenInvalid => 40302,
            Self::TemporarilyMuted => 40303,
            Self::Muted => 40304,
            Self::AuthenticationFailed => 40305,
            Self::UrlNotAllowed => 40306,
            Self::Maintenance => 40308,
            Self::TooFast => 42901,
        }
    }

    /// The seed's message text.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotLoggedIn => "The account is not logged in",
            Self::Banned => "The account had been ban",
            Self::TokenInvalid => "The token is not valid",
            Self::TemporarilyMuted => "This account has been temporarily banned from chat",
            Self::Muted => "This account has been banned from chat",
            Self::AuthenticationFailed => "Authentication for this message failed",
            Self::UrlNotAllowed => "Only streamer can send url",
            Self::Maintenance => "System is maintaining",
            Self::TooFast => "You are sending messages too fast; wait a moment",
        }
    }
}

/// The seed's `relationship` codes of `joinRoom` / `welcome`.
pub mod relationship {
    /// 1 (禁言): muted in the room until unmuted.
    pub const MUTED: u8 = 1;
    /// 2 (黑單): banned from the room.
    pub const BANNED: u8 = 2;
    /// 3 (管理員): an admin of the room.
    pub const ADMIN: u8 = 3;
    /// 4 (追隨): follows the room's streamer.
    pub const FOLLOWING: u8 = 4;
    /// 5 (暫時禁言): under a timed mute that has not yet ended.
    pub const TEMPORARILY_MUTED: u8 = 5;
}

/// Longest chat text, in characters (the seed names none).
pub const DEFAULT_MAX_TEXT_CHARS: usize = 500;

/// One room's moderation state, folded from moderation events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomModeration {
    /// Member ids banned from the room (40301) until unbanned.
    pub banned: BTreeSet<String>,
    /// Member ids muted without an end (40304) until unmuted.
    pub muted: BTreeSet<String>,
    /// Timed mutes: member -> end (UTC).
    pub muted_until: BTreeMap<String, OffsetDateTime>,
    /// Member ids the streamer made admins: they may moderate members who are not admins.
    pub admins: BTreeSet<String>,
}

impl RoomModeration {
    /// Whether `member` may not speak now, and why.
    pub fn silenced(&self, member: &str, now: OffsetDateTime) -> Option<SystemCode> {
        if self.banned.contains(member) {
            Some(SystemCode::Banned)
        } else if self.muted.contains(member) {
            Some(SystemCode::Muted)
        } else if self.muted_until.get(member).is_some_and(|end| *end > now) {
            Some(SystemCode::TemporarilyMuted)
        } else {
            None
        }
    }

    /// Folds one moderation of `member` into the room: a ban or unban, a mute (timed when `until`
    /// is given, else for good), an unmute (lifts both kinds), or a grant or revoke of admin.
    pub fn apply(&mut self, member: &str, action: ModerationAction, until: Option<OffsetDateTime>) {
        let m = member.to_owned();
        match action {
            ModerationAction::Ban => {
                self.banned.insert(m);
            }
            ModerationAction::Unban => {
                self.banned.remove(&m);
            }
            ModerationAction::Mute => match until {
                Some(until) => {
                    self.muted_until.insert(m, until);
                }
                None => {
                    self.muted.insert(m);
                }
            },
            ModerationAction::Unmute => {
                self.muted.remove(&m);
                self.muted_until.remove(&m);
            }
            ModerationAction::GrantAdmin => {
                self.admins.insert(m);
            }
            ModerationAction::RevokeAdmin => {
                self.admins.remove(&m);
            }
        }
    }

    /// The `relationship` codes of `member` in this room (following comes from elsewhere).
    pub fn relationship(&self, member: &str, following: bool, now: OffsetDateTime) -> Vec<u8> {
        let mut codes = Vec::new();
        if self.muted.contains(member) {
            codes.push(relationship::MUTED);
        }
        if self.banned.contains(member) {
            codes.push(relationship::BANNED);
        }
        if self.admins.contains(member) {
            codes.push(relationship::ADMIN);
        }
        if following {
            codes.push(relationship::FOLLOWING);
        }
        if self.muted_until.get(member).is_some_and(|end| *end > now) {
            codes.push(relationship::TEMPORARILY_MUTED);
        }
        codes
    }
}

/// Why a moderation command is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModerationError {
    /// The actor is neither the room's streamer nor one of its admins.
    #[error("only the room's streamer or one of its admins may moderate it")]
    NotModerator,
    /// An admin tried to grant or revoke admin.
    #[error("only the room's streamer may grant or revoke admin")]
    NotStreamer,
    /// The target is the room's own streamer.
    #[error("the streamer cannot be moderated in their own room")]
    TargetIsStreamer,
    /// An admin tried to moderate another admin.
    #[error("an admin may not moderate another admin")]
    TargetIsAdmin,
    /// A timed mute's length is outside 1 to [`MAX_MUTE_SECONDS`] seconds.
    #[error("seconds must be between 1 and {max}", max = MAX_MUTE_SECONDS)]
    Duration,
}

/// Longest timed mute, in seconds (30 days).
pub const MAX_MUTE_SECONDS: u64 = 30 * 24 * 3600;

/// Decides whether `actor` may apply `action` to `target` in the room of `streamer`.
pub fn authorize_moderation(
    room: &RoomModeration,
    streamer: &str,
    actor: &str,
    target: &str,
    action: ModerationAction,
    seconds: Option<u64>,
) -> Result<(), ModerationError> {
    let is_streamer = actor == streamer;
    if !is_streamer && !room.admins.contains(actor) {
        return Err(ModerationError::NotModerator);
    }
    if matches!(
        action,
        ModerationAction::GrantAdmin | ModerationAction::RevokeAdmin
    ) && !is_streamer
    {
        return Err(ModerationError::NotStreamer);
    }
    if target == streamer {
        return Err(ModerationError::TargetIsStreamer);
    }
    if !is_streamer && room.admins.contains(target) {
        return Err(ModerationError::TargetIsAdmin);
    }
    if let Some(s) = seconds
        && !(1..=MAX_MUTE_SECONDS).contains(&s)
    {
        return Err(ModerationError::Duration);
    }
    Ok(())
}

/// Who said something, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Speaker {
    /// The member id given at `verify` (`account@agent.masterAgent`), as its token names it.
    pub member_id: MemberId,
    /// The member's account role, from their login token.
    pub role: Role,
    /// The member's nickname (from the member record at `verify`): the `name` of every message.
    pub nickname: String,
}

/// The token a socket was verified with (the `verify` action, docs/chat.md#the-socket): the
/// session lasts while the token would still be accepted. When it ends, the socket is told 40302
/// ([`SystemCode::TokenInvalid`]) and is a guest again until it verifies anew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenSession {
    /// The token's `exp`, Unix seconds (UTC).
    pub expires_at: i64,
    /// The member's `token_version` the token carries (`ver`), bumped by a password or role change.
    pub version: i32,
    /// The role the token was issued for.
    pub role: Role,
}

/// Why a chat session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The token passed its `exp`.
    Expired,
    /// The member's tokens were revoked (password or role change) or the member is gone.
    Revoked,
}

impl SessionEnd {
    /// A short name for logs: `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl TokenSession {
    /// Whether the token has expired at `now`: past `exp`, with no leeway, as a token is judged
    /// at `verify` (a token is still good during the second of its `exp`).
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() > self.expires_at
    }

    /// Whether a member edit (`onair.member.edited.v1`) revokes the token: a password change, or
    /// a role other than the token's, the edits that bump the member's token version
    /// (src/commands/members.rs).
    pub fn revoked_by_edit(&self, password_changed: bool, role: Role) -> bool {
        password_changed || role != self.role
    }
}

/// Why a `say` was refused: a system message for the sender, or a plain error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SayRefusal {
    /// Refused with one of the seed's system codes, sent to the sender as an `api` message.
    System(SystemCode),
    /// The message is malformed (not chat JSON, wrong `type`, blank or too long text, bad
    /// `textColor`); the reason is returned to the sender only.
    Invalid(String),
}

/// The seed's chat message (`{"type":"chat","memberID","role","name","text","textColor"}`), as it
/// is broadcast: `role` comes from the speaker's place in the room and `name` from the member
/// record, not from the client, so nobody can speak under another name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `type`: always `chat`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `memberID`: the verified sender.
    #[serde(rename = "memberID")]
    pub member_id: String,
    /// `streamer` when the sender is the room's streamer, else `member`.
    pub role: String,
    /// The sender's nickname (a chat message's `name` is the member's nickname); a `name` sent by
    /// the client is ignored.
    pub name: String,
    /// Non-blank text of at most the configured number of characters (default 500).
    pub text: String,
    /// `textColor`: a HEX color (`#RGB`, `#RGBA`, `#RRGGBB`, `#RRGGBBAA`); `#FFFFFF` if not given.
    #[serde(rename = "textColor")]
    pub text_color: String,
}

#[derive(Deserialize)]
struct SaidChat {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "memberID")]
    member_id: Option<String>,
    text: Option<String>,
    #[serde(rename = "textColor")]
    text_color: Option<String>,
}

/// Whether `color` is a HEX color: `#RGB`, `#RGBA`, `#RRGGBB` or `#RRGGBBAA`.
pub fn is_hex_color(color: &str) -> bool {
    color.strip_prefix('#').is_some_and(|h| {
        matches!(h.len(), 3 | 4 | 6 | 8) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether `text` holds something a browser would open as a link: a scheme (`http://`, `https://`,
/// `ftp://`), `www.`, or a host name ending in a common top-level domain (`example.com/x`).
pub fn contains_url(text: &str) -> bool {
    const TLDS: [&str; 14] = [
        "com", "net", "org", "io", "tv", "me", "cc", "co", "tw", "cn", "hk", "info", "xyz", "app",
    ];
    let lower = text.to_lowercase();
    if lower.contains("://") || lower.contains("www.") {
        return true;
    }
    lower.split(|c: char| c.is_whitespace()).any(|word| {
        let host = word.split(['/', '?', '#', ':']).next().unwrap_or("");
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() >= 2
            && labels
                .iter()
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            && TLDS.contains(labels.last().unwrap())
    })
}

/// Checks what a verified (or not) connection said in a room whose streamer is `streamer` (`None`:
/// a room that is not a streamer's chat room, where nobody speaks as the streamer), and
/// returns the chat message to broadcast. Order: maintenance, verified, moderation, shape,
/// identity, URL.
pub fn check_say(
    speaker: Option<&Speaker>,
    streamer: Option<&MemberId>,
    room: &RoomModeration,
    maintenance: bool,
    raw: &str,
    max_text_chars: usize,
    now: OffsetDateTime,
) -> Result<ChatMessage, SayRefusal> {
    if maintenance {
        return Err(SayRefusal::System(SystemCode::Maintenance));
    }
    let Some(speaker) = speaker else {
        return Err(SayRefusal::System(SystemCode::NotLoggedIn));
    };
    if let Some(code) = room.silenced(speaker.member_id.as_str(), now) {
        return Err(SayRefusal::System(code));
    }
    let said: SaidChat = serde_json::from_str(raw).map_err(|_| {
        SayRefusal::Invalid("message must be the JSON text of a chat message".into())
    })?;
    if said.kind.as_deref() != Some("chat") {
        return Err(SayRefusal::Invalid(
            "only messages of type \"chat\" may be said".into(),
        ));
    }
    if said.member_id.as_deref() != Some(speaker.member_id.as_str()) {
        return Err(SayRefusal::System(SystemCode::AuthenticationFailed));
    }
    let text = said.text.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(SayRefusal::Invalid("text must not be empty".into()));
    }
    if text.chars().count() > max_text_chars {
        return Err(SayRefusal::Invalid(format!(
            "text must be at most {max_text_chars} characters"
        )));
    }
    let text_color = said.text_color.unwrap_or_else(|| "#FFFFFF".into());
    if !is_hex_color(&text_color) {
        return Err(SayRefusal::Invalid(
            "textColor must be a HEX color such as #FFF or #FF8800".into(),
        ));
    }
    let is_streamer = streamer == Some(&speaker.member_id);
    if !is_streamer && contains_url(&text) {
        return Err(SayRefusal::System(SystemCode::UrlNotAllowed));
    }
    Ok(ChatMessage {
        kind: "chat".into(),
        member_id: speaker.member_id.to_string(),
        role: if is_streamer { "streamer" } else { "member" }.into(),
        name: speaker.nickname.clone(),
        text,
        text_color,
    })
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
