//! Subject tokens that no user id can break.
//!
//! NATS subjects are `.`-separated tokens; `*` and `>` are wildcards and white space ends a subject.
//! User ids arrive from clients and may hold any of those (docs/design.md#the-event-model), so
//! every id is encoded with [`encode_token`] before it becomes part of a subject.
//!
//! Encoding: an id made only of ASCII letters, digits, `_` and `-` (1 to 64 characters) stands as it is,
//! so subjects stay readable for the common case. Any other id becomes `~` followed by the unpadded
//! base64url of its UTF-8 bytes. `~` never occurs in a plain token, so the two forms cannot collide,
//! and [`decode_token`] reverses both.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Longest id kept as a plain token; longer ids are base64url-encoded like any other.
const MAX_PLAIN_LEN: usize = 64;

fn is_plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PLAIN_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Encodes an arbitrary id into one NATS subject token (never empty, never containing `.`, `*`, `>`
/// or white space).
pub fn encode_token(id: &str) -> String {
    if is_plain(id) {
        id.to_owned()
    } else {
        format!("~{}", URL_SAFE_NO_PAD.encode(id.as_bytes()))
    }
}

/// Reverses [`encode_token`]. Returns `None` for a token that no id encodes to.
pub fn decode_token(token: &str) -> Option<String> {
    match token.strip_prefix('~') {
        Some(encoded) => {
            let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
            let id = String::from_utf8(bytes).ok()?;
            (!is_plain(&id)).then_some(id)
        }
        None => is_plain(token).then(|| token.to_owned()),
    }
}

/// Builds `onair.<context>.<encoded aggregate id>.<event>`.
pub fn subject(context: &str, aggregate_id: &str, event: &str) -> String {
    format!("onair.{context}.{}.{event}", encode_token(aggregate_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid_token(token: &str) -> bool {
        !token.is_empty()
            && !token
                .chars()
                .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
    }

    #[test]
    fn plain_ids_stay_readable() {
        assert_eq!(encode_token("viewer-001"), "viewer-001");
        assert_eq!(decode_token("viewer-001").as_deref(), Some("viewer-001"));
    }

    #[test]
    fn ids_with_subject_syntax_round_trip_into_one_safe_token() {
        for id in [
            "a.b",
            "*",
            ">",
            "a b",
            "tab\there",
            "觀眾小華",
            "emoji 🎉.>",
            "",
            "~already-tilde",
            "x".repeat(65).as_str(),
            "user@agent.master",
        ] {
            let token = encode_token(id);
            assert!(is_valid_token(&token), "{id:?} gave {token:?}");
            assert_eq!(decode_token(&token).as_deref(), Some(id), "{id:?}");
        }
    }

    #[test]
    fn distinct_ids_never_share_a_token() {
        let ids = ["a-b", "~YS1i", "a.b", "a_b", "A-B"];
        let tokens: std::collections::HashSet<_> = ids.iter().map(|id| encode_token(id)).collect();
        assert_eq!(tokens.len(), ids.len());
    }

    #[test]
    fn a_non_canonical_token_is_refused() {
        // "abc" encoded as base64 would be a second spelling of a plain id.
        assert_eq!(decode_token("~YWJj"), None);
        assert_eq!(decode_token("a.b"), None);
    }

    #[test]
    fn subject_has_exactly_four_tokens() {
        let s = subject("viewer", "evil.>.*", "heartbeat_recorded");
        assert_eq!(s.split('.').count(), 4);
        assert!(s.starts_with("onair.viewer.~"));
    }
}
