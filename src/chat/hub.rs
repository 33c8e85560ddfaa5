//! This instance's sockets and their rooms. Nothing here is shared between instances: messages
//! reach other instances' sockets through NATS (src/chat/delivery.rs).
//!
//! Each socket has a bounded outgoing queue; a socket whose queue is full (a client that does not
//! read) is dropped and logged, so one slow client never holds up a room.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::protocol;
use super::queue::{Queue, Refused};
use crate::domain::chat::{Speaker, SystemCode, TokenSession};

/// What the writer of a socket is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Send one text frame.
    Text(String),
    /// Send one text frame encoded once for many sockets (a room's broadcast): every socket's
    /// queue holds the same bytes (reference-counted, never copied per socket).
    Shared(Utf8Bytes),
    /// Send `"primus::server::close"`, then close: the client does not reconnect.
    CloseForGood,
    /// Close without `server::close`: the client reconnects (a missed heartbeat).
    Close,
    /// Close with a WebSocket close code and reason (1008 flooding, 1009 message too big).
    CloseWith(u16, &'static str),
}

/// A socket's changing state.
#[derive(Debug, Default)]
pub struct SocketState {
    /// The rooms the socket joined (`roomAdd`).
    pub rooms: BTreeSet<String>,
    /// The member bound by `verify`.
    pub member: Option<Speaker>,
    /// The token `member` was verified with (set and cleared with it): when it expires and
    /// the token version it carries (src/chat/sessions.rs ends the session with the token).
    pub session: Option<TokenSession>,
    /// The rooms whose members were told this member joined (`joinRoom`), so only those hear
    /// `leaveRoom`.
    pub announced: BTreeSet<String>,
    /// Answered since the last ping (a pong, or the socket is new).
    pub alive: bool,
    /// Asked to close after a missed heartbeat; a second miss drops it outright.
    pub closing: bool,
}

/// One connected socket.
#[derive(Debug)]
pub struct Socket {
    /// A UUID v4: the `from` of what it says.
    pub id: String,
    /// The `sessionID` query value, else the id (docs/chat.md#connection-id-and-fingerprint).
    pub fingerprint: String,
    /// The client's IP address (src/runtime/client_addr.rs: behind a trusted proxy, the one it
    /// forwarded); `remoteIP` of `detailsView`.
    pub remote_ip: String,
    /// The client's TCP port (0 when not known, as for a forwarded client); `remotePort` of
    /// `detailsView`.
    pub remote_port: u16,
    /// Unix ms.
    pub connected_at: i64,
    /// Rooms, verified member and heartbeat flags.
    pub state: Mutex<SocketState>,
    /// What the writer sends next; a kill wakes the writer to close the socket at once (its queue
    /// may be full).
    pub queue: Queue<Outgoing>,
    /// Set when the socket was dropped as a slow consumer (it is closing).
    dropped: std::sync::atomic::AtomicBool,
}

impl Socket {
    /// Queues a frame; `false` when the queue is full or the socket is gone.
    pub fn send(&self, out: Outgoing) -> bool {
        self.queue.push(out).is_ok()
    }

    /// The member id bound by `verify`, if any.
    pub fn member_id(&self) -> Option<String> {
        self.state
            .lock()
            .expect("socket state")
            .member
            .as_ref()
            .map(|m| m.member_id.to_string())
    }

    /// The rooms the socket is in.
    pub fn rooms(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("socket state")
            .rooms
            .iter()
            .cloned()
            .collect()
    }

    /// Whether the socket is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.state
            .lock()
            .expect("socket state")
            .rooms
            .contains(room)
    }
}

/// A socket in a room: when it joined (Unix ms), and the socket (so a broadcast reaches the
/// room's sockets without a second lookup).
type Member = (i64, Arc<Socket>);

/// Sockets and room membership of this instance.
#[derive(Default)]
pub struct Hub {
    sockets: RwLock<HashMap<String, Arc<Socket>>>,
    /// room -> socket id -> (joined at, socket).
    rooms: RwLock<HashMap<String, HashMap<String, Member>>>,
    /// Sockets dropped as slow consumers since start (also `onair_chat_slow_consumers_dropped_total`).
    slow_dropped: std::sync::atomic::AtomicU64,
}

impl Hub {
    /// Registers a new socket; its [`Socket::queue`] feeds its writer.
    pub fn register(
        &self,
        id: String,
        fingerprint: String,
        remote_ip: String,
        remote_port: u16,
        connected_at: i64,
        queue: usize,
    ) -> Arc<Socket> {
        let socket = Arc::new(Socket {
            id: id.clone(),
            fingerprint,
            remote_ip,
            remote_port,
            connected_at,
            state: Mutex::new(SocketState {
                alive: true,
                ..Default::default()
            }),
            queue: Queue::new(queue),
            dropped: std::sync::atomic::AtomicBool::new(false),
        });
        self.sockets
            .write()
            .expect("sockets")
            .insert(id, socket.clone());
        socket
    }

    /// Removes a socket from every room; returns the rooms it was in.
    pub fn unregister(&self, socket: &Socket) -> Vec<String> {
        self.sockets.write().expect("sockets").remove(&socket.id);
        let rooms = socket.rooms();
        let mut map = self.rooms.write().expect("rooms");
        for room in &rooms {
            if let Some(members) = map.get_mut(room) {
                members.remove(&socket.id);
                if members.is_empty() {
                    map.remove(room);
                }
            }
        }
        rooms
    }

    /// Adds the socket to a room; `false` if it already is in it.
    pub fn join(&self, socket: &Arc<Socket>, room: &str, now_ms: i64) -> bool {
        if !socket
            .state
            .lock()
            .expect("socket state")
            .rooms
            .insert(room.to_owned())
        {
            return false;
        }
        self.rooms
            .write()
            .expect("rooms")
            .entry(room.to_owned())
            .or_default()
            .insert(socket.id.clone(), (now_ms, socket.clone()));
        true
    }

    /// Removes the socket from a room; `false` if it was not in it.
    pub fn leave(&self, socket: &Socket, room: &str) -> bool {
        if !socket
            .state
            .lock()
            .expect("socket state")
            .rooms
            .remove(room)
        {
            return false;
        }
        let mut map = self.rooms.write().expect("rooms");
        if let Some(members) = map.get_mut(room) {
            members.remove(&socket.id);
            if members.is_empty() {
                map.remove(room);
            }
        }
        true
    }

    /// This instance's members of a room: socket id -> joined at.
    pub fn members(&self, room: &str) -> BTreeMap<String, i64> {
        self.rooms
            .read()
            .expect("rooms")
            .get(room)
            .map(|members| {
                members
                    .iter()
                    .map(|(id, (joined, _))| (id.clone(), *joined))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether at least one socket here is in `room`.
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.read().expect("rooms").contains_key(room)
    }

    /// Every room with at least one socket here.
    pub fn rooms(&self) -> Vec<String> {
        self.rooms.read().expect("rooms").keys().cloned().collect()
    }

    /// A socket of this instance, by id.
    pub fn socket(&self, id: &str) -> Option<Arc<Socket>> {
        self.sockets.read().expect("sockets").get(id).cloned()
    }

    /// Every socket here.
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.sockets
            .read()
            .expect("sockets")
            .values()
            .cloned()
            .collect()
    }

    /// How many sockets are open here.
    pub fn len(&self) -> usize {
        self.sockets.read().expect("sockets").len()
    }

    /// Whether no socket is open here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends a frame to every socket in a room, the same bytes to each (encoded once); a socket
    /// whose queue is full is dropped. Returns how many sockets it was queued for.
    pub fn deliver(&self, room: &str, frame: &str) -> usize {
        let frame = Utf8Bytes::from(frame);
        let rooms = self.rooms.read().expect("rooms");
        let Some(members) = rooms.get(room) else {
            return 0;
        };
        let mut queued = 0;
        for (_, socket) in members.values() {
            // Never blocks: a full queue drops the socket (sets a flag, wakes its writer).
            match socket.queue.push(Outgoing::Shared(frame.clone())) {
                Ok(()) => queued += 1,
                Err(refused) => self.drop_refused(socket, refused),
            }
        }
        queued
    }

    /// Drops a socket whose queue refused a frame: a slow consumer when it was full.
    fn drop_refused(&self, socket: &Socket, refused: Refused) {
        if refused == Refused::Closed {
            // Its writer is gone (the socket is closing): not a slow consumer.
            self.drop_now(socket);
        } else if self.drop_now(socket) {
            self.slow_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("onair_chat_slow_consumers_dropped_total").increment(1);
            tracing::warn!(socket = %socket.id, "slow chat consumer dropped: its queue is full");
        }
    }

    /// Sockets dropped as slow consumers (their queue was full) since this hub started.
    pub fn slow_consumers_dropped(&self) -> u64 {
        self.slow_dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends to one socket; drops it when its queue is full (a slow consumer): the socket closes
    /// at once, and its member leaves its rooms as on any disconnect.
    pub fn send_or_drop(&self, socket: &Socket, out: Outgoing) {
        if let Err(refused) = socket.queue.push(out) {
            self.drop_refused(socket, refused);
        }
    }

    /// Sends one text frame (an answer) to a socket; see [`send_or_drop`](Self::send_or_drop).
    pub fn reply(&self, socket: &Socket, frame: String) {
        self.send_or_drop(socket, Outgoing::Text(frame));
    }

    /// Sends one of the seed's system messages to a socket.
    pub fn system(&self, socket: &Socket, code: SystemCode) {
        self.reply(socket, protocol::system(code.code(), code.message()));
    }

    /// One Primus heartbeat (run every ping interval): closes the sockets that did not answer the
    /// last ping (without `server::close`, so they reconnect), drops those that did not close
    /// since the previous beat either, and pings the others with `now_ms`.
    pub fn heartbeat(&self, now_ms: i64) {
        for socket in self.sockets() {
            let (alive, closing) = {
                let mut state = socket.state.lock().expect("state");
                let alive = std::mem::replace(&mut state.alive, false);
                let closing = std::mem::replace(&mut state.closing, !alive);
                (alive, closing)
            };
            if alive {
                self.send_or_drop(&socket, Outgoing::Text(protocol::ping(now_ms)));
            } else if !closing {
                tracing::info!(socket = %socket.id, "chat socket missed its heartbeat");
                self.send_or_drop(&socket, Outgoing::Close);
            } else if self.drop_now(&socket) {
                // The close did not get through either (a peer gone without a word, its
                // writes stuck): drop it.
                tracing::info!(socket = %socket.id, "chat socket dropped after two missed heartbeats");
            }
        }
    }

    /// Closes a socket at once, without a close frame, even while a write to it is blocked;
    /// `false` when it was already being dropped.
    pub fn drop_now(&self, socket: &Socket) -> bool {
        let first = !socket
            .dropped
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        if first {
            socket.queue.kill();
        }
        first
    }

    /// The sockets on which `member` is verified.
    pub fn sockets_of_member(&self, member: &str) -> Vec<Arc<Socket>> {
        self.sockets()
            .into_iter()
            .filter(|s| s.member_id().as_deref() == Some(member))
            .collect()
    }
}
