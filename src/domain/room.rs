//! Rooms: a streamer's live status, room info, follows and gifts (docs/api.md#the-room-api).
//!
//! A room belongs to one streamer and is named by [`chatroom_name`]. The rules here decide from the
//! state the caller read (the room's last broadcast event, the last follow event of a pair), so a
//! double start or a second follow is refused with a clear error instead of writing a duplicate
//! fact.
//!
//! [`chatroom_name`]: crate::domain::member::chatroom_name

use uuid::Uuid;

/// Longest room title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// Longest room announcement, in characters.
pub const MAX_ANNOUNCEMENT_CHARS: usize = 1000;
/// Longest cover image URL, in characters.
pub const MAX_COVER_CHARS: usize = 2048;
/// Most gifts in one `sendGift` (the seed names no limit; a cap keeps a typo from costing a
/// member a fortune and keeps `points × count` small).
pub const MAX_GIFT_COUNT: u32 = 9999;

/// Whether a room is live, as its last broadcast event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BroadcastState {
    /// No live session: never started, or the last one ended.
    Offline,
    /// A live session is running.
    Live {
        /// The running session's id.
        session_id: Uuid,
    },
}

/// Why a room command is refused; nothing is published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// `startStream` while live (409 `ALREADY_LIVE`).
    #[error("the stream is already live (session {session_id})")]
    AlreadyLive {
        /// The session already running.
        session_id: Uuid,
    },
    /// `endStream` while offline (409 `NOT_LIVE`).
    #[error("the stream is not live")]
    NotLive,
    /// A member tried to follow themselves (400 `VALIDATION_ERROR`).
    #[error("a member cannot follow themselves")]
    FollowSelf,
    /// `follow` of a streamer already followed (409 `ALREADY_FOLLOWING`).
    #[error("{follower} already follows {streamer}")]
    AlreadyFollowing {
        /// The follower's member id.
        follower: String,
        /// The streamer's member id.
        streamer: String,
    },
    /// `unfollow` of a streamer not followed (409 `NOT_FOLLOWING`).
    #[error("{follower} does not follow {streamer}")]
    NotFollowing {
        /// The follower's member id.
        follower: String,
        /// The streamer's member id.
        streamer: String,
    },
    /// A room text is too long (400 `VALIDATION_ERROR`).
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field at fault, e.g. `query.title`.
        field: &'static str,
        /// The limit, in characters.
        max: usize,
    },
    /// A room text holds a control character other than a line break or tab (400
    /// `VALIDATION_ERROR`).
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The field at fault, e.g. `query.title`.
        field: &'static str,
    },
    /// The cover is neither empty nor an `http(s)://` URL (400 `VALIDATION_ERROR`).
    #[error("{field} must be an http or https URL")]
    CoverNotUrl {
        /// The field at fault, e.g. `query.cover`.
        field: &'static str,
    },
    /// `giftCount` outside 1 to [`MAX_GIFT_COUNT`] (400 `VALIDATION_ERROR`).
    #[error("giftCount must be between 1 and {MAX_GIFT_COUNT}, got {0}")]
    GiftCount(i64),
}

/// `startStream`: allowed only while offline; the new session gets `session_id`.
pub fn start_stream(state: BroadcastState, session_id: Uuid) -> Result<Uuid, RoomError> {
    match state {
        BroadcastState::Offline => Ok(session_id),
        BroadcastState::Live { session_id } => Err(RoomError::AlreadyLive { session_id }),
    }
}

/// `endStream`: allowed only while live; returns the session that ends.
pub fn end_stream(state: BroadcastState) -> Result<Uuid, RoomError> {
    match state {
        BroadcastState::Live { session_id } => Ok(session_id),
        BroadcastState::Offline => Err(RoomError::NotLive),
    }
}

/// `follow`: refused for oneself and when already following.
pub fn follow(follower: &str, streamer: &str, following: bool) -> Result<(), RoomError> {
    if follower == streamer {
        return Err(RoomError::FollowSelf);
    }
    if following {
        return Err(RoomError::AlreadyFollowing {
            follower: follower.to_owned(),
            streamer: streamer.to_owned(),
        });
    }
    Ok(())
}

/// `unfollow`: refused when not following.
pub fn unfollow(follower: &str, streamer: &str, following: bool) -> Result<(), RoomError> {
    if !following {
        return Err(RoomError::NotFollowing {
            follower: follower.to_owned(),
            streamer: streamer.to_owned(),
        });
    }
    Ok(())
}

/// Checks a free-text room field: at most `max` characters, no control characters except line
/// breaks and tabs (an announcement may have several lines).
pub fn check_text(value: &str, field: &'static str, max: usize) -> Result<(), RoomError> {
    if value.chars().count() > max {
        return Err(RoomError::TooLong { field, max });
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(RoomError::ControlCharacter { field });
    }
    Ok(())
}

/// Checks a cover URL: empty (no cover) or `http(s)://…`, at most [`MAX_COVER_CHARS`]; errors
/// name `field`.
pub fn check_cover(value: &str, field: &'static str) -> Result<(), RoomError> {
    check_text(value, field, MAX_COVER_CHARS)?;
    if value.is_empty() {
        return Ok(());
    }
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !value.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(RoomError::CoverNotUrl { field }),
    }
}

/// Checks a gift count: 1 to [`MAX_GIFT_COUNT`].
pub fn check_gift_count(count: i64) -> Result<u32, RoomError> {
    u32::try_from(count)
        .ok()
        .filter(|c| (1..=MAX_GIFT_COUNT).contains(c))
        .ok_or(RoomError::GiftCount(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_starts_only_when_offline_and_ends_only_when_live() {
        let session = Uuid::from_u128(7);
        assert_eq!(start_stream(BroadcastState::Offline, session), Ok(session));
        let live = BroadcastState::Live {
            session_id: session,
        };
        assert_eq!(
            start_stream(live, Uuid::from_u128(8)),
            Err(RoomError::AlreadyLive {
                session_id: session
            })
        );
        assert_eq!(end_stream(live), Ok(session));
        assert_eq!(end_stream(BroadcastState::Offline), Err(RoomError::NotLive));
    }

    #[test]
    fn follows_are_refused_for_oneself_and_twice() {
        assert_eq!(follow("a@b.c", "s@b.c", false), Ok(()));
        assert_eq!(follow("s@b.c", "s@b.c", false), Err(RoomError::FollowSelf));
        assert!(matches!(
            follow("a@b.c", "s@b.c", true),
            Err(RoomError::AlreadyFollowing { .. })
        ));
        assert_eq!(unfollow("a@b.c", "s@b.c", true), Ok(()));
        assert!(matches!(
            unfollow("a@b.c", "s@b.c", false),
            Err(RoomError::NotFollowing { .. })
        ));
    }

    #[test]
    fn room_texts_and_covers_are_checked() {
        assert!(check_text("Line one\nline two", "announcement", 20).is_ok());
        assert_eq!(
            check_text("x".repeat(11).as_str(), "title", 10),
            Err(RoomError::TooLong {
                field: "title",
                max: 10
            })
        );
        assert_eq!(
            check_text("bell\u{7}", "title", 10),
            Err(RoomError::ControlCharacter { field: "title" })
        );
        let not_url = Err(RoomError::CoverNotUrl { field: "cover" });
        assert!(check_cover("", "cover").is_ok());
        assert!(check_cover("https://cdn.example.com/c.png", "cover").is_ok());
        assert_eq!(check_cover("javascript:alert(1)", "cover"), not_url);
        assert_eq!(check_cover("https://", "cover"), not_url);
    }

    #[test]
    fn gift_counts_run_from_one_to_the_cap() {
        assert_eq!(check_gift_count(1), Ok(1));
        assert_eq!(check_gift_count(9999), Ok(9999));
        assert_eq!(check_gift_count(0), Err(RoomError::GiftCount(0)));
        assert_eq!(check_gift_count(-3), Err(RoomError::GiftCount(-3)));
        assert_eq!(check_gift_count(10_000), Err(RoomError::GiftCount(10_000)));
    }
}
