//! Deterministic event ids, for facts that several instances or retries may publish: the same
//! parts always give the same id, so JetStream's duplicate window (`Nats-Msg-Id`) stores the
//! event once.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A deterministic event id (UUID v8 from SHA-256 of the parts), for events that several instances
/// or retries may publish for the same fact. Each part is length-prefixed, so `["ab", "c"]` and
/// `["a", "bc"]` give different ids.
pub fn derived_event_id(parts: &[&str]) -> Uuid {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_parts_give_the_same_id_and_the_parts_are_length_prefixed() {
        assert_eq!(derived_event_id(&["a", "b"]), derived_event_id(&["a", "b"]));
        assert_ne!(
            derived_event_id(&["ab", "c"]),
            derived_event_id(&["a", "bc"])
        );
        assert_eq!(derived_event_id(&["x"]).get_version_num(), 8);
    }
}
