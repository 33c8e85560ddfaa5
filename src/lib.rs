//! onair: an event-sourced backend for live-streaming platforms.
//!
//! The Stage API (seeds/ivs-api.md) issues publisher and viewer tokens for Amazon IVS real-time
//! stages, keeps a self-scaling pool of stages, tracks viewers by heartbeat and serves live
//! statistics. Every fact is an event on NATS JetStream; projectors build the read models in
//! PostgreSQL.
//!
//! # Layout
//! - [`domain`]: pure rules (stage pool seating and expiry, watch time, ids); no I/O.
//! - [`events`]: the event types, CloudEvents headers, subject encoding.
//! - [`event_store`]: JetStream publishing with acks, de-duplication ids and sequence guards.
//! - [`pool_service`]: the stage pool's command side (follow, decide, publish).
//! - [`projections`]: the projector runner and one module per read model.
//! - [`reactors`]: time-driven side effects (heartbeat expiry).
//! - [`read_models`]: queries behind the GET routes.
//! - [`ivs`]: the stage provider port, ARNs and self-signed ES384 participant tokens.
//! - [`http`]: the poem-openapi routes, errors, API-key auth.
//! - [`api_keys`]: API key records.
//! - [`rate_limit`]: per-API-key rate limits (GCRA in Postgres, shared by every instance).
//! - [`config`], [`telemetry`], [`startup`], [`cli`]: settings, logs, wiring, commands.

pub mod api_keys;
pub mod audit;
pub mod chat;
pub mod cli;
pub mod config;
pub mod domain;
pub mod event_store;
pub mod event_tools;
pub mod events;
pub mod gift_catalog;
pub mod http;
pub mod ivs;
pub mod member_auth;
pub mod members;
pub mod metrics;
pub mod operators;
pub mod pool_service;
pub mod projections;
pub mod rate_limit;
pub mod reactors;
pub mod read_models;
pub mod replay;
pub mod room_service;
pub mod startup;
pub mod stats_socket;
pub mod telemetry;
