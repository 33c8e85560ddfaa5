//! Interest-based delivery: this instance subscribes (core NATS) to a room's chat messages
//! (`onair.chat.<room>.message_posted`) and room notices (`onair.notice.<room>.published_to_room`)
//! only while at least one of its sockets is in the room, so an instance receives none of the
//! chat of rooms it has no socket in. The first socket's `roomAdd` subscribes (and is answered
//! once the server has the subscription, so nothing said after the answer is missed); the last
//! socket's leave or disconnect unsubscribes. Each room's messages are delivered by its own
//! task, so rooms do not wait for each other. (All-rooms and follower notices stay on one
//! subscription per instance: src/chat/delivery.rs.)

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;

use super::delivery::{Delivery, delivery_of};
use super::hub::Hub;
use crate::events::{cloudevents, subject};

/// This instance's room subscriptions.
pub struct Interest {
    client: async_nats::Client,
    hub: Arc<Hub>,
    /// room -> the task delivering its subscription (dropping the subscription unsubscribes).
    rooms: tokio::sync::Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// Chat messages and room notices received from NATS for the subscribed rooms.
    received: Arc<AtomicU64>,
}

/// The subjects of one room's chat: its messages and its room notices.
pub fn room_subjects(room: &str) -> [String; 2] {
    [
        subject::subject("chat", room, "message_posted"),
        subject::subject("notice", room, "published_to_room"),
    ]
}

impl Interest {
    /// No subscription yet; delivers to the sockets of `hub`.
    pub fn new(client: async_nats::Client, hub: Arc<Hub>) -> Self {
        Self {
            client,
            hub,
            rooms: tokio::sync::Mutex::new(HashMap::new()),
            received: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Subscribes to `room` unless this instance already is; returns once the NATS server has
    /// the subscription. Call after a socket joined the room in the hub.
    pub async fn join(&self, room: &str) -> Result<(), async_nats::Error> {
        let mut rooms = self.rooms.lock().await;
        if rooms.contains_key(room) {
            return Ok(());
        }
        let [chat, notices] = room_subjects(room);
        let chat = self.client.subscribe(chat).await?;
        let notices = self.client.subscribe(notices).await?;
        self.client.flush().await?;
        // A flush only writes the SUBs out. A request that nobody answers comes back ("no
        // responders") only once the server has read everything sent before it on this
        // connection, the SUBs included: then a message published after this returns is ours.
        // Best effort: the subscriptions stand whatever it answers.
        let sync = self
            .client
            .request(self.client.new_inbox(), bytes::Bytes::new());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), sync).await;
        let task = tokio::spawn(deliver_room(
            futures_util::stream::select(chat, notices),
            self.hub.clone(),
            self.received.clone(),
        ));
        rooms.insert(room.to_owned(), task);
        metrics::gauge!("onair_chat_room_subscriptions").set(rooms.len() as f64);
        Ok(())
    }

    /// Unsubscribes from `room` when no socket here is in it any more. Call after a socket left
    /// the room in the hub.
    pub async fn leave(&self, room: &str) {
        let mut rooms = self.rooms.lock().await;
        if self.hub.has_room(room) {
            return;
        }
        if let Some(task) = rooms.remove(room) {
            task.abort();
        }
        metrics::gauge!("onair_chat_room_subscriptions").set(rooms.len() as f64);
    }

    /// The rooms this instance is subscribed to.
    pub async fn rooms(&self) -> Vec<String> {
        self.rooms.lock().await.keys().cloned().collect()
    }

    /// Chat messages and room notices this instance received from NATS (for its rooms only).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Delivers one room's messages to its sockets here, until the subscription ends or the task is
/// aborted.
async fn deliver_room(
    mut messages: impl futures_util::Stream<Item = async_nats::Message> + Unpin,
    hub: Arc<Hub>,
    received: Arc<AtomicU64>,
) {
    while let Some(message) = messages.next().await {
        received.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("onair_chat_room_messages_received_total").increment(1);
        let Ok(envelope) = cloudevents::decode(message.headers.as_ref(), &message.payload, 0)
        else {
            continue;
        };
        if let Some(Delivery::Room { room, frame }) = delivery_of(&envelope) {
            hub.deliver(&room, &frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_subjects_are_those_its_events_are_published_on() {
        let room = "chatroomSystem-chatroom-A1-star@mabu.mabumaster";
        let posted = crate::events::Event::ChatMessagePosted(crate::events::ChatMessagePosted {
            room: room.into(),
            from: "s".into(),
            member_id: "m".into(),
            message: "{}".into(),
        });
        let notice =
            crate::events::Event::RoomNoticePublished(crate::events::RoomNoticePublished {
                room: room.into(),
                message: crate::events::ChatNotice::Follow {
                    streamer: "a".into(),
                    follower: "b".into(),
                },
            });
        assert_eq!(room_subjects(room), [posted.subject(), notice.subject()]);
    }
}
