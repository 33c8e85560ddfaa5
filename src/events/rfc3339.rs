//! The JSON Schema of the events' time fields.

use schemars::JsonSchema;

/// The JSON Schema of a time field: an RFC 3339 string in UTC (`"format": "date-time"`), so
/// consumers (and the analytics lake's columns, `src/lake/columns.rs`) tell times from text.
pub struct Rfc3339;

impl JsonSchema for Rfc3339 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rfc3339".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}
