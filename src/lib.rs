//! onair: an event-sourced backend for live-streaming platforms.
//!
//! The Stage API (seeds/ivs-api.md) issues publisher and viewer tokens for Amazon IVS real-time
//! stages, keeps a self-scaling pool of stages, tracks viewers by heartbeat and serves live
//! statistics. The Room API (seeds/gateway-chat.md) gives members and streamers a login, rooms,
//! follows, gifts with live rankings, a back office and a chat WebSocket for the actionhero
//! client. Every fact is an event on NATS JetStream; projectors build the read models in
//! PostgreSQL, and the stream can be exported, imported, audited and replayed.
//!
//! # Layout
//! - [`domain`]: pure rules (stage pool seating and expiry, watch time, ids, members, rooms,
//!   gift rankings, popularity, chat rules, operator scopes); no I/O.
//! - [`events`]: the event types, CloudEvents headers, subject encoding, JSON Schemas.
//! - [`event_store`]: JetStream publishing with acks, de-duplication ids and sequence guards.
//! - [`pool_service`], [`room_service`]: the command side of the stage pool and of rooms/follows.
//! - [`projections`]: the projector runner and one module per read model.
//! - [`reactors`]: time-driven side effects (heartbeat expiry, scale-down, reconciler,
//!   popularity, chat presence).
//! - [`read_models`]: queries behind the GET routes.
//! - [`ivs`]: the stage provider port, ARNs and self-signed ES384 participant tokens.
//! - [`http`]: the poem-openapi routes (Stage API, client gateway, back office), errors, auth.
//! - [`chat`]: the chat WebSocket (Primus framing, actionhero verbs, fan-out through NATS).
//! - [`stats_socket`]: the live statistics WebSocket.
//! - [`api_keys`], [`members`], [`member_auth`], [`operators`], [`gift_catalog`]: operator
//!   records and credentials.
//! - [`rate_limit`]: rate limits (GCRA in Postgres, shared by every instance).
//! - [`event_tools`], [`audit`], [`replay`]: `onair events`, `onair audit`, `onair replay`.
//! - [`config`], [`metrics`], [`telemetry`], [`startup`], [`cli`]: settings, `/metrics`, logs,
//!   wiring, commands.

#![warn(missing_docs)]

pub mod app;
pub mod chat;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod event_store;
pub mod events;
pub mod http;
pub mod ivs;
pub mod ops;
pub mod projections;
pub mod reactors;
pub mod read_models;
pub mod records;
pub mod runtime;
pub mod stats_socket;
