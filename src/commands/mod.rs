//! The write side: one module per aggregate or use case. A command loads what it needs, asks the
//! pure [`crate::domain`] to decide, publishes the resulting events through the
//! [`crate::event_store`] with the guard its invariant needs, and returns a typed result. The
//! edges ([`crate::http`], [`crate::chat`]) only translate to and from these functions.

pub mod chat;
pub mod gift_catalog;
pub mod gifts;
pub mod ingest;
pub mod login;
pub mod maintenance;
pub mod members;
pub mod moderation;
pub mod pool;
pub mod publish;
pub mod room_info;
pub mod rooms;
