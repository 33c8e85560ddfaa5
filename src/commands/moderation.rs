//! The moderation command: a room's streamer or one of its admins bans, unbans, mutes (for good
//! or for a number of seconds), unmutes, grants or revokes admin. The chat socket's moderation
//! actions and the REST `moderate` action share it. The room's moderation state comes from the
//! caller (every chat instance folds it from the stream); the rules are
//! [`crate::domain::chat::authorize_moderation`].

use time::OffsetDateTime;

use crate::domain::chat::{
    ModerationAction, ModerationError, RoomModeration, authorize_moderation,
};
use crate::domain::member::{ChatroomName, MemberId};
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::{Event, MemberModerated};

/// Why a moderation command failed; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum ModerateError {
    /// The target is not a member id, or `seconds` was given for an action other than mute.
    #[error("{0}")]
    Invalid(String),
    /// The actor may not do this, or the mute length is out of range.
    #[error(transparent)]
    Rule(#[from] ModerationError),
    /// The `member_moderated` event was not stored.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

/// The moderation action of a chat action or REST action name (`ban`, `unban`, `mute`, `unmute`,
/// `grantAdmin`, `revokeAdmin`); `None` for any other name.
pub fn parse_action(name: &str) -> Option<ModerationAction> {
    Some(match name {
        "ban" => ModerationAction::Ban,
        "unban" => ModerationAction::Unban,
        "mute" => ModerationAction::Mute,
        "unmute" => ModerationAction::Unmute,
        "grantAdmin" => ModerationAction::GrantAdmin,
        "revokeAdmin" => ModerationAction::RevokeAdmin,
        _ => return None,
    })
}

/// A moderation command of `actor` on `target` in `room`.
#[derive(Clone, Copy, Debug)]
pub struct Moderate<'a> {
    /// Who moderates (their verified member id).
    pub actor: &'a str,
    /// The streamer's chat room, `chatroomSystem-chatroom-{agentID}-{streamerMemberID}`.
    pub room: &'a ChatroomName,
    /// Who is moderated (a member id).
    pub target: &'a str,
    /// What is done.
    pub action: ModerationAction,
    /// A timed mute's length in seconds (1 to 30 days); `None`: for good (mute only).
    pub seconds: Option<u64>,
    /// The room's moderation state as the caller knows it (who its admins are).
    pub moderation: &'a RoomModeration,
}

/// What a moderation command published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moderated {
    /// The end of a timed mute (UTC); `None` otherwise.
    pub until: Option<OffsetDateTime>,
    /// The stream sequence of the `member_moderated` event.
    pub sequence: u64,
}

/// Checks and publishes a moderation (`chat.member_moderated`, unguarded: the rules follower of
/// every instance folds moderations in stream order). `now` starts a timed mute.
#[tracing::instrument(skip_all, fields(chat.room = %command.room, actor.id = %command.actor, member.id = %command.target, action = ?command.action), err(level = "info"))]
pub async fn moderate(
    store: &EventStore,
    now: OffsetDateTime,
    command: Moderate<'_>,
) -> Result<Moderated, ModerateError> {
    let event = decide(now, command)?;
    let until = event.until;
    let published = store
        .publish(NewEvent::new(now, Event::MemberModerated(event)))
        .await?;
    Ok(Moderated {
        until,
        sequence: published.sequence,
    })
}

/// The `member_moderated` event of a command, or why it is refused.
fn decide(now: OffsetDateTime, c: Moderate<'_>) -> Result<MemberModerated, ModerateError> {
    let streamer = c.room.streamer();
    MemberId::parse(c.target, "memberID").map_err(|e| ModerateError::Invalid(e.to_string()))?;
    if c.seconds.is_some() && c.action != ModerationAction::Mute {
        return Err(ModerateError::Invalid(
            "seconds applies to mute only".into(),
        ));
    }
    authorize_moderation(
        c.moderation,
        streamer.as_str(),
        c.actor,
        c.target,
        c.action,
        c.seconds,
    )?;
    Ok(MemberModerated {
        room: c.room.to_string(),
        streamer: streamer.to_string(),
        member_id: c.target.to_owned(),
        action: c.action,
        by: c.actor.to_owned(),
        until: c.seconds.map(|s| now + time::Duration::seconds(s as i64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);
    const STAR: &str = "star@mabu.mabumaster";
    const BEN: &str = "ben@mabu.mabumaster";

    fn room() -> ChatroomName {
        let star = MemberId::parse(STAR, "streamerID").unwrap();
        ChatroomName::parse(&crate::domain::member::chatroom_name(
            star.agent_id(),
            &star,
        ))
        .unwrap()
    }

    fn command<'a>(
        room: &'a ChatroomName,
        moderation: &'a RoomModeration,
        action: ModerationAction,
        seconds: Option<u64>,
    ) -> Moderate<'a> {
        Moderate {
            actor: STAR,
            room,
            target: BEN,
            action,
            seconds,
            moderation,
        }
    }

    #[test]
    fn every_action_name_parses_and_nothing_else_does() {
        for name in [
            "ban",
            "unban",
            "mute",
            "unmute",
            "grantAdmin",
            "revokeAdmin",
        ] {
            let action = parse_action(name).unwrap();
            assert_eq!(serde_json::to_value(action).unwrap(), name);
        }
        assert_eq!(parse_action("kick"), None);
        assert_eq!(parse_action("Ban"), None);
    }

    #[test]
    fn given_a_timed_mute_by_the_streamer_then_it_ends_seconds_after_now() {
        let (room, m) = (room(), RoomModeration::default());
        let event = decide(NOW, command(&room, &m, ModerationAction::Mute, Some(90))).unwrap();
        assert_eq!(event.until, Some(NOW + time::Duration::seconds(90)));
        assert_eq!(event.streamer, STAR);
        assert_eq!((event.by.as_str(), event.member_id.as_str()), (STAR, BEN));
    }

    #[test]
    fn given_seconds_on_a_ban_then_it_is_invalid() {
        let (room, m) = (room(), RoomModeration::default());
        let refused = decide(NOW, command(&room, &m, ModerationAction::Ban, Some(5)));
        assert!(
            matches!(refused, Err(ModerateError::Invalid(m)) if m == "seconds applies to mute only")
        );
    }

    #[test]
    fn given_a_member_who_is_no_admin_then_the_rules_refuse_them() {
        let (room, m) = (room(), RoomModeration::default());
        let mut c = command(&room, &m, ModerationAction::Mute, None);
        c.actor = "amy@mabu.mabumaster";
        assert!(matches!(
            decide(NOW, c),
            Err(ModerateError::Rule(ModerationError::NotModerator))
        ));
    }
}
