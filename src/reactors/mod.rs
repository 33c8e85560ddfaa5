//! Reactors: side effects driven by events or time, kept apart from projectors (DESIGN.md §2).

pub mod expiry;
pub mod popularity;
pub mod reconciler;
pub mod scale_down;
