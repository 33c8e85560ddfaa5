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

/// Whether `key` is 1 to [`MAX_KEY_BYTES`] visible ASCII characters.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The event id of `key` within `scope` (an API key id, a member id) and `route`; `None` without
/// a key.
pub fn event_id(
    scope: &str,
    route: &str,
    key: Option<&str>,
) -> Result<Option<Uuid>, InvalidIdempotencyKey> {
    let Some(key) = key else { return Ok(None) };
    if !is_valid_key(key) {
        return Err(InvalidIdempotencyKey);
    }
    Ok(Some(derived_event_id(&["idempotency", scope, route, key])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_scope_and_route_give_the_same_event_id_and_others_differ() {
        let id = event_id("m@a.b", "sendGift", Some("k-1")).unwrap();
        assert!(id.is_some());
        assert_eq!(id, event_id("m@a.b", "sendGift", Some("k-1")).unwrap());
        assert_ne!(id, event_id("n@a.b", "sendGift", Some("k-1")).unwrap());
        assert_ne!(id, event_id("m@a.b", "other", Some("k-1")).unwrap());
        assert_eq!(event_id("m@a.b", "sendGift", None), Ok(None));
    }

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key(&"k".repeat(255)));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key(&"k".repeat(256)));
        assert!(!is_valid_key("with space"));
        assert!(!is_valid_key("clé"));
        assert_eq!(event_id("s", "r", Some("")), Err(InvalidIdempotencyKey));
    }
}
