//! The API's tags: one per area, each an `#[OpenApi]` struct in its own file.

use poem_openapi::Tags;

/// The API's tags.
#[derive(Tags)]
pub enum ApiTags {
    /// Service health.
    Health,
    /// Publisher and viewer participant tokens.
    Token,
    /// Stages of the pool: list, inspect, create, rename, delete.
    Stage,
    /// Viewer heartbeats, leaving, lists and watch durations.
    Viewer,
    /// Live statistics.
    Stats,
    /// Events from Amazon IVS (EventBridge).
    Ingest,
    /// Client gateway: member actions (login, rooms, follows, live status, gifts).
    Gateway,
    /// Back-office gateway: members, the gift catalog, gift records (operator `website` + `key`).
    BackOffice,
}
