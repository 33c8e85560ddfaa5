//! `Idempotency-Key`s (docs/api.md#idempotency): what a key may be, and the event id a key stands
//! for, so a retry with the same key stores its event once (JetStream's duplicate window) and is
//! known again later.

use uuid::Uuid;

use crate::events::id::derived_event_id;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// The key is not 1 to [`MAX_KEY_BYTES`] visible ASCII characters (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
pub struct InvalidIdempotencyKey;

/// The pattern the spec states for the `Idempotency-Key` header (docs/api.md#idempotency): visible
/// ASCII, then the optional whitespace a header value may end with (which HTTP strips before
/// [`IdempotencyKey::parse`] sees the key).
pub const KEY_PATTERN: &str = r"^[\x21-\x7E]+[ \t]*$";

/// Whether `key` is 1 to [`MAX_KEY_BYTES`] visible ASCII characters.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(|b| b.is_ascii_graphic())
}

/// An `Idempotency-Key` (docs/api.md#idempotency, the IETF draft "The Idempotency-Key HTTP
/// Header Field"): 1 to [`MAX_KEY_BYTES`] visible ASCII characters, checked once where the
/// header is read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `raw` when it is 1 to [`MAX_KEY_BYTES`] visible ASCII characters ([`is_valid_key`]).
    pub fn parse(raw: &str) -> Result<Self, InvalidIdempotencyKey> {
        if is_valid_key(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidIdempotencyKey)
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The event id of `key` within `scope` (an API key id, a member id) and `route`; `None` without
/// a key.
pub fn event_id(scope: &str, route: &str, key: Option<&IdempotencyKey>) -> Option<Uuid> {
    key.map(|key| derived_event_id(&["idempotency", scope, route, key.as_str()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_scope_and_route_give_the_same_event_id_and_others_differ() {
        let key = IdempotencyKey::parse("k-1").unwrap();
        let id = event_id("m@a.b", "sendGift", Some(&key));
        assert!(id.is_some());
        assert_eq!(id, event_id("m@a.b", "sendGift", Some(&key)));
        assert_ne!(id, event_id("n@a.b", "sendGift", Some(&key)));
        assert_ne!(id, event_id("m@a.b", "other", Some(&key)));
        assert_eq!(event_id("m@a.b", "sendGift", None), None);
    }

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key(&"k".repeat(255)));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key(&"k".repeat(256)));
        assert!(!is_valid_key("with space"));
        assert!(!is_valid_key("clé"));
    }

    #[test]
    fn an_idempotency_key_parses_visible_ascii_only() {
        for good in [
            "a",
            "k-1",
            "550e8400-e29b-41d4-a716-446655440000",
            &"k".repeat(255),
        ] {
            assert_eq!(IdempotencyKey::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", " ", "a b", "tab\t", "clé", "nul\0", &"k".repeat(256)] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(InvalidIdempotencyKey),
                "{bad:?}"
            );
        }
    }
}
