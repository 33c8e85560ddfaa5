//! The typed values of requests as the spec shows them: each is a string with its rule's
//! `pattern` and lengths, parsed by the rule's own type (`StageArn`, `IdempotencyKey`) when poem-openapi reads the path, query, header or body, so a handler gets the
//! checked value or the request a 400 `VALIDATION_ERROR` naming the field
//! (`error_text.rs` words it: `stageArn is invalid: ...`).

use std::borrow::Cow;

use poem::{Request, RequestBody};
use poem_openapi::error::ParsePathError;
use poem_openapi::registry::{MetaParamIn, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;

use crate::domain::idempotency::{self, IdempotencyKey};
use crate::ivs::arn::{STAGE_ARN_MAX_CHARS, STAGE_ARN_PATTERN, StageArn};

/// A string schema with a pattern and lengths.
fn string_schema(
    pattern: Option<&str>,
    min_length: Option<usize>,
    max_length: Option<usize>,
) -> MetaSchemaRef {
    let mut schema = MetaSchema::new("string");
    schema.max_length = max_length;
    schema.min_length = min_length;
    schema.pattern = pattern.map(str::to_owned);
    MetaSchemaRef::Inline(Box::new(schema))
}

/// Implements poem-openapi's `Type`, `ParseFromJSON`, `ParseFromParameter` and `ToJSON` for a
/// value parsed from text by `$parse` and shown by `as_str`, with the schema `$schema`.
macro_rules! text_value {
    ($ty:ty, $schema:expr, $parse:expr) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                $schema
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ParseFromParameter for $ty {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                $parse(value).map_err(ParseError::custom)
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(text)) => $parse(&text).map_err(ParseError::custom),
                    None | Some(Value::Null) => Err(ParseError::expected_input()),
                    Some(other) => Err(ParseError::expected_type(other)),
                }
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.as_str().to_owned()))
            }
        }
    };
}

text_value!(
    StageArn,
    string_schema(Some(STAGE_ARN_PATTERN), None, Some(STAGE_ARN_MAX_CHARS)),
    StageArn::parse
);

text_value!(
    IdempotencyKey,
    string_schema(
        Some(idempotency::KEY_PATTERN),
        Some(1),
        Some(idempotency::MAX_KEY_BYTES)
    ),
    IdempotencyKey::parse
);

/// A value that a route takes as a path segment, under the name the spec gives it.
pub trait PathField {
    /// The parameter's name in the spec (`{stageArn}`).
    const NAME: &'static str;
}

impl PathField for StageArn {
    const NAME: &'static str = "stageArn";
}

/// A path parameter parsed by its type's rule, like poem-openapi's `Path`, whose refusal names the
/// parameter as the spec does (`stageArn is invalid: ...`): poem-openapi's router knows path
/// parameters as `param0`, `param1`, ... only.
pub struct Path<T>(pub T);

impl<'a, T: ParseFromParameter + PathField> ApiExtractor<'a> for Path<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = T::IS_REQUIRED;

    type ParamType = T;
    type ParamRawType = T::RawValueType;

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Path)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(T::schema_ref())
    }

    fn param_raw_type(&self) -> Option<&Self::ParamRawType> {
        self.0.as_raw_value()
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        T::parse_from_parameters(request.raw_path_param(param_opts.name))
            .map(Self)
            .map_err(|err| {
                ParsePathError {
                    name: T::NAME,
                    reason: err.into_message(),
                }
                .into()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_arn_parameter_is_checked_by_its_rule() {
        let raw = "arn:aws:ivs:us-east-1:1:stage/a";
        assert_eq!(StageArn::parse_from_parameter(raw).unwrap().as_str(), raw);
        let refused = StageArn::parse_from_parameter("x").unwrap_err();
        let reason = crate::http::error_text::parse_reason(&refused.into_message());
        assert!(reason.starts_with("must be a stage ARN"), "{reason}");
        assert!(StageArn::parse_from_json(Some(Value::from(1))).is_err());
        assert!(StageArn::parse_from_json(None).is_err());
    }

    #[test]
    fn the_spec_states_the_rules_the_types_check() {
        let MetaSchemaRef::Inline(arn) = StageArn::schema_ref() else {
            panic!("inline")
        };
        assert_eq!(arn.pattern.as_deref(), Some(STAGE_ARN_PATTERN));
        assert_eq!(arn.max_length, Some(128));
        let MetaSchemaRef::Inline(key) = IdempotencyKey::schema_ref() else {
            panic!("inline")
        };
        assert_eq!((key.min_length, key.max_length), (Some(1), Some(255)));
        assert!(IdempotencyKey::parse_from_parameter("a b").is_err());
    }
}
