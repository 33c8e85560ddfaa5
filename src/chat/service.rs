//! The chat gateway of this instance: [`ChatService`] ties together the parts of the chat edge
//! (its sockets, the moderation rules it follows, its presence) and starts their background work.
//! The verbs (src/chat/verbs.rs, src/chat/actions.rs) translate requests into the commands of
//! [`crate::commands::chat`] and [`crate::commands::moderation`].

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::delivery;
use super::hub::Hub;
use super::interest::Interest;
use super::presence::{self, PresenceStore};
use super::rules::{self, Rules};
use super::sessions::{self, Sessions};
use crate::commands::moderation::{self, Moderate, ModerateError};
use crate::domain::chat::{ModerationAction, RoomModeration};
use crate::domain::member::ChatroomName;
use crate::event_store::EventStore;
use crate::records::member_auth::MemberTokens;
use crate::runtime::clock::Clock;

/// Settings of the chat gateway.
#[derive(Clone, Debug)]
pub struct ChatSettings {
    /// Primus heartbeat (docs/chat.md#heartbeat: 30 s; clients give up after 1.5×); each beat
    /// also ends the sessions whose token expired, so an idle socket is told within one interval.
    pub ping_interval: Duration,
    /// Longest chat text, in characters.
    pub max_text_chars: usize,
    /// A member's `welcome` is shown at most once per room per this window.
    pub welcome_window: Duration,
    /// Chat messages a member may say per minute, across all instances (also the burst).
    pub messages_per_minute: u32,
    /// Frames queued per socket before it is dropped as a slow consumer.
    pub queue_size: usize,
    /// Where the compatible client script is served (its `.min.js` twin beside it).
    pub client_path: String,
    /// An instance silent this long is taken as gone: its members' leaves are published
    /// (src/reactors/presence.rs). Instances announce themselves every third of it.
    pub instance_timeout: Duration,
    /// The origin the client script connects to; empty: the page's own origin.
    pub client_url: String,
    /// Bytes of a socket's read buffer, allocated when it opens (the WebSocket library's default
    /// is 128 KiB; chat frames are small).
    pub read_buffer_bytes: usize,
    /// Bytes a socket's writer gathers before it writes them out (a flush writes sooner).
    pub write_buffer_bytes: usize,
    /// How long a socket's writer waits after its first due frame for more before it writes them
    /// together (a client write delay, as Centrifugo's): fewer `send`s per delivery, at the price
    /// of that much latency. Zero: every wakeup writes at once.
    pub write_delay: Duration,
    /// Says of one socket that may wait for their JetStream acks at once (answered in order).
    pub say_pipeline: usize,
    /// How the members' message rate is spent: in slices leased from the shared Postgres bucket
    /// (`ONAIR_RATE_LIMIT_*`; a slice of 1, as for the default limit, asks Postgres on every say).
    pub message_rate_lease: crate::records::rate_limit::LeaseSettings,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            max_text_chars: crate::domain::chat::DEFAULT_MAX_TEXT_CHARS,
            welcome_window: Duration::from_secs(600),
            messages_per_minute: 30,
            queue_size: 256,
            client_path: "/public/javascript/ActionheroWebsocketClient.js".into(),
            client_url: String::new(),
            instance_timeout: Duration::from_secs(45),
            read_buffer_bytes: 4096,
            write_buffer_bytes: 16 * 1024,
            write_delay: Duration::ZERO,
            say_pipeline: 32,
            message_rate_lease: crate::records::rate_limit::LeaseSettings::default(),
        }
    }
}

/// The chat gateway of this instance.
pub struct ChatService {
    /// This instance's sockets and rooms.
    pub hub: Arc<Hub>,
    /// This instance's room subscriptions (one per room with a socket here).
    pub interest: Arc<Interest>,
    pub(super) store: EventStore,
    pub(super) db: PgPool,
    pub(super) tokens: MemberTokens,
    /// The token sessions of this instance's sockets (src/chat/sessions.rs).
    pub(super) sessions: Arc<Sessions>,
    settings: ChatSettings,
    rules: Arc<Rules>,
    presence: Arc<PresenceStore>,
    clock: Clock,
    /// The members' message rate (`messages_per_minute`), leased from the shared bucket.
    pub(super) message_rate: Arc<crate::records::rate_limit::RateLimiter>,
}

impl ChatService {
    /// A gateway with no sockets, no moderation state yet and a fresh instance id (UUID v4),
    /// reading "now" from `clock`; [`start`](Self::start) begins its background work.
    pub fn new(
        store: EventStore,
        db: PgPool,
        tokens: MemberTokens,
        settings: ChatSettings,
        clock: Clock,
    ) -> Self {
        let hub = Arc::new(Hub::default());
        let message_rate = Arc::new(crate::records::rate_limit::RateLimiter::with_lease(
            true,
            settings.message_rate_lease,
        ));
        Self {
            message_rate,
            sessions: Arc::new(Sessions::new(hub.clone(), store.clone(), clock.clone())),
            interest: Arc::new(Interest::new(store.client().clone(), hub.clone())),
            hub,
            presence: Arc::new(PresenceStore::new(db.clone())),
            store,
            db,
            tokens,
            settings,
            rules: Arc::new(Rules::default()),
            clock,
        }
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// The clock it reads "now" from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Starts the background work: the moderation-rule follower, the member-edit follower that
    /// ends revoked sessions, delivery, the heartbeat (which also ends expired sessions), and the
    /// instance's presence announcements (every third of the instance timeout).
    pub fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(rules::follow(
                self.rules.clone(),
                self.store.clone(),
                self.hub.clone(),
            )),
            tokio::spawn(sessions::follow(self.sessions.clone())),
            tokio::spawn(delivery::run(
                self.store.clone(),
                self.db.clone(),
                self.hub.clone(),
            )),
            tokio::spawn(heartbeat(
                self.hub.clone(),
                self.sessions.clone(),
                self.settings.ping_interval,
                self.clock.clone(),
            )),
            tokio::spawn(presence::keep_announcing(
                self.presence.clone(),
                self.settings.instance_timeout / 3,
            )),
        ]
    }

    /// A room's moderation state, as this instance knows it.
    pub fn room_moderation(&self, room: &str) -> RoomModeration {
        self.rules.room(room)
    }

    /// Whether maintenance mode is on, as this instance knows it.
    pub fn maintenance(&self) -> bool {
        self.rules.maintenance()
    }

    /// This instance's presence store.
    pub fn presence(&self) -> &PresenceStore {
        &self.presence
    }

    /// This instance's id, carried by its `member_joined_room` events.
    pub fn instance_id(&self) -> &str {
        self.presence.instance_id()
    }

    /// Records that this instance is alive (`chat_instances`); the presence reactor publishes the
    /// leaves of instances silent for longer than its timeout.
    pub async fn announce_instance(&self) -> Result<(), sqlx::Error> {
        self.presence.announce().await
    }

    /// Applies a moderation command of `actor` in `room` with this instance's view of the room
    /// ([`moderation::moderate`]); returns the end of a timed mute and the event's stream
    /// sequence.
    pub async fn moderate(
        &self,
        actor: &str,
        room: &ChatroomName,
        target: &str,
        action: ModerationAction,
        seconds: Option<u64>,
    ) -> Result<(Option<OffsetDateTime>, u64), ModerateError> {
        let moderation = self.room_moderation(room.as_str());
        let done = moderation::moderate(
            &self.store,
            self.clock.now(),
            Moderate {
                actor,
                room,
                target,
                action,
                seconds,
                moderation: &moderation,
            },
        )
        .await?;
        Ok((done.until, done.sequence))
    }
}

/// Primus heartbeat: every `interval`, [`Hub::heartbeat`], then [`Sessions::sweep`] (the sessions
/// whose token expired end). Runs until the task is dropped.
async fn heartbeat(hub: Arc<Hub>, sessions: Arc<Sessions>, interval: Duration, clock: Clock) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        hub.heartbeat(clock.now_ms());
        sessions.sweep().await;
    }
}
