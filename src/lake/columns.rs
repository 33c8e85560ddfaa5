//! The columns of each event type's files, derived from the event's published JSON Schema (the
//! one `onair schemas` writes), and the rows an event gives. Pure: no I/O, no clock.
//!
//! # Rules
//! - Every file starts with the CloudEvents attributes: `id` (text), `time` (timestamp), `source`
//!   (text), `type` (text, the versioned event type) and `sequence` (the stream sequence, integer).
//! - Then one column per payload field, in the order of the published schema's properties
//!   (alphabetical), named in snake_case
//!   (`stageArn` → `stage_arn`, `giftID` → `gift_id`); a field named like a CloudEvents column is
//!   prefixed `data_` (`source` → `data_source`).
//! - Types: `string` with `format: date-time` → timestamp (UTC, microseconds); other strings,
//!   UUIDs and string enums → text; `integer` → 64-bit signed integer (a `uint64` above
//!   2^63 − 1 is written as 2^63 − 1); `boolean` → boolean; objects, maps and other nested values
//!   → their JSON text.
//! - An event whose payload is a batch (one array of objects, `heartbeats` of
//!   `onair.viewer.heartbeats_recorded.v1`) gives one row per element: the element's fields are
//!   the columns, the CloudEvents columns repeat, and `<field>_index` is the element's position
//!   (0-based).
//! - Payload columns may hold nulls (a field absent from the payload, or from an older version);
//!   the CloudEvents columns never do.

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A column's type in the Parquet file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text (`BYTE_ARRAY`, logical type `STRING`).
    Text,
    /// A 64-bit signed integer (`INT64`).
    Integer,
    /// A boolean (`BOOLEAN`).
    Boolean,
    /// An instant: microseconds since the Unix epoch (`INT64`, logical type
    /// `TIMESTAMP(isAdjustedToUTC = true, MICROS)`).
    Timestamp,
    /// A nested value as its JSON text (`BYTE_ARRAY`, logical type `STRING`).
    Json,
}

/// Where a column's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The CloudEvents `id`.
    Id,
    /// The CloudEvents `time` (`ce-time`).
    Time,
    /// The CloudEvents `source`.
    EventSource,
    /// The CloudEvents `type`.
    Type,
    /// The stream sequence.
    Sequence,
    /// A payload field (or, for a batch, a field of the element), by its JSON name.
    Field(String),
    /// The element's position in the batch.
    Index,
}

/// One column of an event type's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub column_type: ColumnType,
    /// Where its value comes from.
    pub source: Source,
    /// Whether it may hold nulls (every payload column may).
    pub nullable: bool,
}

/// The columns of one event type, and whether its rows are a batch's elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShape {
    /// The versioned event type, `onair.<context>.<event>.v<N>`.
    pub event_type: String,
    /// The columns, CloudEvents attributes first.
    pub columns: Vec<Column>,
    /// The batch field (its JSON name) whose elements are the rows, if the event is a batch.
    pub batch: Option<String>,
}

/// What a value in a row is (text borrowed from the event where it can be).
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    /// Absent or null.
    Null,
    /// Text or JSON text.
    Text(Cow<'a, str>),
    /// An integer, or a timestamp in microseconds since the Unix epoch.
    Integer(i64),
    /// A boolean.
    Boolean(bool),
}

/// The CloudEvents attributes of one stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct Attributes<'a> {
    /// `ce-id`.
    pub id: &'a str,
    /// `ce-time`, UTC.
    pub time: OffsetDateTime,
    /// `ce-source`.
    pub source: &'a str,
    /// The type written: the newest version of the event's type.
    pub event_type: &'a str,
    /// The stream sequence.
    pub sequence: u64,
}

/// The names of the CloudEvents columns, in file order.
pub const CLOUDEVENTS_COLUMNS: [&str; 5] = ["id", "time", "source", "type", "sequence"];

/// A schema the columns cannot be derived from.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    /// The schema's root is not an object with `properties`.
    #[error("{0}: the schema is not an object with properties")]
    NotAnObject(String),
    /// A `$ref` names no definition of the schema.
    #[error("{0}: unresolved reference {1}")]
    UnresolvedRef(String, String),
    /// Two fields give the same column name.
    #[error("{0}: two fields are both column {1}")]
    DuplicateColumn(String, String),
    /// A batch event has other fields besides its array.
    #[error("{0}: a batch must have its array as its only field")]
    MixedBatch(String),
}

/// `stageArn` → `stage_arn`, `giftID` → `gift_id`, `watchDurationSeconds` →
/// `watch_duration_seconds`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let previous = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Follows a `$ref` of `#/$defs/<name>` within `root`.
fn resolve<'a>(
    root: &'a Value,
    schema: &'a Value,
    event_type: &str,
) -> Result<&'a Value, ShapeError> {
    let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
        return Ok(schema);
    };
    reference
        .strip_prefix("#/$defs/")
        .and_then(|name| root.get("$defs")?.get(name))
        .ok_or_else(|| ShapeError::UnresolvedRef(event_type.to_owned(), reference.to_owned()))
}

/// The `type` of a schema without `null`: `"string"` for `["string", "null"]`.
fn json_type(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// Whether a schema is a string enumeration (`enum` of strings, or `oneOf` string constants).
fn is_string_enum(schema: &Value) -> bool {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().all(Value::is_string);
    }
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .is_some_and(|variants| {
            variants.iter().all(|v| {
                v.get("const").is_some_and(Value::is_string)
                    || v.get("enum")
                        .and_then(Value::as_array)
                        .is_some_and(|e| e.iter().all(Value::is_string))
            })
        })
}

/// The column type of one field's schema.
fn column_type(root: &Value, schema: &Value, event_type: &str) -> Result<ColumnType, ShapeError> {
    let schema = resolve(root, schema, event_type)?;
    Ok(match json_type(schema) {
        Some("string") if schema.get("format").and_then(Value::as_str) == Some("date-time") => {
            ColumnType::Timestamp
        }
        Some("string") => ColumnType::Text,
        Some("integer") => ColumnType::Integer,
        Some("boolean") => ColumnType::Boolean,
        None if is_string_enum(schema) => ColumnType::Text,
        _ => ColumnType::Json,
    })
}

/// The elements' schema of a field that is an array of objects with properties, if it is one.
fn object_items<'a>(
    root: &'a Value,
    schema: &'a Value,
    event_type: &str,
) -> Result<Option<&'a Value>, ShapeError> {
    let schema = resolve(root, schema, event_type)?;
    if json_type(schema) != Some("array") {
        return Ok(None);
    }
    let Some(items) = schema.get("items") else {
        return Ok(None);
    };
    let items = resolve(root, items, event_type)?;
    Ok(items.get("properties").is_some().then_some(items))
}

/// The payload columns of an object schema's properties, in their order.
fn field_columns(
    root: &Value,
    object: &Value,
    event_type: &str,
) -> Result<Vec<Column>, ShapeError> {
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return Err(ShapeError::NotAnObject(event_type.to_owned()));
    };
    let mut columns = Vec::with_capacity(properties.len());
    for (field, schema) in properties {
        let mut name = snake_case(field);
        if CLOUDEVENTS_COLUMNS.contains(&name.as_str()) {
            name = format!("data_{name}");
        }
        columns.push(Column {
            name,
            column_type: column_type(root, schema, event_type)?,
            source: Source::Field(field.clone()),
            nullable: true,
        });
    }
    Ok(columns)
}

impl TableShape {
    /// The columns of `event_type`'s files from its payload schema (draft 2020-12, as
    /// [`crate::events::schema::catalog`] gives it).
    ///
    /// Errors: the schema is not an object with properties, a `$ref` does not resolve, two
    /// fields map to one column name, or a batch has fields besides its array.
    pub fn derive(event_type: &str, schema: &Value) -> Result<Self, ShapeError> {
        let attribute = |name: &str, column_type, source| Column {
            name: name.to_owned(),
            column_type,
            source,
            nullable: false,
        };
        let mut columns = vec![
            attribute("id", ColumnType::Text, Source::Id),
            attribute("time", ColumnType::Timestamp, Source::Time),
            attribute("source", ColumnType::Text, Source::EventSource),
            attribute("type", ColumnType::Text, Source::Type),
            attribute("sequence", ColumnType::Integer, Source::Sequence),
        ];
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| ShapeError::NotAnObject(event_type.to_owned()))?;
        let mut batch = None;
        for (field, field_schema) in properties {
            if let Some(items) = object_items(schema, field_schema, event_type)? {
                if properties.len() != 1 {
                    return Err(ShapeError::MixedBatch(event_type.to_owned()));
                }
                columns.push(Column {
                    name: format!("{}_index", snake_case(field)),
                    column_type: ColumnType::Integer,
                    source: Source::Index,
                    nullable: false,
                });
                columns.extend(field_columns(schema, items, event_type)?);
                batch = Some(field.clone());
            }
        }
        if batch.is_none() {
            columns.extend(field_columns(schema, schema, event_type)?);
        }
        let mut names = std::collections::BTreeSet::new();
        for column in &columns {
            if !names.insert(column.name.as_str()) {
                return Err(ShapeError::DuplicateColumn(
                    event_type.to_owned(),
                    column.name.clone(),
                ));
            }
        }
        Ok(Self {
            event_type: event_type.to_owned(),
            columns,
            batch,
        })
    }

    /// The rows one event gives (one; a batch's: one per element, none for an empty batch), each
    /// a cell per column. `payload` is the event's data as JSON, in the newest version.
    pub fn rows<'a>(&self, attributes: &Attributes<'a>, payload: &'a Value) -> Vec<Vec<Cell<'a>>> {
        let Some(batch) = &self.batch else {
            return vec![self.row(attributes, payload.as_object(), 0)];
        };
        let elements = payload
            .get(batch)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        elements
            .iter()
            .enumerate()
            .map(|(index, element)| self.row(attributes, element.as_object(), index))
            .collect()
    }

    /// One row; a payload that is not an object gives nulls.
    fn row<'a>(
        &self,
        attributes: &Attributes<'a>,
        object: Option<&'a Map<String, Value>>,
        index: usize,
    ) -> Vec<Cell<'a>> {
        self.columns
            .iter()
            .map(|column| match &column.source {
                Source::Id => Cell::Text(Cow::Borrowed(attributes.id)),
                Source::Time => Cell::Integer(micros(attributes.time)),
                Source::EventSource => Cell::Text(Cow::Borrowed(attributes.source)),
                Source::Type => Cell::Text(Cow::Borrowed(attributes.event_type)),
                Source::Sequence => Cell::Integer(clamp(attributes.sequence)),
                Source::Index => Cell::Integer(index as i64),
                Source::Field(field) => cell(column.column_type, object.and_then(|o| o.get(field))),
            })
            .collect()
    }
}

/// Microseconds since the Unix epoch.
pub fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A field's value as a cell of `column_type` (null when absent, null or not of that type).
fn cell(column_type: ColumnType, value: Option<&Value>) -> Cell<'_> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Cell::Null;
    };
    match column_type {
        ColumnType::Text => match value {
            Value::String(s) => Cell::Text(Cow::Borrowed(s)),
            other => Cell::Text(Cow::Owned(other.to_string())),
        },
        ColumnType::Json => Cell::Text(Cow::Owned(value.to_string())),
        ColumnType::Integer => match (value.as_i64(), value.as_u64()) {
            (Some(n), _) => Cell::Integer(n),
            (None, Some(n)) => Cell::Integer(clamp(n)),
            _ => Cell::Null,
        },
        ColumnType::Boolean => value.as_bool().map_or(Cell::Null, Cell::Boolean),
        ColumnType::Timestamp => value
            .as_str()
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .map_or(Cell::Null, |t| Cell::Integer(micros(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::schema::catalog;
    use serde_json::json;
    use time::macros::datetime;

    fn shape(event_type: &str) -> TableShape {
        let entry = catalog()
            .into_iter()
            .find(|e| e.event_type == event_type)
            .unwrap();
        TableShape::derive(entry.event_type, &entry.schema).unwrap()
    }

    fn names(shape: &TableShape) -> Vec<&str> {
        shape.columns.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn names_are_snake_case() {
        assert_eq!(snake_case("stageArn"), "stage_arn");
        assert_eq!(snake_case("giftID"), "gift_id");
        assert_eq!(snake_case("accountID"), "account_id");
        assert_eq!(snake_case("watchDurationSeconds"), "watch_duration_seconds");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("room"), "room");
    }

    #[test]
    fn every_event_type_of_the_catalog_has_columns() {
        for entry in catalog() {
            let shape = TableShape::derive(entry.event_type, &entry.schema)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                &names(&shape)[..5],
                &CLOUDEVENTS_COLUMNS,
                "{}",
                entry.event_type
            );
            assert!(shape.columns.len() > 5, "{}", entry.event_type);
        }
    }

    #[test]
    fn fields_get_typed_columns() {
        let joined = shape("onair.viewer.joined.v1");
        let types: Vec<(&str, ColumnType)> = joined
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.column_type))
            .collect();
        assert!(types.contains(&("token_expires_at", ColumnType::Timestamp)));
        assert!(types.contains(&("attributes", ColumnType::Json)));
        assert!(types.contains(&("user_id", ColumnType::Text)));
        let gift = shape("onair.gift.sent.v2");
        let of = |name: &str| {
            gift.columns
                .iter()
                .find(|c| c.name == name)
                .unwrap()
                .column_type
        };
        assert_eq!(of("score"), ColumnType::Integer);
        assert_eq!(of("gift_id"), ColumnType::Integer);
        assert_eq!(of("session_id"), ColumnType::Text);
        let stage = shape("onair.stage.deleted.v1");
        let reason = stage.columns.iter().find(|c| c.name == "reason").unwrap();
        assert_eq!(reason.column_type, ColumnType::Text);
        let moderated = shape("onair.moderation.member_moderated.v1");
        let until = moderated
            .columns
            .iter()
            .find(|c| c.name == "until")
            .unwrap();
        assert_eq!(until.column_type, ColumnType::Timestamp);
        let notice = shape("onair.notice.published_to_room.v1");
        let message = notice.columns.iter().find(|c| c.name == "message").unwrap();
        assert_eq!(message.column_type, ColumnType::Json);
        // A field named like a CloudEvents attribute.
        assert!(names(&shape("onair.stream.started.v1")).contains(&"data_source"));
    }

    #[test]
    fn a_batch_gives_a_row_per_element() {
        let batch = shape("onair.viewer.heartbeats_recorded.v1");
        assert_eq!(
            names(&batch),
            [
                "id",
                "time",
                "source",
                "type",
                "sequence",
                "heartbeats_index",
                "at",
                "stage_arn",
                "user_id"
            ]
        );
        let attributes = Attributes {
            id: "0190",
            time: datetime!(2025-10-19 12:00:01.5 UTC),
            source: "/onair/stage-api",
            event_type: "onair.viewer.heartbeats_recorded.v1",
            sequence: 7,
        };
        let payload = json!({"heartbeats": [
            {"userId": "a", "stageArn": "s", "at": "2025-10-19T12:00:00.250Z"},
            {"userId": "b", "stageArn": "s", "at": "2025-10-19T12:00:01.500Z"},
        ]});
        let rows = batch.rows(&attributes, &payload);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][4], Cell::Integer(7));
        assert_eq!(rows[1][5], Cell::Integer(1));
        assert_eq!(rows[1][8], Cell::Text("b".into()));
        assert_eq!(
            rows[0][6],
            Cell::Integer(micros(datetime!(2025-10-19 12:00:00.25 UTC)))
        );
        assert_eq!(rows[0][1], Cell::Integer(1_760_875_201_500_000));
    }

    #[test]
    fn absent_fields_are_null_and_huge_integers_saturate() {
        let popularity = shape("onair.popularity.changed.v1");
        let attributes = Attributes {
            id: "x",
            time: datetime!(2025-10-19 12:00 UTC),
            source: "/onair",
            event_type: "onair.popularity.changed.v1",
            sequence: 1,
        };
        let payload = json!({"value": u64::MAX, "streamer": "s"});
        let row = &popularity.rows(&attributes, &payload)[0];
        let at = |name: &str| {
            let i = popularity
                .columns
                .iter()
                .position(|c| c.name == name)
                .unwrap();
            row[i].clone()
        };
        assert_eq!(at("value"), Cell::Integer(i64::MAX));
        assert_eq!(at("viewers"), Cell::Null);
        assert_eq!(at("streamer"), Cell::Text("s".into()));
    }
}
