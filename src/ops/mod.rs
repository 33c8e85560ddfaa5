//! The operators' tools over the stream, each behind an `onair` subcommand and each reusing the
//! production code paths: `onair replay` (rebuild read models while serving), `onair audit`
//! (rebuild into a scratch schema and compare), `onair events` (tail, export, import).

pub mod audit;
pub mod events;
pub mod feed;
pub mod replay;
pub mod stream_range;
