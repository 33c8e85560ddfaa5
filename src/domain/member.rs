//! Member ids, the back office's account filters, roles and chat room names
//! (seeds/gateway-chat.md, DESIGN.md §6).
//!
//! A member id is `account@agent.masterAgent` (seed: `ben@mabu.mabumaster`). The part after `@` is
//! the seed's `agentID` (`mabu.mabumaster`): the seed's client splits a member id at `@` to get it
//! (`const [account, agentID] = streamerMemberID.split("@")`) and builds the chat room name from it.
//!
//! # Case
//!
//! Member ids compare **exactly** (case-sensitively), and keep the spelling they were given. The
//! seed does not justify case-insensitive comparison:
//! - `masterAgent` (the back office's filter format) and `masteragent` (the sendGift example) are
//!   placeholders in descriptions of a format, not two spellings of one id value; every concrete id
//!   in the seed is lower case and is spelled the same wherever it recurs (`ben001@mabu.mabumaster`
//!   in `chatroomSystem-chatroom-mabu.mabumaster-ben001@mabu.mabumaster`).
//! - The seed's own system treats ids as exact strings: the room name is the member id pasted
//!   verbatim (`buildChatroomName`), actionhero matches room names exactly and applies no room-name
//!   rules (protocols/actionhero.md), and error 40305 refuses a chat message whose `memberID`
//!   differs from the one given at `verify`. If `Ben@…` and `ben@…` were equal here, two equal ids
//!   would name two different chat rooms.
//!
//! So `ben@mabu.mabumaster` and `Ben@mabu.mabumaster` are two different members, and a filter
//! `Ben` does not match `ben@mabu.mabumaster`. Whoever registers members may refuse ids that differ
//! from an existing one only in case; that is a registry rule, not an equality rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::user_id::MAX_USER_ID_CHARS;

/// Longest member id accepted, in characters: the same cap as a [`UserId`], because a member id
/// (a streamer's, a viewer's) may travel as the IVS participant `userId`, so every member id must
/// also be a valid user id.
///
/// [`UserId`]: crate::domain::user_id::UserId
pub const MAX_MEMBER_ID_CHARS: usize = MAX_USER_ID_CHARS;

/// Which part of an id or filter is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberIdPart {
    /// Before `@`.
    Account,
    /// Between `@` and `.`.
    Agent,
    /// After the `.`.
    MasterAgent,
}

impl fmt::Display for MemberIdPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Account => "account",
            Self::Agent => "agent",
            Self::MasterAgent => "masterAgent",
        })
    }
}

/// Why a member id, agent id or account filter was refused; the message names the field and the
/// expected format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberIdError {
    /// The value is empty.
    #[error("{field} is required and must not be empty")]
    Empty {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
    },
    /// Longer than [`MAX_MEMBER_ID_CHARS`] characters.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
        /// The limit, in characters.
        max: usize,
    },
    /// Holds a control character.
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
    },
    /// Holds whitespace.
    #[error("{field} must not contain spaces")]
    Whitespace {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
    },
    /// A member id without `@`.
    #[error("{field} must have the form {expected}: '@' is missing")]
    MissingAt {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
        /// The expected format, e.g. `account@agent.masterAgent`.
        expected: &'static str,
    },
    /// More than one `@` (or any `@` in an agent id).
    #[error("{field} must have the form {expected}: it has more than one '@'")]
    ExtraAt {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
        /// The expected format, e.g. `account@agent.masterAgent`.
        expected: &'static str,
    },
    /// No `.` between agent and master agent.
    #[error(
        "{field} must have the form {expected}: the '.' between agent and masterAgent is missing"
    )]
    MissingDot {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
        /// The expected format, e.g. `account@agent.masterAgent`.
        expected: &'static str,
    },
    /// More than one `.` after the `@` (or in an agent id).
    #[error("{field} must have the form {expected}: the agent part has more than one '.'")]
    ExtraDot {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
        /// The expected format, e.g. `account@agent.masterAgent`.
        expected: &'static str,
    },
    /// The account, agent or master agent part is empty.
    #[error("{field} must have the form {expected}: the {part} part is empty")]
    EmptyPart {
        /// The request field at fault (`memberID`, `agentID`, `account`, ...).
        field: &'static str,
        /// The empty part.
        part: MemberIdPart,
        /// The expected format, e.g. `account@agent.masterAgent`.
        expected: &'static str,
    },
}

const MEMBER_FORMAT: &str = "account@agent.masterAgent";
const AGENT_FORMAT: &str = "agent.masterAgent";
const FILTER_FORMAT: &str = "account, account@agent or account@agent.masterAgent";

/// Checks what every id and filter shares: not empty, not too long, no control characters, no
/// whitespace.
fn check_text(raw: &str, field: &'static str) -> Result<(), MemberIdError> {
    if raw.is_empty() {
        return Err(MemberIdError::Empty { field });
    }
    if raw.chars().count() > MAX_MEMBER_ID_CHARS {
        return Err(MemberIdError::TooLong {
            field,
            max: MAX_MEMBER_ID_CHARS,
        });
    }
    if raw.chars().any(char::is_control) {
        return Err(MemberIdError::ControlCharacter { field });
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(MemberIdError::Whitespace { field });
    }
    Ok(())
}

fn non_empty(
    part_text: &str,
    part: MemberIdPart,
    field: &'static str,
    expected: &'static str,
) -> Result<(), MemberIdError> {
    if part_text.is_empty() {
        Err(MemberIdError::EmptyPart {
            field,
            part,
            expected,
        })
    } else {
        Ok(())
    }
}

/// Splits `agent.masterAgent` at its one dot, both parts non-empty.
fn split_agent(
    raw: &str,
    field: &'static str,
    expected: &'static str,
) -> Result<usize, MemberIdError> {
    let dot = raw
        .find('.')
        .ok_or(MemberIdError::MissingDot { field, expected })?;
    non_empty(&raw[..dot], MemberIdPart::Agent, field, expected)?;
    let master = &raw[dot + 1..];
    if master.contains('.') {
        return Err(MemberIdError::ExtraDot { field, expected });
    }
    non_empty(master, MemberIdPart::MasterAgent, field, expected)?;
    Ok(dot)
}

/// Splits at the one `@`: `Ok(None)` when there is none.
fn split_at_sign(
    raw: &str,
    field: &'static str,
    expected: &'static str,
) -> Result<Option<usize>, MemberIdError> {
    let Some(at) = raw.find('@') else {
        return Ok(None);
    };
    // The seed's client takes `split("@")[1]` as the agentID: a second '@' would give it the
    // wrong agent and the wrong room.
    if raw[at + 1..].contains('@') {
        return Err(MemberIdError::ExtraAt { field, expected });
    }
    non_empty(&raw[..at], MemberIdPart::Account, field, expected)?;
    Ok(Some(at))
}

/// An agent id `agent.masterAgent`, the seed's `agentID` (`mabu.mabumaster`): exactly one `.`,
/// both parts non-empty, no `@`, the same text rules as a [`MemberId`]. Compared exactly (see the
/// module docs on case).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId {
    raw: String,
    dot: usize,
}

impl AgentId {
    /// Checks a raw agent id; `field` names it in the error (`agentID`).
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, MemberIdError> {
        check_text(raw, field)?;
        if raw.contains('@') {
            return Err(MemberIdError::ExtraAt {
                field,
                expected: AGENT_FORMAT,
            });
        }
        let dot = split_agent(raw, field, AGENT_FORMAT)?;
        Ok(Self {
            raw: raw.to_owned(),
            dot,
        })
    }

    /// `mabu` in `mabu.mabumaster`.
    pub fn agent(&self) -> &str {
        &self.raw[..self.dot]
    }

    /// `mabumaster` in `mabu.mabumaster`.
    pub fn master_agent(&self) -> &str {
        &self.raw[self.dot + 1..]
    }

    /// The whole agent id, `mabu.mabumaster`.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl TryFrom<String> for AgentId {
    type Error = MemberIdError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw, "agentID")
    }
}

impl From<AgentId> for String {
    fn from(id: AgentId) -> Self {
        id.raw
    }
}

impl Serialize for AgentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw, "agentID").map_err(serde::de::Error::custom)
    }
}

/// A member id `account@agent.masterAgent` (seed: `ben@mabu.mabumaster`): exactly one `@`, exactly
/// one `.` after it, every part non-empty; 1 to [`MAX_MEMBER_ID_CHARS`] characters, no control
/// characters, no whitespace. The account may contain dots (`ben.lee@mabu.mabumaster` is
/// unambiguous). Any other Unicode is accepted.
///
/// The original spelling is kept and ids compare **exactly**: `Ben@…` is not `ben@…` (the module
/// docs give the reasons from the seed).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId {
    raw: String,
    at: usize,
    agent: AgentId,
}

impl MemberId {
    /// Checks a raw member id; `field` names it in the error (`memberID`, `gameID`, `streamer`).
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, MemberIdError> {
        check_text(raw, field)?;
        let at = split_at_sign(raw, field, MEMBER_FORMAT)?.ok_or(MemberIdError::MissingAt {
            field,
            expected: MEMBER_FORMAT,
        })?;
        let dot = split_agent(&raw[at + 1..], field, MEMBER_FORMAT)?;
        Ok(Self::from_checked(raw, at, dot))
    }

    /// An id already checked: `at` is the index of its `@`, `dot` that of the `.` after it,
    /// counted from just after the `@`.
    fn from_checked(raw: &str, at: usize, dot: usize) -> Self {
        Self {
            raw: raw.to_owned(),
            at,
            agent: AgentId {
                raw: raw[at + 1..].to_owned(),
                dot,
            },
        }
    }

    /// `ben` in `ben@mabu.mabumaster`.
    pub fn account(&self) -> &str {
        &self.raw[..self.at]
    }

    /// `mabu` in `ben@mabu.mabumaster`.
    pub fn agent(&self) -> &str {
        self.agent.agent()
    }

    /// `mabumaster` in `ben@mabu.mabumaster`.
    pub fn master_agent(&self) -> &str {
        self.agent.master_agent()
    }

    /// `mabu.mabumaster` in `ben@mabu.mabumaster`: the seed's `agentID`.
    pub fn agent_id(&self) -> &AgentId {
        &self.agent
    }

    /// The whole member id, as given: `ben@mabu.mabumaster`.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl TryFrom<String> for MemberId {
    type Error = MemberIdError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw, "memberID")
    }
}

impl From<MemberId> for String {
    fn from(id: MemberId) -> Self {
        id.raw
    }
}

impl schemars::JsonSchema for MemberId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MemberId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A member id, account@agent.masterAgent",
            "pattern": "^[^@\\s]+@[^@.\\s]+\\.[^@.\\s]+$"
        })
    }
}

impl Serialize for MemberId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw, "memberID").map_err(serde::de::Error::custom)
    }
}

/// The back office's `streamerAccount` / `account` filter of getGiftRecord, in one of the seed's
/// three forms: `x` (that account at any agent), `x@agent` (at any master agent of that agent) or
/// `x@agent.masterAgent` (exactly that member). Parts compare exactly, like member ids (see the
/// module docs on case).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MemberFilter {
    /// `x`: the account, whatever its agent.
    Account(String),
    /// `x@agent`: the account at that agent, whatever its master agent.
    AccountAtAgent {
        /// The account part, before `@`.
        account: String,
        /// The agent part, after `@` (no master agent).
        agent: String,
    },
    /// `x@agent.masterAgent`: exactly that member.
    Member(MemberId),
}

impl MemberFilter {
    /// Checks a raw filter; `field` names it in the error (`streamerAccount`, `account`). The text
    /// rules (length, control characters, whitespace) are those of [`MemberId`].
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, MemberIdError> {
        check_text(raw, field)?;
        let Some(at) = split_at_sign(raw, field, FILTER_FORMAT)? else {
            return Ok(Self::Account(raw.to_owned()));
        };
        let rest = &raw[at + 1..];
        if rest.contains('.') {
            let dot = split_agent(rest, field, FILTER_FORMAT)?;
            return Ok(Self::Member(MemberId::from_checked(raw, at, dot)));
        }
        non_empty(rest, MemberIdPart::Agent, field, FILTER_FORMAT)?;
        Ok(Self::AccountAtAgent {
            account: raw[..at].to_owned(),
            agent: rest.to_owned(),
        })
    }

    /// Like [`parse`](Self::parse), but an absent or empty value means "no filter": the seed's
    /// getGiftRecord example sends every optional field as `""`.
    pub fn parse_optional(
        raw: Option<&str>,
        field: &'static str,
    ) -> Result<Option<Self>, MemberIdError> {
        match raw {
            None | Some("") => Ok(None),
            Some(raw) => Self::parse(raw, field).map(Some),
        }
    }

    /// Whether `member` is one the filter asks for.
    pub fn matches(&self, member: &MemberId) -> bool {
        match self {
            Self::Account(account) => member.account() == account,
            Self::AccountAtAgent { account, agent } => {
                member.account() == account && member.agent() == agent
            }
            Self::Member(id) => member == id,
        }
    }

    /// The account every match has.
    pub fn account(&self) -> &str {
        match self {
            Self::Account(account) | Self::AccountAtAgent { account, .. } => account,
            Self::Member(id) => id.account(),
        }
    }

    /// The agent every match has, if the filter names one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Self::Account(_) => None,
            Self::AccountAtAgent { agent, .. } => Some(agent),
            Self::Member(id) => Some(id.agent()),
        }
    }

    /// The master agent every match has, if the filter names one.
    pub fn master_agent(&self) -> Option<&str> {
        match self {
            Self::Member(id) => Some(id.master_agent()),
            _ => None,
        }
    }
}

/// A member's role; on the wire `member` or `streamer` (the seed's chat `role` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `member`: a member of the audience; logs in with `loginAction`.
    Member,
    /// `streamer`: has a room, sets its info and goes live; logs in with `loginStreamer`.
    Streamer,
}

impl Role {
    /// The wire spelling: `member` or `streamer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Streamer => "streamer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role that is neither `member` nor `streamer`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("role must be \"member\" or \"streamer\", not {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    /// Exactly the wire spelling, as serde reads it.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "member" => Ok(Self::Member),
            "streamer" => Ok(Self::Streamer),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// The chat room of a streamer: `chatroomSystem-chatroom-{agentID}-{streamerMemberID}`, the seed's
/// `buildChatroomName`; e.g. `chatroomSystem-chatroom-mabu.mabumaster-ben001@mabu.mabumaster`.
/// The seed's client takes `agentID` from the streamer's own id, so it is normally
/// `streamer.agent_id()`; it is a parameter because the seed's function takes it as one.
pub fn chatroom_name(agent_id: &AgentId, streamer: &MemberId) -> String {
    format!("chatroomSystem-chatroom-{agent_id}-{streamer}")
}

/// The chat room of a streamer, when the id is a valid member id (every id in the stream is).
pub fn room_of(streamer: &str) -> Option<String> {
    let id = MemberId::parse(streamer, "streamer").ok()?;
    Some(chatroom_name(id.agent_id(), &id))
}

/// The streamer of a chat room named by [`chatroom_name`], if the name is one: the part after
/// `chatroomSystem-chatroom-{agentID}-` that is a member id of that agent.
pub fn chatroom_streamer(room: &str) -> Option<MemberId> {
    let rest = room.strip_prefix("chatroomSystem-chatroom-")?;
    rest.match_indices('-').find_map(|(i, _)| {
        let agent = &rest[..i];
        let streamer = MemberId::parse(&rest[i + 1..], "chatroom").ok()?;
        (streamer.agent_id().as_str() == agent).then_some(streamer)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user_id::UserId;

    fn member(raw: &str) -> MemberId {
        MemberId::parse(raw, "memberID").unwrap()
    }

    fn filter(raw: &str) -> MemberFilter {
        MemberFilter::parse(raw, "account").unwrap()
    }

    fn err(raw: &str) -> MemberIdError {
        MemberId::parse(raw, "memberID").unwrap_err()
    }

    #[test]
    fn a_room_name_gives_back_its_streamer() {
        let star = member("ben001@mabu.mabumaster");
        let room = chatroom_name(star.agent_id(), &star);
        assert_eq!(chatroom_streamer(&room), Some(star));
        let dashed = member("a-b@x-y.z-w");
        assert_eq!(
            chatroom_streamer(&chatroom_name(dashed.agent_id(), &dashed)),
            Some(dashed)
        );
        assert_eq!(chatroom_streamer("lobby"), None);
        assert_eq!(
            chatroom_streamer("chatroomSystem-chatroom-other.agent-ben@mabu.mabumaster"),
            None
        );
    }

    #[test]
    fn a_seed_member_id_splits_into_its_parts() {
        let id = member("ben@mabu.mabumaster");
        assert_eq!(id.account(), "ben");
        assert_eq!(id.agent(), "mabu");
        assert_eq!(id.master_agent(), "mabumaster");
        assert_eq!(id.agent_id().as_str(), "mabu.mabumaster");
        assert_eq!(id.agent_id().agent(), "mabu");
        assert_eq!(id.agent_id().master_agent(), "mabumaster");
        assert_eq!(id.as_str(), "ben@mabu.mabumaster");
        assert_eq!(id.to_string(), "ben@mabu.mabumaster");
    }

    #[test]
    fn the_account_may_hold_dots_and_any_unicode() {
        let id = member("ben.lee@mabu.mabumaster");
        assert_eq!(id.account(), "ben.lee");
        assert_eq!(id.agent(), "mabu");
        let id = member("觀眾小華@代理.總代理");
        assert_eq!(id.account(), "觀眾小華");
        assert_eq!(id.agent(), "代理");
        assert_eq!(id.master_agent(), "總代理");
    }

    #[test]
    fn ids_keep_their_spelling_and_compare_exactly() {
        // The sendGift example's `member@agent.masteragent` and the filter format's
        // `…@agent.masterAgent` are placeholders; the ids below are two different members.
        let lower = member("member@agent.masteragent");
        let camel = member("member@agent.masterAgent");
        assert_eq!(camel.master_agent(), "masterAgent");
        assert_ne!(lower, camel);
        assert_ne!(member("Ben@mabu.mabumaster"), member("ben@mabu.mabumaster"));
        assert_eq!(member("ben@mabu.mabumaster"), member("ben@mabu.mabumaster"));
        // Because room names paste the id verbatim, exact equality keeps "equal ids" and
        // "same room" the same thing.
        assert_ne!(
            chatroom_name(lower.agent_id(), &lower),
            chatroom_name(camel.agent_id(), &camel)
        );
    }

    #[test]
    fn refuses_empty_ids_and_empty_parts_naming_the_part() {
        assert_eq!(err(""), MemberIdError::Empty { field: "memberID" });
        for (raw, part) in [
            ("@mabu.mabumaster", MemberIdPart::Account),
            ("ben@.mabumaster", MemberIdPart::Agent),
            ("ben@mabu.", MemberIdPart::MasterAgent),
        ] {
            assert_eq!(
                err(raw),
                MemberIdError::EmptyPart {
                    field: "memberID",
                    part,
                    expected: "account@agent.masterAgent"
                },
                "{raw}"
            );
        }
        assert_eq!(
            err("ben@.mabumaster").to_string(),
            "memberID must have the form account@agent.masterAgent: the agent part is empty"
        );
    }

    #[test]
    fn refuses_a_missing_at_or_dot_and_extra_ones() {
        assert!(matches!(
            err("ben.mabu.mabumaster"),
            MemberIdError::MissingAt { .. }
        ));
        assert!(matches!(err("ben@mabu"), MemberIdError::MissingDot { .. }));
        assert!(matches!(
            err("ben@mabu@mabu.mabumaster"),
            MemberIdError::ExtraAt { .. }
        ));
        assert!(matches!(
            err("ben@mabu.mabumaster.x"),
            MemberIdError::ExtraDot { .. }
        ));
        assert_eq!(
            err("ben@mabu").to_string(),
            "memberID must have the form account@agent.masterAgent: the '.' between agent and \
             masterAgent is missing"
        );
    }

    #[test]
    fn refuses_control_characters_whitespace_and_long_ids() {
        assert_eq!(
            err("ben\n@mabu.mabumaster"),
            MemberIdError::ControlCharacter { field: "memberID" }
        );
        assert_eq!(
            err(" ben@mabu.mabumaster"),
            MemberIdError::Whitespace { field: "memberID" }
        );
        assert_eq!(
            err("ben lee@mabu.mabumaster"),
            MemberIdError::Whitespace { field: "memberID" }
        );
        let suffix = "@mabu.mabumaster";
        let longest = format!("{}{suffix}", "x".repeat(MAX_MEMBER_ID_CHARS - suffix.len()));
        assert_eq!(member(&longest).as_str(), longest);
        assert_eq!(
            err(&format!("x{longest}")),
            MemberIdError::TooLong {
                field: "memberID",
                max: 100
            }
        );
    }

    #[test]
    fn every_member_id_is_also_a_valid_user_id() {
        let suffix = "@代理.總代理";
        let longest = format!(
            "{}{suffix}",
            "觀".repeat(MAX_MEMBER_ID_CHARS - suffix.chars().count())
        );
        let id = member(&longest);
        assert_eq!(
            UserId::parse(id.as_str(), "userId").unwrap().as_str(),
            longest
        );
    }

    #[test]
    fn errors_name_the_field_they_were_given() {
        assert_eq!(
            MemberId::parse("", "gameID"),
            Err(MemberIdError::Empty { field: "gameID" })
        );
    }

    #[test]
    fn member_ids_travel_as_plain_strings_and_are_checked_when_read() {
        let id = member("ben@mabu.mabumaster");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"ben@mabu.mabumaster\""
        );
        let back: MemberId = serde_json::from_str("\"ben@mabu.mabumaster\"").unwrap();
        assert_eq!(back, id);
        let bad = serde_json::from_str::<MemberId>("\"ben\"").unwrap_err();
        assert!(bad.to_string().contains("'@' is missing"), "{bad}");
    }

    #[test]
    fn agent_ids_are_agent_dot_master_agent() {
        let agent = AgentId::parse("agent.masteragent", "agentID").unwrap();
        assert_eq!(agent.agent(), "agent");
        assert_eq!(agent.master_agent(), "masteragent");
        assert_eq!(
            serde_json::from_str::<AgentId>("\"mabu.mabumaster\"").unwrap(),
            *member("ben@mabu.mabumaster").agent_id()
        );
        assert!(matches!(
            AgentId::parse("mabu", "agentID"),
            Err(MemberIdError::MissingDot {
                field: "agentID",
                ..
            })
        ));
        assert!(matches!(
            AgentId::parse("ben@mabu.mabumaster", "agentID"),
            Err(MemberIdError::ExtraAt { .. })
        ));
        assert!(matches!(
            AgentId::parse(".mabumaster", "agentID"),
            Err(MemberIdError::EmptyPart {
                part: MemberIdPart::Agent,
                ..
            })
        ));
    }

    #[test]
    fn an_account_filter_matches_that_account_at_any_agent() {
        let f = filter("ben");
        assert_eq!(f, MemberFilter::Account("ben".into()));
        assert!(f.matches(&member("ben@mabu.mabumaster")));
        assert!(f.matches(&member("ben@other.boss")));
        assert!(!f.matches(&member("ben001@mabu.mabumaster")));
        assert!(!f.matches(&member("Ben@mabu.mabumaster")), "exact case");
        assert_eq!(
            (f.account(), f.agent(), f.master_agent()),
            ("ben", None, None)
        );
    }

    #[test]
    fn an_account_at_agent_filter_matches_any_master_agent_of_that_agent() {
        let f = filter("ben@mabu");
        assert!(f.matches(&member("ben@mabu.mabumaster")));
        assert!(f.matches(&member("ben@mabu.other")));
        assert!(!f.matches(&member("ben@other.mabumaster")));
        assert!(!f.matches(&member("ben@mabux.mabumaster")));
        assert!(!f.matches(&member("bob@mabu.mabumaster")));
        assert_eq!(
            (f.account(), f.agent(), f.master_agent()),
            ("ben", Some("mabu"), None)
        );
    }

    #[test]
    fn a_full_member_filter_matches_only_that_member() {
        let f = filter("ben@mabu.mabumaster");
        assert_eq!(f, MemberFilter::Member(member("ben@mabu.mabumaster")));
        assert!(f.matches(&member("ben@mabu.mabumaster")));
        assert!(!f.matches(&member("ben@mabu.other")));
        assert!(!f.matches(&member("ben@mabu.Mabumaster")), "exact case");
        assert_eq!(
            (f.account(), f.agent(), f.master_agent()),
            ("ben", Some("mabu"), Some("mabumaster"))
        );
    }

    #[test]
    fn malformed_filters_are_refused_naming_the_field() {
        let parse = |raw| MemberFilter::parse(raw, "streamerAccount").unwrap_err();
        assert_eq!(
            parse(""),
            MemberIdError::Empty {
                field: "streamerAccount"
            }
        );
        assert!(matches!(
            parse("@mabu"),
            MemberIdError::EmptyPart {
                part: MemberIdPart::Account,
                ..
            }
        ));
        assert!(matches!(
            parse("ben@"),
            MemberIdError::EmptyPart {
                part: MemberIdPart::Agent,
                ..
            }
        ));
        assert!(matches!(
            parse("ben@mabu."),
            MemberIdError::EmptyPart {
                part: MemberIdPart::MasterAgent,
                ..
            }
        ));
        assert!(matches!(
            parse("ben@mabu.x.y"),
            MemberIdError::ExtraDot { .. }
        ));
        assert!(matches!(parse("a@b@c"), MemberIdError::ExtraAt { .. }));
        assert!(matches!(
            parse("ben\t"),
            MemberIdError::ControlCharacter { .. }
        ));
        assert_eq!(
            parse("@mabu").to_string(),
            "streamerAccount must have the form account, account@agent or \
             account@agent.masterAgent: the account part is empty"
        );
    }

    #[test]
    fn an_empty_optional_filter_means_no_filter() {
        assert_eq!(MemberFilter::parse_optional(None, "account"), Ok(None));
        assert_eq!(MemberFilter::parse_optional(Some(""), "account"), Ok(None));
        assert_eq!(
            MemberFilter::parse_optional(Some("ben"), "account"),
            Ok(Some(MemberFilter::Account("ben".into())))
        );
        assert!(MemberFilter::parse_optional(Some(" "), "account").is_err());
    }

    #[test]
    fn roles_are_lowercase_on_the_wire() {
        assert_eq!(serde_json::to_string(&Role::Member).unwrap(), "\"member\"");
        assert_eq!(
            serde_json::to_string(&Role::Streamer).unwrap(),
            "\"streamer\""
        );
        assert_eq!(
            serde_json::from_str::<Role>("\"streamer\"").unwrap(),
            Role::Streamer
        );
        assert!(serde_json::from_str::<Role>("\"Streamer\"").is_err());
        assert_eq!("member".parse::<Role>(), Ok(Role::Member));
        assert_eq!("admin".parse::<Role>(), Err(UnknownRole("admin".into())));
        assert_eq!(Role::Streamer.to_string(), "streamer");
    }

    #[test]
    fn the_chat_room_name_is_the_seeds() {
        let streamer = member("ben001@mabu.mabumaster");
        assert_eq!(
            chatroom_name(streamer.agent_id(), &streamer),
            "chatroomSystem-chatroom-mabu.mabumaster-ben001@mabu.mabumaster"
        );
    }
}
