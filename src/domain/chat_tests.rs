//! Given/when/then tests of the chat rules (src/domain/chat.rs).

use super::*;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);
const STAR: &str = "star@mabu.mabumaster";

fn ben() -> Speaker {
    Speaker {
        member_id: MemberId::parse("ben@mabu.mabumaster", "memberID").unwrap(),
        role: Role::Member,
        nickname: "Ben".into(),
    }
}

fn star() -> MemberId {
    MemberId::parse(STAR, "streamer").unwrap()
}

fn say(
    speaker: Option<&Speaker>,
    room: &RoomModeration,
    raw: &str,
) -> Result<ChatMessage, SayRefusal> {
    check_say(speaker, Some(&star()), room, false, raw, 20, NOW)
}

#[test]
fn given_a_timed_mute_when_its_end_passes_then_the_member_speaks_again() {
    let mut room = RoomModeration::default();
    let end = NOW + time::Duration::seconds(60);
    room.apply("amy", ModerationAction::Mute, Some(end));
    assert_eq!(
        room.silenced("amy", NOW),
        Some(SystemCode::TemporarilyMuted)
    );
    assert_eq!(room.silenced("amy", end), None);
    assert_eq!(
        room.relationship("amy", false, NOW),
        vec![relationship::TEMPORARILY_MUTED]
    );
}

#[test]
fn given_both_mutes_when_unmuted_then_neither_remains() {
    let mut room = RoomModeration::default();
    room.apply("amy", ModerationAction::Mute, None);
    room.apply(
        "amy",
        ModerationAction::Mute,
        Some(NOW + time::Duration::hours(1)),
    );
    assert_eq!(room.silenced("amy", NOW), Some(SystemCode::Muted));
    room.apply("amy", ModerationAction::Unmute, None);
    assert_eq!(room, RoomModeration::default());
}

#[test]
fn given_a_ban_and_an_admin_when_unbanned_and_revoked_then_the_room_is_as_before() {
    let mut room = RoomModeration::default();
    room.apply("amy", ModerationAction::Ban, None);
    room.apply("ben", ModerationAction::GrantAdmin, None);
    assert_eq!(room.silenced("amy", NOW), Some(SystemCode::Banned));
    assert_eq!(
        room.relationship("ben", true, NOW),
        vec![relationship::ADMIN, relationship::FOLLOWING]
    );
    room.apply("amy", ModerationAction::Unban, None);
    room.apply("ben", ModerationAction::RevokeAdmin, None);
    assert_eq!(room, RoomModeration::default());
}

const HELLO: &str = r##"{"type":"chat","memberID":"ben@mabu.mabumaster","name":"ben","text":"Hello","textColor":"#FFF"}"##;

#[test]
fn a_verified_member_says_the_seeds_chat_message() {
    let m = say(Some(&ben()), &RoomModeration::default(), HELLO).unwrap();
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        serde_json::json!({"type": "chat", "memberID": "ben@mabu.mabumaster", "role": "member",
                           "name": "Ben", "text": "Hello", "textColor": "#FFF"})
    );
}

#[test]
fn the_name_is_the_members_nickname_whatever_the_client_sends() {
    let room = RoomModeration::default();
    for raw in [
        r##"{"type":"chat","memberID":"ben@mabu.mabumaster","name":"Official Support","text":"hi"}"##,
        r##"{"type":"chat","memberID":"ben@mabu.mabumaster","text":"hi"}"##,
    ] {
        assert_eq!(say(Some(&ben()), &room, raw).unwrap().name, "Ben", "{raw}");
    }
}

#[test]
fn each_refusal_has_its_code() {
    let room = RoomModeration::default();
    assert_eq!(
        say(None, &room, HELLO),
        Err(SayRefusal::System(SystemCode::NotLoggedIn))
    );
    assert_eq!(
        check_say(Some(&ben()), Some(&star()), &room, true, HELLO, 20, NOW),
        Err(SayRefusal::System(SystemCode::Maintenance))
    );
    let other = HELLO.replace("ben@mabu", "amy@mabu");
    assert_eq!(
        say(Some(&ben()), &room, &other),
        Err(SayRefusal::System(SystemCode::AuthenticationFailed))
    );
    let url = HELLO.replace("Hello", "see www.x.com");
    assert_eq!(
        say(Some(&ben()), &room, &url),
        Err(SayRefusal::System(SystemCode::UrlNotAllowed))
    );
    let star = Speaker {
        member_id: star(),
        role: Role::Streamer,
        nickname: "Star".into(),
    };
    let star_url = HELLO
        .replace("ben@mabu.mabumaster", STAR)
        .replace("Hello", "shop.example.com");
    assert_eq!(say(Some(&star), &room, &star_url).unwrap().role, "streamer");

    let mut room = RoomModeration::default();
    room.muted_until.insert(
        ben().member_id.to_string(),
        NOW + time::Duration::seconds(5),
    );
    assert_eq!(
        say(Some(&ben()), &room, HELLO),
        Err(SayRefusal::System(SystemCode::TemporarilyMuted))
    );
    room.muted_until.insert(
        ben().member_id.to_string(),
        NOW - time::Duration::seconds(1),
    );
    assert!(say(Some(&ben()), &room, HELLO).is_ok(), "a timed mute ends");
    room.muted.insert(ben().member_id.to_string());
    assert_eq!(
        say(Some(&ben()), &room, HELLO),
        Err(SayRefusal::System(SystemCode::Muted))
    );
    room.banned.insert(ben().member_id.to_string());
    assert_eq!(
        say(Some(&ben()), &room, HELLO),
        Err(SayRefusal::System(SystemCode::Banned))
    );
}

#[test]
fn shapes_lengths_and_colors_are_checked() {
    let room = RoomModeration::default();
    assert!(matches!(
        say(Some(&ben()), &room, "hello"),
        Err(SayRefusal::Invalid(_))
    ));
    let gift = HELLO.replace("\"chat\"", "\"gift\"");
    assert!(matches!(
        say(Some(&ben()), &room, &gift),
        Err(SayRefusal::Invalid(_))
    ));
    let long = HELLO.replace("Hello", &"x".repeat(21));
    assert!(matches!(
        say(Some(&ben()), &room, &long),
        Err(SayRefusal::Invalid(_))
    ));
    let red = HELLO.replace("#FFF", "red");
    assert!(matches!(
        say(Some(&ben()), &room, &red),
        Err(SayRefusal::Invalid(_))
    ));
    assert!(is_hex_color("#ff8800") && is_hex_color("#FFF") && !is_hex_color("#GGG"));
}

#[test]
fn urls_are_recognised() {
    for yes in [
        "http://a.b",
        "HTTPS://x",
        "www.example",
        "go to example.com/x",
        "a.io",
    ] {
        assert!(contains_url(yes), "{yes}");
    }
    for no in ["hello", "3.14", "v1.2", "well...ok", "ben@mabu.mabumaster"] {
        assert!(!contains_url(no), "{no}");
    }
}

#[test]
fn moderators_and_their_limits() {
    let mut room = RoomModeration::default();
    let ok = |room: &RoomModeration, actor, target, action| {
        authorize_moderation(room, STAR, actor, target, action, None)
    };
    assert_eq!(ok(&room, STAR, "a@b.c", ModerationAction::Ban), Ok(()));
    assert_eq!(
        ok(&room, "x@b.c", "a@b.c", ModerationAction::Ban),
        Err(ModerationError::NotModerator)
    );
    room.admins.insert("adm@b.c".into());
    assert_eq!(
        ok(&room, "adm@b.c", "a@b.c", ModerationAction::Mute),
        Ok(())
    );
    assert_eq!(
        ok(&room, "adm@b.c", "a@b.c", ModerationAction::GrantAdmin),
        Err(ModerationError::NotStreamer)
    );
    assert_eq!(
        ok(&room, "adm@b.c", STAR, ModerationAction::Ban),
        Err(ModerationError::TargetIsStreamer)
    );
    room.admins.insert("adm2@b.c".into());
    assert_eq!(
        ok(&room, "adm@b.c", "adm2@b.c", ModerationAction::Ban),
        Err(ModerationError::TargetIsAdmin)
    );
    assert_eq!(
        authorize_moderation(&room, STAR, STAR, "a@b.c", ModerationAction::Mute, Some(0)),
        Err(ModerationError::Duration)
    );
}

#[test]
fn relationship_codes_follow_the_seed() {
    let mut room = RoomModeration::default();
    let m = "a@b.c";
    room.muted.insert(m.into());
    room.admins.insert(m.into());
    room.muted_until
        .insert(m.into(), NOW + time::Duration::minutes(1));
    assert_eq!(room.relationship(m, true, NOW), vec![1, 3, 4, 5]);
    assert_eq!(room.relationship("z@b.c", false, NOW), Vec::<u8>::new());
}

fn session() -> TokenSession {
    TokenSession {
        expires_at: NOW.unix_timestamp(),
        version: 3,
        role: Role::Member,
    }
}

#[test]
fn given_a_token_session_when_its_exp_second_passes_then_it_has_expired() {
    let s = session();
    assert!(!s.expired(NOW - time::Duration::seconds(1)));
    assert!(
        !s.expired(NOW + time::Duration::milliseconds(999)),
        "good during the second of exp, as at verify"
    );
    assert!(s.expired(NOW + time::Duration::seconds(1)));
}

#[test]
fn given_a_member_edit_then_only_a_password_or_role_change_revokes_the_session() {
    let s = session();
    assert!(!s.revoked_by_edit(false, Role::Member), "a nickname change");
    assert!(s.revoked_by_edit(true, Role::Member));
    assert!(s.revoked_by_edit(false, Role::Streamer));
    assert_eq!(SessionEnd::Expired.as_str(), "expired");
    assert_eq!(SessionEnd::Revoked.as_str(), "revoked");
}
