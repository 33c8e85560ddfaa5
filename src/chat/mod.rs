//! The chat WebSocket that front ends reach with `ActionheroWebsocketClient`, unchanged
//! (docs/chat.md; invariant 5 of docs/design.md#invariants). An edge: it holds no SQL and builds no
//! event; the verbs call [`crate::commands::chat`], [`crate::commands::moderation`] and
//! [`crate::read_models`].
//!
//! - [`protocol`]: Primus framing and the actionhero frames (pure).
//! - [`hub`]: this instance's sockets and rooms, and the Primus heartbeat.
//! - [`verbs`], [`actions`]: a request in, a command or query called, frames out.
//! - [`rules`]: the moderation-rule follower (moderation and maintenance, in memory).
//! - [`sessions`]: a verified socket's session ends with its token (expiry, revocation).
//! - [`delivery`]: what any instance publishes, delivered to this instance's sockets.
//! - [`interest`]: a room's chat is subscribed to only while a socket here is in the room.
//! - [`presence`]: this instance's id, its announcements, the room presence of other instances.
//! - [`service`]: [`ChatService`], which ties them together and starts their background work.
//! - [`socket`]: the `/primus*` endpoint; [`upgrade`]: its WebSocket upgrade; [`queue`]: a
//!   socket's outgoing queue.
//! - [`client_script`]: our own ActionheroWebsocketClient-compatible script.

pub mod actions;
pub mod client_script;
pub mod delivery;
pub mod hub;
pub mod interest;
pub mod presence;
pub mod protocol;
pub mod queue;
pub mod rules;
pub mod service;
pub mod sessions;
pub mod socket;
pub mod upgrade;
pub mod verbs;

pub use service::{ChatService, ChatSettings};
