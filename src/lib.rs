//! onair: an event-sourced backend for live-streaming platforms.
//!
//! The Stage API (docs/api.md#the-stage-api) issues publisher and viewer tokens for Amazon IVS
//! real-time stages, keeps a self-scaling pool of stages, tracks viewers by heartbeat and serves
//! live statistics. The Room API (docs/api.md#the-room-api) gives members and streamers a login,
//! rooms, follows, gifts with live rankings, a back office and a chat WebSocket for the actionhero
//! client. Every fact is an event on NATS JetStream; projectors build the read models in
//! PostgreSQL, and the stream can be exported, imported, audited and replayed.
//!
//! # Layout
//! The folders are the architecture (ARCHITECTURE.md draws it and walks two requests through it).
//! Imports run down the layers: composition root -> edges -> commands / read models -> domain ->
//! events -> runtime (tests/api/architecture.rs checks it).
//! - [`server`]: the composition root: settings, startup and the roles' background tasks, and
//!   the routes, where the edges are mounted together. [`cli`]: the subcommands.
//! - Edges, which only translate: [`http`] (poem-openapi routes, one file per tag; every error
//!   mapped once; the live statistics WebSocket) and [`chat`] (the actionhero-compatible chat
//!   WebSocket). They hold no SQL, build no event and import no other edge. [`app`]: the state
//!   the REST handlers share.
//! - Write side: [`commands`], one module per aggregate or use case: load, decide with the
//!   domain, publish with the guard the invariant needs, return a typed result.
//! - Read side: [`projections`] (the runner and one module per read model, applied in batches
//!   with their checkpoint) and [`read_models`] (every query the edges need, and the stats feed).
//! - [`domain`]: pure rules (stage pool, watch time, ids, members, rooms, gifts and rankings,
//!   popularity, chat, operator scopes); no I/O, no clock.
//! - The stream: [`events`] (event types and the enums they carry, CloudEvents headers, subjects,
//!   ids, JSON Schemas; imports nothing else of the crate) and [`event_store`] (JetStream: acks,
//!   `Nats-Msg-Id`, sequence guards).
//! - [`reactors`]: side effects driven by time or events (expiry, scale-down, reconciler,
//!   popularity, chat presence).
//! - [`records`]: operator records kept in Postgres, not in the stream (API keys, operators,
//!   member token secret and versions, idempotency records, rate-limit buckets).
//! - [`ivs`]: the stage provider port, ARNs and self-signed ES384 participant tokens.
//! - [`lake`]: the stream as Parquet files for analysts (`onair lake`, role `lake`).
//! - [`ops`]: the operators' tools (`onair replay`, `onair audit`, `onair events`); [`bench`]:
//!   `onair bench`, the load generator.
//! - [`runtime`]: plumbing every layer may use: the injectable clock, supervised tasks,
//!   telemetry, metrics, memory, Postgres connections, the client address and the flood guards.

#![warn(missing_docs)]

pub mod app;
pub mod bench;
pub mod chat;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod event_store;
pub mod events;
pub mod http;
pub mod ivs;
pub mod lake;
pub mod ops;
pub mod projections;
pub mod reactors;
pub mod read_models;
pub mod records;
pub mod runtime;
pub mod server;
