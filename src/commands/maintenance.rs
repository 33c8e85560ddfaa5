//! The operator's chat controls (back office): maintenance mode (`SetMaintenance`, every chat
//! message refused with 40308 on every instance while on) and system messages
//! (`BroadcastSystemMessage`, one room or every room). Who may use them is checked by the caller
//! (the operator's scope).

use time::OffsetDateTime;

use crate::domain::member::{MemberId, chatroom_name};
use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};
use crate::events::{
    AllRoomsNoticePublished, ChatNotice, Event, MaintenanceModeSet, RoomNoticePublished,
};

/// Longest system message, in characters.
pub const MAX_SYSTEM_MESSAGE_CHARS: usize = 1000;

/// A system message's text is empty or too long (HTTP 400 `VALIDATION_ERROR`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("message must be 1 to 1000 characters")]
pub struct SystemMessageError;

/// The text of a system message: not blank, at most [`MAX_SYSTEM_MESSAGE_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemMessage(String);

impl SystemMessage {
    /// Checks the text.
    pub fn parse(text: String) -> Result<Self, SystemMessageError> {
        if text.trim().is_empty() || text.chars().count() > MAX_SYSTEM_MESSAGE_CHARS {
            return Err(SystemMessageError);
        }
        Ok(Self(text))
    }
}

/// Why a chat control failed: the event store did not answer (HTTP 503); nothing was stored.
pub type ChatControlError = EventStoreError;

/// `SetMaintenance`: publishes `onair.chat.maintenance_set.v1`.
#[tracing::instrument(skip_all, fields(maintenance.enabled = enabled), err)]
pub async fn set_maintenance(
    store: &EventStore,
    enabled: bool,
    now: OffsetDateTime,
) -> Result<Published, ChatControlError> {
    store
        .publish(NewEvent::new(
            now,
            Event::MaintenanceModeSet(MaintenanceModeSet { enabled }),
        ))
        .await
}

/// `BroadcastSystemMessage`: a `system` notice to `streamer`'s room, or to every room.
#[tracing::instrument(skip_all, fields(streamer.id = streamer.map(|s| s.as_str())), err)]
pub async fn broadcast_system_message(
    store: &EventStore,
    message: SystemMessage,
    streamer: Option<&MemberId>,
    now: OffsetDateTime,
) -> Result<Published, ChatControlError> {
    let notice = ChatNotice::System { message: message.0 };
    let event = match streamer {
        Some(streamer) => Event::RoomNoticePublished(RoomNoticePublished {
            room: chatroom_name(streamer.agent_id(), streamer),
            message: notice,
        }),
        None => Event::AllRoomsNoticePublished(AllRoomsNoticePublished { message: notice }),
    };
    store.publish(NewEvent::new(now, event)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_message_is_one_to_1000_characters_and_not_blank() {
        assert!(SystemMessage::parse("Back at 10:00".into()).is_ok());
        assert!(SystemMessage::parse("é".repeat(1000)).is_ok());
        assert_eq!(SystemMessage::parse("   ".into()), Err(SystemMessageError));
        assert_eq!(
            SystemMessage::parse("x".repeat(1001)),
            Err(SystemMessageError)
        );
    }
}
