//! Cross-instance delivery: what any instance published, delivered to this instance's sockets
//! (core NATS, no replay): a chat message or room notice to the room's sockets (subscribed per
//! room, only while a socket here is in it: src/chat/interest.rs), an all-rooms notice to every
//! room with sockets here, a follower notice (`sub`) to the sockets whose verified member follows
//! the streamer, in any room (these two on one subscription each per instance, here).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use sqlx::PgPool;

use super::hub::{Hub, Socket};
use super::protocol;
use crate::event_store::EventStore;
use crate::events::{Event, EventEnvelope, cloudevents, subject};

/// The `from` of the server's own notices.
const SERVER: &str = "0";

/// What one delivered event asks of this instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A `say` frame for the sockets of one room.
    Room {
        /// The room.
        room: String,
        /// The frame.
        frame: String,
    },
    /// A notice for every room with sockets here (the frame names each room).
    EveryRoom {
        /// The notice's JSON text.
        text: String,
        /// When it was published (Unix ms).
        sent_at: i64,
    },
    /// A `say` frame for the sockets whose verified member follows `streamer`.
    Followers {
        /// The followed streamer's member id.
        streamer: String,
        /// The frame (in the streamer's room).
        frame: String,
    },
}

/// What `envelope` asks of this instance; `None` for an event that is delivered to no socket.
pub fn delivery_of(envelope: &EventEnvelope) -> Option<Delivery> {
    let sent_at = protocol::unix_ms(envelope.occurred_at);
    let text = |message: &crate::events::ChatNotice| {
        serde_json::to_string(message).expect("notice serializes")
    };
    Some(match &envelope.event {
        Event::ChatMessagePosted(e) => Delivery::Room {
            room: e.room.clone(),
            frame: protocol::say(&e.message, &e.room, &e.from, sent_at),
        },
        Event::RoomNoticePublished(e) => Delivery::Room {
            room: e.room.clone(),
            frame: protocol::say(&text(&e.message), &e.room, SERVER, sent_at),
        },
        Event::AllRoomsNoticePublished(e) => Delivery::EveryRoom {
            text: text(&e.message),
            sent_at,
        },
        Event::FollowerNoticePublished(e) => {
            let room = crate::domain::member::room_of(&e.streamer).unwrap_or_default();
            Delivery::Followers {
                streamer: e.streamer.clone(),
                frame: protocol::say(&text(&e.message), &room, SERVER, sent_at),
            }
        }
        _ => return None,
    })
}

/// Of `(recipient, member)` pairs, the recipients whose member is one of `followers`.
pub fn followers_only<T>(members: Vec<(T, String)>, followers: &HashSet<String>) -> Vec<T> {
    members
        .into_iter()
        .filter(|(_, member)| followers.contains(member))
        .map(|(recipient, _)| recipient)
        .collect()
}

/// Delivers what every instance publishes to the sockets of `hub`; resubscribes a second after a
/// failure. Runs until the task is dropped.
pub async fn run(store: EventStore, db: PgPool, hub: Arc<Hub>) {
    loop {
        if let Err(e) = run_once(&store, &db, &hub).await {
            tracing::warn!(error = %e, "chat delivery stopped; restarting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn run_once(store: &EventStore, db: &PgPool, hub: &Hub) -> anyhow::Result<()> {
    let client = store.client();
    let mut all_rooms = client
        .subscribe(subject::subject("notice", "all", "published_to_all_rooms"))
        .await?;
    let mut followers = client
        .subscribe("onair.notice.*.published_to_followers")
        .await?;
    loop {
        let message = tokio::select! {
            m = all_rooms.next() => m,
            m = followers.next() => m,
        };
        let Some(message) = message else {
            anyhow::bail!("subscription ended");
        };
        let Ok(envelope) = cloudevents::decode(message.headers.as_ref(), &message.payload, 0)
        else {
            continue;
        };
        if let Some(delivery) = delivery_of(&envelope) {
            deliver(db, hub, delivery).await;
        }
    }
}

async fn deliver(db: &PgPool, hub: &Hub, delivery: Delivery) {
    match delivery {
        Delivery::Room { room, frame } => {
            hub.deliver(&room, &frame);
        }
        Delivery::EveryRoom { text, sent_at } => {
            for room in hub.rooms() {
                hub.deliver(&room, &protocol::say(&text, &room, SERVER, sent_at));
            }
        }
        Delivery::Followers { streamer, frame } => {
            let members: Vec<(Arc<Socket>, String)> = hub
                .sockets()
                .into_iter()
                .filter_map(|s| s.member_id().map(|m| (s, m)))
                .collect();
            if members.is_empty() {
                return;
            }
            let ids: Vec<String> = members.iter().map(|(_, m)| m.clone()).collect();
            let followers = crate::read_models::chat::followers_among(db, &streamer, &ids)
                .await
                .unwrap_or_default();
            for socket in followers_only(members, &followers) {
                hub.reply(&socket, frame.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{
        AllRoomsNoticePublished, ChatMessagePosted, ChatNotice, FollowerNoticePublished,
        MaintenanceModeSet, RoomNoticePublished,
    };
    use serde_json::{Value, json};
    use time::macros::datetime;

    const STAR: &str = "star@mabu.mabumaster";

    fn envelope(event: Event) -> EventEnvelope {
        EventEnvelope {
            id: uuid::Uuid::nil(),
            occurred_at: datetime!(2026-11-22 12:00:00.123 UTC),
            sequence: 0,
            event,
        }
    }

    fn frame(delivery: &Delivery) -> Value {
        let frame = match delivery {
            Delivery::Room { frame, .. } | Delivery::Followers { frame, .. } => frame,
            Delivery::EveryRoom { .. } => panic!("no frame"),
        };
        serde_json::from_str(frame).unwrap()
    }

    fn follow() -> ChatNotice {
        ChatNotice::Follow {
            streamer: STAR.into(),
            follower: "ben@mabu.mabumaster".into(),
        }
    }

    #[test]
    fn a_chat_message_goes_to_its_room_from_the_connection_that_said_it() {
        let d = delivery_of(&envelope(Event::ChatMessagePosted(ChatMessagePosted {
            room: "room".into(),
            from: "socket-1".into(),
            member_id: "ben@mabu.mabumaster".into(),
            message: "{\"type\":\"chat\"}".into(),
        })))
        .unwrap();
        assert!(matches!(&d, Delivery::Room { room, .. } if room == "room"));
        let f = frame(&d);
        assert_eq!(f["from"], "socket-1");
        assert_eq!(f["message"], "{\"type\":\"chat\"}");
        assert_eq!(f["sentAt"], 1_795_348_800_123_i64);
    }

    #[test]
    fn a_room_notice_goes_to_its_room_from_the_server() {
        let d = delivery_of(&envelope(Event::RoomNoticePublished(RoomNoticePublished {
            room: "room".into(),
            message: follow(),
        })))
        .unwrap();
        let f = frame(&d);
        assert_eq!(f["from"], "0");
        let notice: Value = serde_json::from_str(f["message"].as_str().unwrap()).unwrap();
        assert_eq!(
            notice,
            json!({"type": "follow", "streamer": STAR, "follower": "ben@mabu.mabumaster"})
        );
    }

    #[test]
    fn a_follower_notice_is_framed_in_the_streamers_room() {
        let d = delivery_of(&envelope(Event::FollowerNoticePublished(
            FollowerNoticePublished {
                streamer: STAR.into(),
                message: follow(),
            },
        )))
        .unwrap();
        assert!(matches!(&d, Delivery::Followers { streamer, .. } if streamer == STAR));
        assert_eq!(
            frame(&d)["room"],
            crate::domain::member::room_of(STAR).unwrap()
        );
    }

    #[test]
    fn an_all_rooms_notice_is_for_every_room_and_other_events_for_none() {
        let d = delivery_of(&envelope(Event::AllRoomsNoticePublished(
            AllRoomsNoticePublished { message: follow() },
        )));
        assert!(matches!(
            d,
            Some(Delivery::EveryRoom {
                sent_at: 1_795_348_800_123,
                ..
            })
        ));
        let none = delivery_of(&envelope(Event::MaintenanceModeSet(MaintenanceModeSet {
            enabled: true,
        })));
        assert_eq!(none, None);
    }

    #[test]
    fn only_the_sockets_of_followers_get_a_follower_notice() {
        let followers: HashSet<String> = ["ben".to_owned()].into();
        let members = vec![
            (1, "ben".to_owned()),
            (2, "amy".to_owned()),
            (3, "ben".to_owned()),
        ];
        assert_eq!(followers_only(members, &followers), vec![1, 3]);
    }
}
