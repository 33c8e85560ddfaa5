//! Ids that come from clients.

use std::fmt;

/// Longest user id accepted: IVS caps a participant token's `userId` at 128 characters, and the
/// `viewer-` / `broadcaster-` prefix must still fit.
pub const MAX_USER_ID_CHARS: usize = 100;

/// A client's user id: 1 to [`MAX_USER_ID_CHARS`] characters, no control characters (they could not
/// travel in event headers). Any other Unicode, dots and spaces included, is fine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why an id was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty or only whitespace.
    #[error("{field} is required and must not be empty")]
    Empty {
        /// The request field, e.g. `userId`.
        field: &'static str,
    },
    /// Longer than [`MAX_USER_ID_CHARS`] characters.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The request field, e.g. `userId`.
        field: &'static str,
        /// The limit, in characters.
        max: usize,
    },
    /// Holds a control character.
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The request field, e.g. `userId`.
        field: &'static str,
    },
}

impl UserId {
    /// Checks a raw id; `field` names it in the error (`userId`).
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, IdError> {
        if raw.trim().is_empty() {
            return Err(IdError::Empty { field });
        }
        if raw.chars().count() > MAX_USER_ID_CHARS {
            return Err(IdError::TooLong {
                field,
                max: MAX_USER_ID_CHARS,
            });
        }
        if raw.chars().any(char::is_control) {
            return Err(IdError::ControlCharacter { field });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as the client sent it (without the `viewer-` / `broadcaster-` prefix).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dots_spaces_wildcards_and_unicode() {
        for id in [
            "viewer-001",
            "a.b",
            "a b",
            "*",
            ">",
            "觀眾小華",
            "x".repeat(100).as_str(),
        ] {
            assert_eq!(UserId::parse(id, "userId").unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_empty_blank_long_and_control_characters() {
        assert_eq!(
            UserId::parse("", "userId"),
            Err(IdError::Empty { field: "userId" })
        );
        assert_eq!(
            UserId::parse("   ", "userId"),
            Err(IdError::Empty { field: "userId" })
        );
        assert!(matches!(
            UserId::parse(&"x".repeat(101), "userId"),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            UserId::parse("a\nb", "userId"),
            Err(IdError::ControlCharacter { .. })
        ));
    }
}
