//! Member ids, the back office's account filters, roles and chat room names
//! (docs/design.md#decided-open-points).
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
//!   rules, and error 40305 refuses a chat message whose `memberID` differs from the one given at
//!   `verify`. If `Ben@…` and `ben@…` were equal here, two equal ids would name two different chat
//!   rooms.
//!
//! So `ben@mabu.mabumaster` and `Ben@mabu.mabumaster` are two different members, and a filter
//! `Ben` does not match `ben@mabu.mabumaster`. Whoever registers members may refuse ids that differ
//! from an existing one only in case; that is a registry rule, not an equality rule.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::user_id::MAX_USER_ID_CHARS;
pub use crate::events::room::{Role, UnknownRole};

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

/// Described as events carry it (`events::notice::MemberIdText`).
impl schemars::JsonSchema for MemberId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        crate::events::notice::MemberIdText::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::events::notice::MemberIdText::json_schema(generator)
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

/// A streamer's chat room, `chatroomSystem-chatroom-{agentID}-{streamerMemberID}` (the seed's
/// `buildChatroomName`, [`chatroom_name`]), parsed once by [`chatroom_streamer`]: its streamer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatroomName {
    name: String,
    streamer: MemberId,
}

/// A room name that is not a streamer's chat room.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a streamer's chat room")]
pub struct InvalidChatroomName(pub String);

impl ChatroomName {
    /// `raw` when it names a streamer's chat room ([`chatroom_streamer`]).
    pub fn parse(raw: &str) -> Result<Self, InvalidChatroomName> {
        let name = raw.to_owned();
        let streamer = chatroom_streamer(raw).ok_or_else(|| InvalidChatroomName(name.clone()))?;
        Ok(Self { name, streamer })
    }

    /// The room as text.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The room's streamer.
    pub fn streamer(&self) -> &MemberId {
        &self.streamer
    }
}

impl fmt::Display for ChatroomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
#[path = "member_tests.rs"]
mod tests;
