//! The chat WebSocket that front ends reach with `ActionheroWebsocketClient`, unchanged (issue 5;
//! seeds/gateway-chat.md, protocols/actionhero.md, DESIGN.md §4.5).
//!
//! - [`protocol`]: Primus framing and the actionhero frames (pure).
//! - [`hub`]: this instance's sockets and rooms.
//! - [`service`]: verbs, actions, the seed's rules, moderation, delivery across instances.
//! - [`socket`]: the `/primus*` endpoint.
//! - [`client_script`]: our own ActionheroWebsocketClient-compatible script.

pub mod client_script;
pub mod hub;
pub mod protocol;
pub mod service;
pub mod socket;

pub use service::{ChatService, ChatSettings};
