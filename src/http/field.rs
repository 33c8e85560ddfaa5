//! Request fields that are checked by the handler, not the framework, so that a missing or
//! wrongly-typed field is reported by name (`missing required parameter: userId`), which the
//! framework's own parse errors do not do. The OpenAPI schema is the inner type's.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

use super::api_error::ApiError;

/// A JSON body field of type `T`, parsed leniently and checked with [`Checked::get`].
#[derive(Debug, Clone)]
pub struct Checked<T>(Result<T, Problem>);

#[derive(Debug, Clone)]
enum Problem {
    Missing,
    Invalid(String),
}

impl<T> Checked<T> {
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

impl<T: Type> Type for Checked<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
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

impl<T: ParseFromJSON> ParseFromJSON for Checked<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let missing = matches!(value, None | Some(Value::Null));
        // The framework turns numbers and booleans into strings; a string field must be a string.
        if T::name() == "string"
            && let Some(v) = &value
            && !v.is_string()
            && !v.is_null()
        {
            return Ok(Self(Err(Problem::Invalid(format!(
                "expected a string, found {v}"
            )))));
        }
        Ok(Self(match T::parse_from_json(value) {
            Ok(v) => Ok(v),
            Err(_) if missing => Err(Problem::Missing),
            Err(e) => Err(Problem::Invalid(e.into_message())),
        }))
    }
}

impl<T: ToJSON> ToJSON for Checked<T> {
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
