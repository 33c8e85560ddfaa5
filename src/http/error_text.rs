//! The texts of error answers (src/http/api_error.rs): a validation error's `details`, field
//! first as in the seed's example, and the framework's parse errors reworded to name the field.

/// The `details` of a validation error, field first as in the seed's example (`userId is
/// required`): `missing required parameter: F` gives `F is required`, `invalid parameter F:
/// why` gives `F is invalid: why`; a message that already leads with its field (`userId must
/// be at most 128 characters`, `query.page must be at least 1`) is kept as it is.
pub fn field_details(message: &str) -> String {
    if let Some(field) = message.strip_prefix("missing required parameter: ") {
        return format!("{field} is required");
    }
    if let Some(rest) = message.strip_prefix("invalid parameter ")
        && let Some((field, why)) = rest.split_once(": ")
    {
        return format!("{field} is invalid: {why}");
    }
    message.to_owned()
}

/// The reason of a typed value's refusal (src/http/values.rs) without poem-openapi's
/// `failed to parse "string": ` before it: `must be a stage ARN (...)`.
pub fn parse_reason(message: &str) -> String {
    message.replace(r#"failed to parse "string": "#, "")
}

/// Rewrites poem-openapi's parse errors so the message leads with the field at fault.
pub fn describe_parse_error(text: &str) -> String {
    let text = &parse_reason(text);
    // e.g. `parse request payload error: failed to parse "ViewerTokenRequest": field `userId` is required`
    if let Some(start) = text.find("field `") {
        let rest = &text[start + 7..];
        if let Some(end) = rest.find('`') {
            let field = &rest[..end];
            if text.contains("is required") || text.contains("missing") {
                return format!("missing required parameter: {field}");
            }
            return format!("invalid parameter {field}: {text}");
        }
    }
    let named = text
        .find("parameter `")
        .map(|start| start + 11)
        .or_else(|| text.find("path `").map(|start| start + 6));
    if let Some(start) = named {
        let rest = &text[start..];
        if let Some(end) = rest.find('`') {
            if text.contains("expects an input value") {
                return format!("missing required parameter: {}", &rest[..end]);
            }
            return format!("invalid parameter {}: {text}", &rest[..end]);
        }
    }
    format!("invalid request: {text}")
}
