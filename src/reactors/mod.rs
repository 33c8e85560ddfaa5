//! Reactors: side effects driven by events or time, kept apart from projectors
//! (docs/design.md#flow-of-data).

pub mod expiry;
pub mod outbox_relay;
pub mod popularity;
pub mod presence;
pub mod reconciler;
pub mod scale_down;
