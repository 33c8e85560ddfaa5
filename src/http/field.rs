//! Request fields that are checked by the handler, not the framework, so that a missing or
//! wrongly-typed field is reported by name (`missing required parameter: userId`), which the
//! framework's own parse errors do not do. The OpenAPI schema is the inner type's.

use std::borrow::Cow;
use std::marker::PhantomData;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

use super::api_error::ApiError;
use super::error_text::parse_reason;

/// A JSON body field of type `T`, parsed leniently and checked with [`Checked::get`]; `R`
/// declares in the spec the rules the handler enforces on it (so a generated client knows them).
#[derive(Debug, Clone)]
pub struct Checked<T, R = Unruled>(Result<T, Problem>, PhantomData<fn() -> R>);

/// The rules of a [`Checked`] field, as the spec states them (the handler enforces them, with a
/// 400 naming the field).
pub trait FieldRule {
    /// Adds the rules to the field's schema.
    fn declare(schema: &mut MetaSchema);
}

/// No rule beyond the type.
#[derive(Debug, Clone)]
pub struct Unruled;

impl FieldRule for Unruled {
    fn declare(_: &mut MetaSchema) {}
}

/// A user id (`domain/user_id.rs`): 1 to 100 characters, not only whitespace, no control
/// characters.
#[derive(Debug, Clone)]
pub struct UserIdRule;

impl FieldRule for UserIdRule {
    fn declare(schema: &mut MetaSchema) {
        schema.min_length = Some(1);
        schema.max_length = Some(crate::domain::user_id::MAX_USER_ID_CHARS);
        schema.pattern = Some(USER_ID_PATTERN.to_owned());
    }
}

/// The pattern of [`UserIdRule`]: no control character, and one that is not whitespace.
pub const USER_ID_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// A stage name (IVS rule, `stage.rs`): 1 to 128 characters of `[a-zA-Z0-9-_]`.
#[derive(Debug, Clone)]
pub struct StageNameRule;

impl FieldRule for StageNameRule {
    fn declare(schema: &mut MetaSchema) {
        schema.min_length = Some(1);
        schema.max_length = Some(128);
        schema.pattern = Some("^[a-zA-Z0-9_-]+$".to_owned());
    }
}

/// Stage tags (`stage.rs`): at most 50, values up to 256 characters without control characters.
/// (Keys, 1 to 128 characters, cannot be stated in OpenAPI 3.0, which has no `propertyNames`.)
#[derive(Debug, Clone)]
pub struct TagsRule;

impl FieldRule for TagsRule {
    fn declare(schema: &mut MetaSchema) {
        schema.max_properties = Some(50);
        let mut value = MetaSchema::new("string");
        value.max_length = Some(256);
        value.pattern = Some(r"^[^\u0000-\u001f\u007f-\u009f]*$".to_owned());
        schema.additional_properties = Some(Box::new(MetaSchemaRef::Inline(Box::new(value))));
    }
}

/// An EventBridge event's `source`: `aws.ivs`, the only one onair takes.
#[derive(Debug, Clone)]
pub struct AwsIvsSourceRule;

impl FieldRule for AwsIvsSourceRule {
    fn declare(schema: &mut MetaSchema) {
        schema.enum_items = vec![Value::String("aws.ivs".to_owned())];
    }
}

/// A list that must hold at least one item (an EventBridge event's `resources`).
#[derive(Debug, Clone)]
pub struct NotEmptyRule;

impl FieldRule for NotEmptyRule {
    fn declare(schema: &mut MetaSchema) {
        schema.min_items = Some(1);
    }
}

/// A time in RFC 3339 (`format: date-time`).
#[derive(Debug, Clone)]
pub struct DateTimeRule;

impl FieldRule for DateTimeRule {
    fn declare(schema: &mut MetaSchema) {
        schema.format = Some("date-time");
        schema.nullable = true;
    }
}

/// An optional field that may also be `null` (taken as absent).
#[derive(Debug, Clone)]
pub struct NullableRule;

impl FieldRule for NullableRule {
    fn declare(schema: &mut MetaSchema) {
        schema.nullable = true;
    }
}

#[derive(Debug, Clone)]
enum Problem {
    Missing,
    Invalid(String),
}

impl<T, R> Checked<T, R> {
    /// The value, or 400 `VALIDATION_ERROR` naming `field`.
    pub fn get(self, field: &str) -> Result<T, ApiError> {
        match self.0 {
            Ok(value) => Ok(value),
            Err(Problem::Missing) => Err(ApiError::validation(format!(
                "missing required parameter: {field}"
            ))),
            Err(Problem::Invalid(reason)) => Err(ApiError::validation(format!(
                "invalid parameter {field}: {reason}"
            ))),
        }
    }
}

impl<T: Type, R: FieldRule + Send + Sync + 'static> Type for Checked<T, R> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        match T::schema_ref() {
            MetaSchemaRef::Inline(mut schema) => {
                R::declare(&mut schema);
                MetaSchemaRef::Inline(schema)
            }
            reference => reference,
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().ok().and_then(|v| v.as_raw_value())
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Ok(v) => v.raw_element_iter(),
            Err(_) => Box::new(std::iter::empty()),
        }
    }
}

impl<T: ParseFromJSON, R: FieldRule + Send + Sync + 'static> ParseFromJSON for Checked<T, R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let missing = matches!(value, None | Some(Value::Null));
        // The framework turns numbers and booleans into strings; a string field must be a string,
        // and so must every item of a list of strings.
        if matches!(&*T::name(), "string" | "optional_string")
            && let Some(v) = &value
            && !v.is_string()
            && !v.is_null()
        {
            return Ok(Self(
                Err(Problem::Invalid(format!("expected a string, found {v}"))),
                PhantomData,
            ));
        }
        if T::name() == "list_string"
            && let Some(Value::Array(items)) = &value
            && let Some(item) = items.iter().find(|item| !item.is_string())
        {
            return Ok(Self(
                Err(Problem::Invalid(format!(
                    "expected a list of strings, found {item}"
                ))),
                PhantomData,
            ));
        }
        let parsed = match T::parse_from_json(value) {
            Ok(v) => Ok(v),
            Err(_) if missing => Err(Problem::Missing),
            Err(e) => Err(Problem::Invalid(parse_reason(&e.into_message()))),
        };
        Ok(Self(parsed, PhantomData))
    }
}

impl<T: ToJSON, R: FieldRule + Send + Sync + 'static> ToJSON for Checked<T, R> {
    fn to_json(&self) -> Option<Value> {
        self.0.as_ref().ok().and_then(|v| v.to_json())
    }
}

/// A back-office field that forms send as a string or a number (the seed's getGiftRecord example
/// sends every value as a string, `page: ""`). `null`, absent and `""` all mean "not given".
/// Documented as a string.
#[derive(Debug, Clone, Default)]
pub struct Loose(Option<String>);

impl Loose {
    /// The value as text, if one was given.
    pub fn text(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The value as a whole number, or 400 `VALIDATION_ERROR` naming `field`.
    pub fn integer(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.text() {
            None => Ok(None),
            Some(raw) => raw.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::validation(format!(
                    "invalid parameter {field}: expected a whole number, found {raw:?}"
                ))
            }),
        }
    }
}

impl Type for Loose {
    const IS_REQUIRED: bool = false;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref()
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.0.iter())
    }
}

impl ParseFromJSON for Loose {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None | Some(Value::Null) => Ok(Self(None)),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(Self(None)),
            Some(Value::String(s)) => Ok(Self(Some(s))),
            Some(Value::Number(n)) => Ok(Self(Some(n.to_string()))),
            Some(other) => Err(poem_openapi::types::ParseError::custom(format!(
                "expected a string or a number, found {other}"
            ))),
        }
    }
}

impl ToJSON for Loose {
    fn to_json(&self) -> Option<Value> {
        self.0.clone().map(Value::String)
    }
}
