//! A room's info (`setRoomInfo`): title, announcement and cover, set by the room's streamer.
//! Absent fields keep their value; the result is checked with [`crate::domain::room`]'s text
//! rules.

use crate::domain::room::{self, MAX_ANNOUNCEMENT_CHARS, MAX_TITLE_CHARS, RoomError};

/// A room's info as the stream has it (the last `onair.room.info_set.v1`); all fields empty
/// before the first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomInfo {
    /// Title, at most [`MAX_TITLE_CHARS`] characters; empty when none.
    pub title: String,
    /// Announcement, at most [`MAX_ANNOUNCEMENT_CHARS`] characters; empty when none.
    pub announcement: String,
    /// Cover URL (`http(s)://`); empty when none.
    pub cover: String,
}

/// What a `setRoomInfo` changes; `None` keeps the field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomInfoChange {
    /// New title.
    pub title: Option<String>,
    /// New announcement.
    pub announcement: Option<String>,
    /// New cover URL (`""`: none).
    pub cover: Option<String>,
}

/// Why a change is refused before the room is loaded; nothing is published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomInfoRuleError {
    /// A streamer named another streamer's room (HTTP 403 `FORBIDDEN`).
    #[error("a streamer may only set their own room's info")]
    OtherRoom,
    /// No field is set (HTTP 400 `VALIDATION_ERROR`).
    #[error("query must set at least one of title, announcement, cover")]
    NothingToSet,
}

/// Checks who sets what: only `streamer`'s own room (`named_room`, when given, must be it), and
/// at least one field.
pub fn check_change(
    streamer: &str,
    named_room: Option<&str>,
    change: &RoomInfoChange,
) -> Result<(), RoomInfoRuleError> {
    if named_room.is_some_and(|other| other != streamer) {
        return Err(RoomInfoRuleError::OtherRoom);
    }
    if change.title.is_none() && change.announcement.is_none() && change.cover.is_none() {
        return Err(RoomInfoRuleError::NothingToSet);
    }
    Ok(())
}

/// The info after `change`: absent fields keep `current`'s value; the result's texts are checked
/// (errors name `query.title`, `query.announcement`, `query.cover`).
pub fn apply(current: RoomInfo, change: RoomInfoChange) -> Result<RoomInfo, RoomError> {
    let next = RoomInfo {
        title: change.title.unwrap_or(current.title),
        announcement: change.announcement.unwrap_or(current.announcement),
        cover: change.cover.unwrap_or(current.cover),
    };
    room::check_text(&next.title, "query.title", MAX_TITLE_CHARS)?;
    room::check_text(
        &next.announcement,
        "query.announcement",
        MAX_ANNOUNCEMENT_CHARS,
    )?;
    room::check_cover(&next.cover, "query.cover")?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> RoomInfo {
        RoomInfo {
            title: "Old".into(),
            announcement: "Hello".into(),
            cover: String::new(),
        }
    }

    #[test]
    fn given_a_change_of_the_title_then_the_other_fields_keep_their_value() {
        let change = RoomInfoChange {
            title: Some("New".into()),
            ..Default::default()
        };
        let next = apply(current(), change).unwrap();
        assert_eq!(next.title, "New");
        assert_eq!(next.announcement, "Hello");
    }

    #[test]
    fn given_another_streamers_room_or_no_field_then_the_change_is_refused() {
        let change = RoomInfoChange {
            cover: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(check_change("s@a.m", Some("s@a.m"), &change), Ok(()));
        assert_eq!(
            check_change("s@a.m", Some("t@a.m"), &change),
            Err(RoomInfoRuleError::OtherRoom)
        );
        assert_eq!(
            check_change("s@a.m", None, &RoomInfoChange::default()),
            Err(RoomInfoRuleError::NothingToSet)
        );
    }

    #[test]
    fn given_a_cover_that_is_not_a_url_then_the_change_is_refused_naming_the_field() {
        let change = RoomInfoChange {
            cover: Some("ftp://x".into()),
            ..Default::default()
        };
        assert_eq!(
            apply(current(), change),
            Err(RoomError::CoverNotUrl {
                field: "query.cover"
            })
        );
    }
}
