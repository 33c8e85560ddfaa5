//! Given/when/then tests of member ids, roles and chat room names (src/domain/member.rs).

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

#[test]
fn a_chatroom_name_is_parsed_once_and_carries_its_streamer() {
    let star = member("ben001@mabu.mabumaster");
    let room = ChatroomName::parse(&chatroom_name(star.agent_id(), &star)).unwrap();
    assert_eq!(room.streamer(), &star);
    assert_eq!(
        room.to_string(),
        "chatroomSystem-chatroom-mabu.mabumaster-ben001@mabu.mabumaster"
    );
    let dashed = member("a-b@x-y.z-w");
    let room = ChatroomName::parse(&chatroom_name(dashed.agent_id(), &dashed)).unwrap();
    assert_eq!(room.streamer(), &dashed);
    for bad in [
        "",
        "lobby",
        "chatroomSystem-chatroom-",
        "chatroomSystem-chatroom-bench",
        "chatroomSystem-chatroom-other.agent-ben@mabu.mabumaster",
        "chatroomSystem-chatroom-mabu.mabumaster-ben 001@mabu.mabumaster",
    ] {
        assert_eq!(
            ChatroomName::parse(bad),
            Err(InvalidChatroomName(bad.to_owned())),
            "{bad:?}"
        );
    }
}
