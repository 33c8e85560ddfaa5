//! The moderation-rule follower: every chat instance folds the moderation and maintenance events
//! from the start of the stream (an ordered consumer) into [`Rules`], held in memory, so a ban or
//! mute issued on any instance is enforced on every instance as soon as the event arrives
//! (milliseconds). A ban also closes the member's sockets in the room here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use super::hub::{Hub, Outgoing};
use crate::domain::chat::{ModerationAction, RoomModeration, SystemCode};
use crate::event_store::EventStore;
use crate::events::{Event, cloudevents};

/// Every room's moderation and the maintenance switch, as folded so far.
#[derive(Debug, Default)]
pub struct Rules {
    rooms: RwLock<HashMap<String, RoomModeration>>,
    maintenance: AtomicBool,
}

/// A ban to enforce on this instance's sockets: the member's sockets in the room close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The room the member is banned from.
    pub room: String,
    /// The banned member.
    pub member_id: String,
}

impl Rules {
    /// A room's moderation state (empty for a room never moderated).
    pub fn room(&self, room: &str) -> RoomModeration {
        self.rooms
            .read()
            .expect("moderation")
            .get(room)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether maintenance mode is on.
    pub fn maintenance(&self) -> bool {
        self.maintenance.load(Ordering::Relaxed)
    }

    /// Folds one event (others are ignored); returns the ban to enforce when it is one.
    pub fn apply(&self, event: &Event) -> Option<Ban> {
        match event {
            Event::MaintenanceModeSet(e) => {
                self.maintenance.store(e.enabled, Ordering::Relaxed);
                None
            }
            Event::MemberModerated(e) => {
                self.rooms
                    .write()
                    .expect("moderation")
                    .entry(e.room.clone())
                    .or_default()
                    .apply(&e.member_id, e.action, e.until);
                (e.action == ModerationAction::Ban).then(|| Ban {
                    room: e.room.clone(),
                    member_id: e.member_id.clone(),
                })
            }
            _ => None,
        }
    }

    /// Forgets every room (before folding the stream again from its start).
    fn forget_rooms(&self) {
        self.rooms.write().expect("moderation").clear();
    }
}

/// Follows the stream's moderation and maintenance events into `rules` and enforces bans on the
/// sockets of `hub`; restarts from the start of the stream a second after a failure. Runs until
/// the task is dropped.
pub async fn follow(rules: Arc<Rules>, store: EventStore, hub: Arc<Hub>) {
    loop {
        if let Err(e) = follow_once(&rules, &store, &hub).await {
            tracing::warn!(error = %e, "chat rules follower stopped; restarting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow_once(rules: &Rules, store: &EventStore, hub: &Hub) -> anyhow::Result<()> {
    let stream = store.stream().await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subjects: vec![
                crate::events::MODERATION_SUBJECT_FILTER.to_owned(),
                crate::events::SYSTEM_SUBJECT_FILTER.to_owned(),
            ],
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    rules.forget_rooms();
    let progress = store.followers().register(
        "chat-rules",
        vec![
            crate::events::MODERATION_SUBJECT_FILTER.to_owned(),
            crate::events::SYSTEM_SUBJECT_FILTER.to_owned(),
        ],
    );
    progress.started(0);
    let mut messages = consumer.messages().await?;
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = progress.stalled() => anyhow::bail!("the rules consumer stalled"),
        };
        let Some(message) = message else { break };
        let message = message?;
        if let Ok(info) = message.info() {
            progress.applied(info.stream_sequence, info.pending);
        }
        let Ok(envelope) = cloudevents::decode(message.headers.as_ref(), &message.payload, 0)
        else {
            continue;
        };
        if let Some(ban) = rules.apply(&envelope.event) {
            enforce(hub, &ban);
        }
    }
    anyhow::bail!("rules consumer ended")
}

/// Sends 40301 and `server::close` to the banned member's sockets in the room.
fn enforce(hub: &Hub, ban: &Ban) {
    for socket in hub.sockets_of_member(&ban.member_id) {
        if socket.in_room(&ban.room) {
            hub.system(&socket, SystemCode::Banned);
            hub.send_or_drop(&socket, Outgoing::CloseForGood);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{MaintenanceModeSet, MemberModerated};
    use time::macros::datetime;

    fn moderated(member: &str, action: ModerationAction) -> Event {
        Event::MemberModerated(MemberModerated {
            room: "room".into(),
            streamer: "star@mabu.mabumaster".into(),
            member_id: member.into(),
            action,
            by: "star@mabu.mabumaster".into(),
            until: None,
        })
    }

    #[test]
    fn given_a_ban_when_applied_then_the_room_bans_the_member_and_the_ban_is_to_enforce() {
        let rules = Rules::default();
        let ban = rules.apply(&moderated("amy", ModerationAction::Ban));
        assert_eq!(
            ban,
            Some(Ban {
                room: "room".into(),
                member_id: "amy".into()
            })
        );
        assert!(rules.room("room").banned.contains("amy"));
        assert_eq!(rules.room("elsewhere"), RoomModeration::default());
    }

    #[test]
    fn given_a_timed_mute_when_applied_then_the_room_knows_its_end_and_nothing_is_enforced() {
        let rules = Rules::default();
        let end = datetime!(2026-11-22 12:00 UTC);
        let mut mute = moderated("amy", ModerationAction::Mute);
        if let Event::MemberModerated(m) = &mut mute {
            m.until = Some(end);
        }
        assert_eq!(rules.apply(&mute), None);
        assert_eq!(rules.room("room").muted_until.get("amy"), Some(&end));
        assert_eq!(
            rules.apply(&moderated("amy", ModerationAction::Unmute)),
            None
        );
        assert_eq!(rules.room("room"), RoomModeration::default());
    }

    #[test]
    fn given_maintenance_switched_on_then_off_then_the_rules_follow_it() {
        let rules = Rules::default();
        assert!(!rules.maintenance());
        rules.apply(&Event::MaintenanceModeSet(MaintenanceModeSet {
            enabled: true,
        }));
        assert!(rules.maintenance());
        rules.apply(&Event::MaintenanceModeSet(MaintenanceModeSet {
            enabled: false,
        }));
        assert!(!rules.maintenance());
    }

    #[test]
    fn given_the_stream_is_folded_again_then_the_rooms_start_empty() {
        let rules = Rules::default();
        rules.apply(&moderated("ben", ModerationAction::GrantAdmin));
        rules.forget_rooms();
        assert_eq!(rules.room("room"), RoomModeration::default());
    }
}
