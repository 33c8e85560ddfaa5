//! The seed's success envelope: `{"success": true, "data": {...}}`.

use poem_openapi::Object;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use time::OffsetDateTime;

use crate::events::cloudevents::format_time;

/// `{"success": true, "data": T}`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Envelope<T: ParseFromJSON + ToJSON> {
    /// Always `true` (errors use the error body).
    pub success: bool,
    /// The answer itself.
    pub data: T,
}

impl<T: ParseFromJSON + ToJSON> Envelope<T> {
    /// A success answer carrying `data`.
    pub fn ok(data: T) -> Self {
        Self {
            success: true,
            data,
        }
    }
}

/// A time as the seed writes it: RFC 3339, UTC, milliseconds (`2025-10-19T12:00:00.000Z`).
pub fn timestamp(t: OffsetDateTime) -> String {
    format_time(t)
}
