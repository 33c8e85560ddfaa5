//! The chat gateway's behaviour (issue 5): the verbs and actions of protocols/actionhero.md, the
//! seed's rules (verify, system codes, chat format, moderation), and delivery to this instance's
//! sockets of what every instance publishes.
//!
//! - Chat messages are `chat.message_posted` events on the room's subject; every instance
//!   subscribes (core NATS) to the chat and notice subjects and delivers to its own sockets.
//! - Moderation and maintenance are events too; every instance folds them (an ordered consumer
//!   from the start of the stream), so a ban issued anywhere closes the member's sockets and
//!   refuses their messages on every instance as soon as the event arrives (milliseconds).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::hub::{Hub, Outgoing, Socket};
use super::protocol::{self, Request};
use crate::domain::chat::{
    ModerationAction, RoomModeration, SayRefusal, Speaker, SystemCode, authorize_moderation,
    check_say,
};
use crate::domain::member::{MemberId, chatroom_streamer};
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::notice::Presence;
use crate::events::{
    ChatMessagePosted, ChatNotice, Event, EventEnvelope, MemberJoinedRoom, MemberLeftRoom,
    MemberModerated, RoomNoticePublished, cloudevents, subject,
};
use crate::records::member_auth::MemberTokens;

/// Settings of the chat gateway.
#[derive(Clone, Debug)]
pub struct ChatSettings {
    /// Primus heartbeat (protocols/actionhero.md §1.5: 30 s; clients give up after 1.5×).
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
        }
    }
}

/// `member_left_room` and its `leaveRoom` notice (id derived from the fact's). `fact_id` sets the
/// fact's id (derived ids make a repeated publish a duplicate); `None`: a fresh one.
pub fn leave_events(
    fact: MemberLeftRoom,
    nickname: String,
    now: OffsetDateTime,
    fact_id: Option<Uuid>,
) -> Vec<NewEvent> {
    let room = fact.room.clone();
    let member = fact.member_id.clone();
    let mut fact = NewEvent::new(now, Event::MemberLeftRoom(fact));
    if let Some(id) = fact_id {
        fact = fact.with_id(id);
    }
    let notice_id = crate::events::id::derived_event_id(&["leaveRoom", &fact.id.to_string()]);
    let notice = NewEvent::new(
        now,
        Event::RoomNoticePublished(RoomNoticePublished {
            room,
            message: ChatNotice::LeaveRoom { member, nickname },
        }),
    )
    .with_id(notice_id);
    vec![fact, notice]
}

/// The chat gateway of this instance.
pub struct ChatService {
    /// This instance's sockets and rooms.
    pub hub: Hub,
    store: EventStore,
    db: PgPool,
    tokens: MemberTokens,
    settings: ChatSettings,
    moderation: RwLock<HashMap<String, RoomModeration>>,
    maintenance: AtomicBool,
    instance_id: String,
}

/// Why a moderation command failed.
#[derive(Debug, thiserror::Error)]
pub enum ModerateError {
    /// The room is not a streamer's chat room, the target is not a member id, or `seconds`
    /// was given for an action other than mute.
    #[error("{0}")]
    Invalid(String),
    /// The actor may not do this, or the mute length is out of range.
    #[error(transparent)]
    Rule(#[from] crate::domain::chat::ModerationError),
    /// The `member_moderated` event was not stored.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl ChatService {
    /// A gateway with no sockets, no moderation state yet and a fresh instance id (UUID v4);
    /// [`start`](Self::start) begins its background work.
    pub fn new(
        store: EventStore,
        db: PgPool,
        tokens: MemberTokens,
        settings: ChatSettings,
    ) -> Self {
        Self {
            hub: Hub::default(),
            store,
            db,
            tokens,
            settings,
            moderation: RwLock::new(HashMap::new()),
            maintenance: AtomicBool::new(false),
            instance_id: Uuid::new_v4().to_string(),
        }
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Starts the background work: moderation follower, delivery, heartbeat, and the instance's
    /// presence announcements (`chat_instances`).
    pub fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(self.clone().follow_rules()),
            tokio::spawn(self.clone().deliver_messages()),
            tokio::spawn(self.clone().heartbeat()),
            tokio::spawn(self.clone().keep_announcing()),
        ]
    }

    /// A room's moderation state, as this instance knows it.
    pub fn room_moderation(&self, room: &str) -> RoomModeration {
        self.moderation
            .read()
            .expect("moderation")
            .get(room)
            .cloned()
            .unwrap_or_default()
    }

    fn system(&self, socket: &Socket, code: SystemCode) {
        self.hub.send_or_drop(
            socket,
            Outgoing::Text(protocol::system(code.code(), code.message())),
        );
    }

    fn reply(&self, socket: &Socket, frame: String) {
        self.hub.send_or_drop(socket, Outgoing::Text(frame));
    }

    /// Handles one request of a socket (called in arrival order, one at a time per socket).
    pub async fn handle(&self, socket: &Arc<Socket>, request: Request) {
        let id = request.message_id.clone();
        match request.event.as_deref() {
            Some("roomAdd") => self.room_add(socket, &request).await,
            Some("roomLeave") => self.room_leave(socket, &request).await,
            Some("roomView") => {
                let Some(room) = request.room.as_deref() else {
                    return self.reply(
                        socket,
                        protocol::verb_error(&id, "room is required", &request.rest),
                    );
                };
                let mut members: Map<String, Value> = self
                    .hub
                    .members(room)
                    .into_iter()
                    .map(|(sid, joined)| (sid.clone(), json!({"id": sid, "joinedAt": joined})))
                    .collect();
                // Verified members on the other instances, from the presence read model (their
                // unverified guests are known to their own instance only).
                match self.present_elsewhere(room).await {
                    Ok(rows) => {
                        for (connection, since) in rows {
                            members.entry(connection.clone()).or_insert_with(
                                || json!({"id": connection, "joinedAt": ms(since)}),
                            );
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "roomView lists this instance only"),
                }
                let count = members.len();
                self.reply(
                    socket,
                    protocol::verb_ok(
                        &id,
                        Some(json!({"room": room, "members": members, "membersCount": count})),
                    ),
                );
            }
            Some("detailsView") => {
                let data = json!({
                    "id": socket.id, "fingerprint": socket.fingerprint,
                    "remoteIP": socket.remote_ip, "remotePort": socket.remote_port,
                    "params": {}, "connectedAt": socket.connected_at, "rooms": socket.rooms(),
                    "totalActions": 0, "pendingActions": 0
                });
                self.reply(socket, protocol::verb_ok(&id, Some(data)));
            }
            Some("say") => self.say(socket, &request).await,
            Some("action") => self.action(socket, &request).await,
            Some("quit") | Some("exit") => {
                self.hub.send_or_drop(socket, Outgoing::CloseForGood);
            }
            other => {
                let verb = other.unwrap_or("undefined");
                self.reply(
                    socket,
                    protocol::verb_error(
                        &id,
                        &format!("verb not found or not allowed ({verb})"),
                        &request.rest,
                    ),
                );
            }
        }
    }

    async fn room_add(&self, socket: &Arc<Socket>, request: &Request) {
        let id = &request.message_id;
        let Some(room) = request.room.as_deref().filter(|r| !r.is_empty()) else {
            return self.reply(
                socket,
                protocol::verb_error(id, "room is required", &request.rest),
            );
        };
        if let Some(member) = socket.member_id()
            && self.room_moderation(room).banned.contains(&member)
        {
            self.system(socket, SystemCode::Banned);
            return self.reply(
                socket,
                protocol::verb_error(id, SystemCode::Banned.message(), &request.rest),
            );
        }
        if self.hub.join(socket, room, now_ms()) {
            self.reply(socket, protocol::verb_ok(id, Some(json!(true))));
        } else {
            self.reply(
                socket,
                protocol::verb_error(
                    id,
                    &format!("connection already in this room ({room})"),
                    &request.rest,
                ),
            );
        }
    }

    async fn room_leave(&self, socket: &Arc<Socket>, request: &Request) {
        let id = &request.message_id;
        let Some(room) = request.room.as_deref() else {
            return self.reply(
                socket,
                protocol::verb_error(id, "room is required", &request.rest),
            );
        };
        if self.hub.leave(socket, room) {
            self.reply(socket, protocol::verb_ok(id, Some(json!(true))));
            self.left(socket, room).await;
        } else {
            self.reply(
                socket,
                protocol::verb_error(
                    id,
                    &format!("connection not in this room ({room})"),
                    &request.rest,
                ),
            );
        }
    }

    /// A socket closed: its verified member leaves its rooms.
    pub async fn disconnected(&self, socket: &Arc<Socket>) {
        for room in self.hub.unregister(socket) {
            self.left(socket, &room).await;
        }
    }

    /// Publishes `member_left_room` and the `leaveRoom` notice for a verified member.
    async fn left(&self, socket: &Socket, room: &str) {
        let member = {
            let mut state = socket.state.lock().expect("state");
            if !state.announced.remove(room) {
                return;
            }
            state.member.clone()
        };
        let Some(member) = member else { return };
        let fact = MemberLeftRoom {
            room: room.to_owned(),
            member_id: member.member_id,
            connection_id: socket.id.clone(),
        };
        let events = leave_events(fact, member.nickname, OffsetDateTime::now_utc(), None);
        if let Err(e) = self.store.publish_all(events).await {
            tracing::warn!(error = %e, "leave not published");
        }
    }

    /// Whether `member` may say one more message now: `messages_per_minute` per member across
    /// all instances (the GCRA of src/rate_limit.rs, counted in Postgres). When Postgres does not
    /// answer the message is allowed and the failure logged.
    async fn may_say(&self, member: &str) -> bool {
        let bucket = crate::events::id::derived_event_id(&["chat-messages", member]);
        let limit = i32::try_from(self.settings.messages_per_minute).unwrap_or(i32::MAX);
        match crate::records::rate_limit::check(&self.db, bucket, limit).await {
            Ok(decision) => decision.allowed,
            Err(e) => {
                tracing::warn!(error = %e, "chat rate check failed; allowing the message");
                true
            }
        }
    }

    /// Connections of verified members present in `room` on other instances, with their join time.
    async fn present_elsewhere(
        &self,
        room: &str,
    ) -> Result<Vec<(String, OffsetDateTime)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT connection_id, since FROM rm_room_presence
             WHERE room = $1 AND instance_id IS DISTINCT FROM $2",
        )
        .bind(room)
        .bind(&self.instance_id)
        .fetch_all(&self.db)
        .await
    }

    /// This instance's id, carried by its `member_joined_room` events.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Records that this instance is alive (`chat_instances`); the presence reactor publishes the
    /// leaves of instances silent for longer than its timeout.
    pub async fn announce_instance(&self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO chat_instances (instance_id, last_seen) VALUES ($1, now())
             ON CONFLICT (instance_id) DO UPDATE SET last_seen = now()",
        )
        .bind(&self.instance_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Announces this instance every `interval`, until the task is dropped.
    async fn keep_announcing(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.settings.instance_timeout / 3);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.announce_instance().await {
                tracing::warn!(error = %e, "chat instance not announced; will retry");
            }
        }
    }

    async fn say(&self, socket: &Arc<Socket>, request: &Request) {
        let id = &request.message_id;
        let (Some(room), Some(message)) = (request.room.clone(), request.message_text()) else {
            return self.reply(
                socket,
                protocol::verb_error(id, "both room and message are required", &request.rest),
            );
        };
        if !socket.in_room(&room) {
            return self.reply(
                socket,
                protocol::verb_error(
                    id,
                    &format!("connection not in this room ({room})"),
                    &request.rest,
                ),
            );
        }
        let speaker = socket.state.lock().expect("state").member.clone();
        let streamer = chatroom_streamer(&room)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let now = OffsetDateTime::now_utc();
        let checked = check_say(
            speaker.as_ref(),
            &streamer,
            &self.room_moderation(&room),
            self.maintenance.load(Ordering::Relaxed),
            &message,
            self.settings.max_text_chars,
            now,
        );
        let chat = match checked {
            Ok(chat) => chat,
            Err(SayRefusal::System(code)) => {
                self.system(socket, code);
                return self.reply(
                    socket,
                    protocol::verb_error(id, code.message(), &request.rest),
                );
            }
            Err(SayRefusal::Invalid(reason)) => {
                return self.reply(socket, protocol::verb_error(id, &reason, &request.rest));
            }
        };
        if !self.may_say(&chat.member_id).await {
            self.system(socket, SystemCode::TooFast);
            return self.reply(
                socket,
                protocol::verb_error(id, SystemCode::TooFast.message(), &request.rest),
            );
        }
        let event = Event::ChatMessagePosted(ChatMessagePosted {
            room,
            from: socket.id.clone(),
            member_id: chat.member_id.clone(),
            message: serde_json::to_string(&chat).expect("chat serializes"),
        });
        match self.store.publish(NewEvent::new(now, event)).await {
            Ok(_) => self.reply(socket, protocol::verb_ok(id, None)),
            Err(e) => {
                tracing::warn!(error = %e, "chat message not stored");
                self.reply(
                    socket,
                    protocol::verb_error(
                        id,
                        "the message could not be stored; try again",
                        &request.rest,
                    ),
                );
            }
        }
    }

    async fn action(&self, socket: &Arc<Socket>, request: &Request) {
        let id = &request.message_id;
        let params = request.params();
        let name = params.get("action").and_then(Value::as_str).unwrap_or("");
        let result = match name {
            "verify" => self.verify(socket, &params).await,
            "chatHistory" => self.history(socket, &params).await,
            "ban" | "unban" | "mute" | "unmute" | "grantAdmin" | "revokeAdmin" => {
                self.moderate_action(socket, name, &params).await
            }
            _ => Err("unknown action or invalid apiVersion".to_owned()),
        };
        match result {
            Ok(map) => self.reply(socket, protocol::action_result(id, map)),
            Err(message) => self.reply(socket, protocol::action_error(id, &message)),
        }
    }

    fn required(params: &Map<String, Value>, name: &str) -> Result<String, String> {
        params
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("{name} is a required parameter for this action"))
    }

    /// `verify {memberID, chatroom, Authorization}`: binds the member to the socket.
    async fn verify(
        &self,
        socket: &Arc<Socket>,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let member_id = Self::required(params, "memberID")?;
        let room = Self::required(params, "chatroom")?;
        let token = Self::required(params, "Authorization")?;
        let claims = match self.tokens.verify_current(&self.db, Some(&token)).await {
            Ok(claims) if claims.sub == member_id => claims,
            _ => {
                self.system(socket, SystemCode::TokenInvalid);
                return Err(SystemCode::TokenInvalid.message().to_owned());
            }
        };
        if !socket.in_room(&room) {
            return Err(format!("connection not in this room ({room})"));
        }
        if let Some(current) = socket.member_id()
            && current != member_id
        {
            return Err(format!(
                "this connection is verified as {current}; open another connection for {member_id}"
            ));
        }
        let moderation = self.room_moderation(&room);
        if moderation.banned.contains(&member_id) {
            self.system(socket, SystemCode::Banned);
            return Err(SystemCode::Banned.message().to_owned());
        }
        let record = crate::commands::members::find(&self.db, &member_id)
            .await
            .map_err(|_| "the member could not be looked up; try again".to_owned())?
            .ok_or_else(|| SystemCode::TokenInvalid.message().to_owned())?;
        let speaker = Speaker {
            member_id: member_id.clone(),
            role: claims.role,
            nickname: record.nickname.clone(),
        };
        let first_in_room = {
            let mut state = socket.state.lock().expect("state");
            state.member = Some(speaker);
            state.announced.insert(room.clone())
        };
        if first_in_room {
            self.joined(socket, &room, &record, &moderation).await;
        }
        let mut answer = Map::new();
        answer.insert("verified".into(), json!(true));
        answer.insert("memberID".into(), json!(member_id));
        answer.insert("chatroom".into(), json!(room));
        Ok(answer)
    }

    /// Publishes `member_joined_room`, the `joinRoom` notice and, once per window, `welcome`.
    async fn joined(
        &self,
        socket: &Socket,
        room: &str,
        record: &crate::commands::members::MemberRecord,
        moderation: &RoomModeration,
    ) {
        let now = OffsetDateTime::now_utc();
        let streamer = chatroom_streamer(room);
        let following = match &streamer {
            Some(s) => {
                crate::read_models::rooms::is_following(&self.db, &record.member_id, s.as_str())
                    .await
                    .unwrap_or(false)
            }
            None => false,
        };
        let is_streamer =
            streamer.as_ref().map(MemberId::as_str) == Some(record.member_id.as_str());
        let presence = Presence {
            member: record.member_id.clone(),
            relationship: moderation.relationship(&record.member_id, following, now),
            nickname: record.nickname.clone(),
            account_id: record.account_id.clone(),
            avatar: record.avatar.clone(),
            equipment_bar: record.equipment_bar.clone(),
            vip: record.vip.clone(),
            role: if is_streamer { "streamer" } else { "member" }.to_owned(),
        };
        let fact = NewEvent::new(
            now,
            Event::MemberJoinedRoom(MemberJoinedRoom {
                room: room.to_owned(),
                member_id: record.member_id.clone(),
                connection_id: socket.id.clone(),
                instance_id: Some(self.instance_id.clone()),
            }),
        );
        let fact_id = fact.id.to_string();
        let mut events = vec![
            fact,
            NewEvent::new(
                now,
                Event::RoomNoticePublished(RoomNoticePublished {
                    room: room.to_owned(),
                    message: ChatNotice::JoinRoom(presence.clone()),
                }),
            )
            .with_id(crate::events::id::derived_event_id(&["joinRoom", &fact_id])),
        ];
        if self.welcome_due(room, &record.member_id).await {
            events.push(
                NewEvent::new(
                    now,
                    Event::RoomNoticePublished(RoomNoticePublished {
                        room: room.to_owned(),
                        message: ChatNotice::Welcome(presence),
                    }),
                )
                .with_id(crate::events::id::derived_event_id(&["welcome", &fact_id])),
            );
        }
        if let Err(e) = self.store.publish_all(events).await {
            tracing::warn!(error = %e, "join not published");
        }
    }

    /// Whether a `welcome` may be shown for `member` in `room` now (at most once per window, on
    /// every instance: the last time is kept in Postgres).
    async fn welcome_due(&self, room: &str, member: &str) -> bool {
        let window = self.settings.welcome_window.as_secs_f64();
        sqlx::query(
            "INSERT INTO chat_welcomes (room, member_id, shown_at) VALUES ($1, $2, now())
             ON CONFLICT (room, member_id) DO UPDATE SET shown_at = now()
             WHERE chat_welcomes.shown_at < now() - make_interval(secs => $3)",
        )
        .bind(room)
        .bind(member)
        .bind(window)
        .execute(&self.db)
        .await
        .map(|r| r.rows_affected() > 0)
        .unwrap_or(false)
    }

    /// `chatHistory {chatroom, limit?}`: the room's last messages (default 50, at most 100) from
    /// the stream, oldest first, as `say` payloads.
    async fn history(
        &self,
        socket: &Arc<Socket>,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let room = Self::required(params, "chatroom")?;
        if !socket.in_room(&room) {
            return Err(format!("connection not in this room ({room})"));
        }
        let limit = params
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(50)
            .clamp(1, 100) as usize;
        let messages = self
            .last_messages(&room, limit)
            .await
            .map_err(|e| format!("history unavailable: {e}"))?;
        let mut answer = Map::new();
        answer.insert("chatroom".into(), json!(room));
        answer.insert("messages".into(), Value::Array(messages));
        Ok(answer)
    }

    async fn last_messages(&self, room: &str, limit: usize) -> anyhow::Result<Vec<Value>> {
        let stream = self.store.stream().await?;
        let filter = subject::subject("chat", room, "message_posted");
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter,
                deliver_policy: DeliverPolicy::ByStartTime {
                    start_time: OffsetDateTime::now_utc() - time::Duration::hours(24),
                },
                ..Default::default()
            })
            .await?;
        let mut info = consumer.clone();
        let pending = info.info().await?.num_pending as usize;
        let mut out = std::collections::VecDeque::with_capacity(limit);
        if pending > 0 {
            let mut messages = consumer.messages().await?;
            let mut read = 0;
            while read < pending {
                let Ok(Some(Ok(m))) =
                    tokio::time::timeout(Duration::from_secs(2), messages.next()).await
                else {
                    break;
                };
                read += 1;
                if let Ok(e) = cloudevents::decode(m.headers.as_ref(), &m.payload, 0)
                    && let Event::ChatMessagePosted(p) = e.event
                {
                    if out.len() == limit {
                        out.pop_front();
                    }
                    out.push_back(json!({"message": p.message, "room": p.room, "from": p.from,
                                         "context": "user", "sentAt": ms(e.occurred_at)}));
                }
            }
        }
        Ok(out.into())
    }

    async fn moderate_action(
        &self,
        socket: &Arc<Socket>,
        name: &str,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let Some(actor) = socket.member_id() else {
            self.system(socket, SystemCode::NotLoggedIn);
            return Err(SystemCode::NotLoggedIn.message().to_owned());
        };
        let target = Self::required(params, "memberID")?;
        let room = Self::required(params, "chatroom")?;
        let action = parse_action(name).expect("known action");
        let seconds = params.get("seconds").and_then(Value::as_u64);
        let (until, _) = self
            .moderate(&actor, &room, &target, action, seconds)
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Map::new();
        answer.insert("moderated".into(), json!(true));
        answer.insert("action".into(), json!(name));
        answer.insert("memberID".into(), json!(target));
        answer.insert("chatroom".into(), json!(room));
        if let Some(until) = until {
            answer.insert(
                "until".into(),
                json!(crate::events::cloudevents::format_time(until)),
            );
        }
        Ok(answer)
    }

    /// Applies a moderation command of `actor` in `room` (chat actions and REST share it);
    /// returns the end of a timed mute and the event's stream sequence.
    pub async fn moderate(
        &self,
        actor: &str,
        room: &str,
        target: &str,
        action: ModerationAction,
        seconds: Option<u64>,
    ) -> Result<(Option<OffsetDateTime>, u64), ModerateError> {
        let streamer = chatroom_streamer(room).ok_or_else(|| {
            ModerateError::Invalid(format!("{room} is not a streamer's chat room"))
        })?;
        MemberId::parse(target, "memberID").map_err(|e| ModerateError::Invalid(e.to_string()))?;
        if seconds.is_some() && action != ModerationAction::Mute {
            return Err(ModerateError::Invalid(
                "seconds applies to mute only".into(),
            ));
        }
        authorize_moderation(
            &self.room_moderation(room),
            streamer.as_str(),
            actor,
            target,
            action,
            seconds,
        )?;
        let now = OffsetDateTime::now_utc();
        let until = seconds.map(|s| now + time::Duration::seconds(s as i64));
        let published = self
            .store
            .publish(NewEvent::new(
                now,
                Event::MemberModerated(MemberModerated {
                    room: room.to_owned(),
                    streamer: streamer.to_string(),
                    member_id: target.to_owned(),
                    action,
                    by: actor.to_owned(),
                    until,
                }),
            ))
            .await?;
        Ok((until, published.sequence))
    }

    /// Folds moderation and maintenance events from the start of the stream, and enforces bans
    /// on this instance's sockets.
    async fn follow_rules(self: Arc<Self>) {
        loop {
            if let Err(e) = self.follow_rules_once().await {
                tracing::warn!(error = %e, "chat rules follower stopped; restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow_rules_once(&self) -> anyhow::Result<()> {
        let stream = self.store.stream().await?;
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
        self.moderation.write().expect("moderation").clear();
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let Ok(envelope) = cloudevents::decode(message.headers.as_ref(), &message.payload, 0)
            else {
                continue;
            };
            self.apply_rule(&envelope);
        }
        anyhow::bail!("rules consumer ended")
    }

    fn apply_rule(&self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::MaintenanceModeSet(e) => self.maintenance.store(e.enabled, Ordering::Relaxed),
            Event::MemberModerated(e) => {
                {
                    let mut all = self.moderation.write().expect("moderation");
                    let room = all.entry(e.room.clone()).or_default();
                    let m = e.member_id.clone();
                    match e.action {
                        ModerationAction::Ban => {
                            room.banned.insert(m);
                        }
                        ModerationAction::Unban => {
                            room.banned.remove(&m);
                        }
                        ModerationAction::Mute => match e.until {
                            Some(until) => {
                                room.muted_until.insert(m, until);
                            }
                            None => {
                                room.muted.insert(m);
                            }
                        },
                        ModerationAction::Unmute => {
                            room.muted.remove(&m);
                            room.muted_until.remove(&m);
                        }
                        ModerationAction::GrantAdmin => {
                            room.admins.insert(m);
                        }
                        ModerationAction::RevokeAdmin => {
                            room.admins.remove(&m);
                        }
                    }
                }
                if e.action == ModerationAction::Ban {
                    for socket in self.hub.sockets_of_member(&e.member_id) {
                        if socket.in_room(&e.room) {
                            self.system(&socket, SystemCode::Banned);
                            self.hub.send_or_drop(&socket, Outgoing::CloseForGood);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Delivers chat messages and notices published by any instance to this instance's sockets.
    async fn deliver_messages(self: Arc<Self>) {
        loop {
            if let Err(e) = self.deliver_once().await {
                tracing::warn!(error = %e, "chat delivery stopped; restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn deliver_once(&self) -> anyhow::Result<()> {
        let client = self.store.client();
        let mut chat = client.subscribe("onair.chat.*.message_posted").await?;
        let mut notices = client
            .subscribe(crate::events::NOTICE_SUBJECT_FILTER)
            .await?;
        loop {
            let message = tokio::select! {
                m = chat.next() => m,
                m = notices.next() => m,
            };
            let Some(message) = message else {
                anyhow::bail!("subscription ended");
            };
            let Ok(envelope) = cloudevents::decode(message.headers.as_ref(), &message.payload, 0)
            else {
                continue;
            };
            self.deliver(envelope).await;
        }
    }

    async fn deliver(&self, envelope: EventEnvelope) {
        let sent_at = ms(envelope.occurred_at);
        match envelope.event {
            Event::ChatMessagePosted(e) => {
                let frame = protocol::say(&e.message, &e.room, &e.from, sent_at);
                self.hub.deliver(&e.room, &frame);
            }
            Event::RoomNoticePublished(e) => {
                let text = serde_json::to_string(&e.message).expect("notice serializes");
                self.hub
                    .deliver(&e.room, &protocol::say(&text, &e.room, "0", sent_at));
            }
            Event::AllRoomsNoticePublished(e) => {
                let text = serde_json::to_string(&e.message).expect("notice serializes");
                for room in self.hub.rooms() {
                    self.hub
                        .deliver(&room, &protocol::say(&text, &room, "0", sent_at));
                }
            }
            Event::FollowerNoticePublished(e) => {
                self.deliver_to_followers(&e.streamer, &e.message, sent_at)
                    .await
            }
            _ => {}
        }
    }

    /// `sub`: to every socket here whose verified member follows the streamer, in any room.
    async fn deliver_to_followers(&self, streamer: &str, message: &ChatNotice, sent_at: i64) {
        let sockets: Vec<Arc<Socket>> = self
            .hub
            .sockets()
            .into_iter()
            .filter(|s| s.member_id().is_some())
            .collect();
        if sockets.is_empty() {
            return;
        }
        let members: Vec<String> = sockets.iter().filter_map(|s| s.member_id()).collect();
        let followers: Vec<(String,)> = sqlx::query_as(
            "SELECT follower_id FROM rm_followers WHERE streamer_id = $1 AND follower_id = ANY($2)",
        )
        .bind(streamer)
        .bind(&members)
        .fetch_all(&self.db)
        .await
        .unwrap_or_default();
        let followers: std::collections::HashSet<String> =
            followers.into_iter().map(|f| f.0).collect();
        let text = serde_json::to_string(message).expect("notice serializes");
        let room = crate::domain::member::room_of(streamer).unwrap_or_default();
        for socket in sockets {
            if socket.member_id().is_some_and(|m| followers.contains(&m)) {
                self.hub.send_or_drop(
                    &socket,
                    Outgoing::Text(protocol::say(&text, &room, "0", sent_at)),
                );
            }
        }
    }

    /// Primus heartbeat: every interval, close the sockets that did not answer the last ping
    /// (without `server::close`, so they reconnect) and ping the others.
    async fn heartbeat(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.settings.ping_interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            for socket in self.hub.sockets() {
                let (alive, closing) = {
                    let mut state = socket.state.lock().expect("state");
                    let alive = std::mem::replace(&mut state.alive, false);
                    let closing = std::mem::replace(&mut state.closing, !alive);
                    (alive, closing)
                };
                if alive {
                    self.hub
                        .send_or_drop(&socket, Outgoing::Text(protocol::ping(now_ms())));
                } else if !closing {
                    tracing::info!(socket = %socket.id, "chat socket missed its heartbeat");
                    self.hub.send_or_drop(&socket, Outgoing::Close);
                } else if self.hub.drop_now(&socket) {
                    // The close did not get through either (a peer gone without a word, its
                    // writes stuck): drop it.
                    tracing::info!(socket = %socket.id, "chat socket dropped after two missed heartbeats");
                }
            }
        }
    }
}

/// The moderation action of a chat action or REST route name.
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
