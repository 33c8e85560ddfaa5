//! The `query` of a client action: a JSON object sent as text (docs/api.md#client-gateway:
//! `{ query: '{"giftID":1,...}', Authorization: '' }`). Fields are read one by one so that an error
//! names the field at fault: `query.giftID is required`, `query.giftCount must be a whole number`.

use serde_json::{Map, Value};

use super::api_error::ApiError;

/// A parsed `query`.
#[derive(Debug)]
pub struct ActionQuery(Map<String, Value>);

impl ActionQuery {
    /// Parses the `query` text: it must be a JSON object (`""` counts as `{}`).
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if raw.trim().is_empty() {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(other) => Err(ApiError::validation(format!(
                "query must be the text of a JSON object, found {}",
                kind(&other)
            ))),
            Err(e) => Err(ApiError::validation(format!(
                "query is not valid JSON: {e}"
            ))),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// A required string field (not empty).
    pub fn text(&self, field: &str) -> Result<String, ApiError> {
        self.optional_text(field)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::validation(format!("query.{field} is required")))
    }

    /// An optional string field (`null` or absent: `None`).
    pub fn optional_text(&self, field: &str) -> Result<Option<String>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::validation(format!(
                "query.{field} must be a string, found {}",
                kind(other)
            ))),
        }
    }

    /// A required whole number (a JSON number, or a string of digits as forms send).
    pub fn integer(&self, field: &str) -> Result<i64, ApiError> {
        self.optional_integer(field)?
            .ok_or_else(|| ApiError::validation(format!("query.{field} is required")))
    }

    /// An optional whole number (`null`, `""` or absent: `None`).
    pub fn optional_integer(&self, field: &str) -> Result<Option<i64>, ApiError> {
        let invalid = |found: &str| {
            ApiError::validation(format!(
                "query.{field} must be a whole number, found {found}"
            ))
        };
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(&n.to_string())),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| invalid(&format!("{s:?}"))),
            Some(other) => Err(invalid(kind(other))),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: ApiError) -> String {
        match e {
            ApiError::BadRequest(b) => b.0.message,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn fields_are_read_and_errors_name_them() {
        let q =
            ActionQuery::parse(r#"{"giftID": 1, "giftCount": "3", "memberID": "a@b.c"}"#).unwrap();
        assert_eq!(q.integer("giftID").unwrap(), 1);
        assert_eq!(q.integer("giftCount").unwrap(), 3);
        assert_eq!(q.text("memberID").unwrap(), "a@b.c");
        assert_eq!(
            message(q.text("gameID").unwrap_err()),
            "query.gameID is required"
        );
        assert_eq!(
            message(q.text("giftID").unwrap_err()),
            "query.giftID must be a string, found a number"
        );
        let q = ActionQuery::parse(r#"{"giftCount": 1.5}"#).unwrap();
        assert!(message(q.integer("giftCount").unwrap_err()).starts_with("query.giftCount"));
    }

    #[test]
    fn a_query_that_is_not_a_json_object_is_refused() {
        assert!(
            message(ActionQuery::parse("{giftID: 1").unwrap_err())
                .starts_with("query is not valid JSON")
        );
        assert!(message(ActionQuery::parse("[1]").unwrap_err()).contains("found an array"));
        assert!(ActionQuery::parse("").is_ok());
    }
}
