//! Identifiers of users, networks and sensors.

use std::fmt;

use serde::{Serialize, Serializer};

use super::{ParseError, deserialize_through_parse};

/// A UUID version 4 in lowercase hex, the identifier of users, networks and sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct Identifier(uuid::Uuid);

impl Identifier {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub fn parse(value: impl AsRef<str>) -> Result<Self, ParseError> {
        const ERROR: ParseError = ParseError::new("identifier", "not a lowercase UUID v4");
        let value = value.as_ref();
        // The canonical hyphenated form only: 36 characters, lowercase, version 4,
        // RFC 4122 variant. `Uuid::parse_str` alone would accept other spellings.
        let bytes = value.as_bytes();
        let well_formed = bytes.len() == 36
            && bytes.iter().enumerate().all(|(index, &byte)| match index {
                8 | 13 | 18 | 23 => byte == b'-',
                _ => byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte),
            })
            && bytes[14] == b'4'
            && matches!(bytes[19], b'8' | b'9' | b'a' | b'b');
        if !well_formed {
            return Err(ERROR);
        }
        uuid::Uuid::parse_str(value).map(Self).map_err(|_| ERROR)
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for Identifier {
    fn default() -> Self {
        Self::new()
    }
}

impl From<uuid::Uuid> for Identifier {
    fn from(value: uuid::Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(formatter)
    }
}

impl Serialize for Identifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

deserialize_through_parse!(Identifier, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_must_be_lowercase_uuid_version_4() {
        let valid = [
            "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c",
            "00000000-0000-4000-8000-000000000000",
            "ffffffff-ffff-4fff-bfff-ffffffffffff",
            "12345678-9abc-4def-9abc-def012345678",
            "12345678-9abc-4def-aabc-def012345678",
        ];
        for value in valid {
            let identifier = Identifier::parse(value).unwrap();
            assert_eq!(identifier.to_string(), value);
        }
        let invalid = [
            "",
            "A4AC4E7C-47E2-4C4A-8F1A-0B0E8E3A2B1C", // uppercase
            "a4ac4e7c-47e2-1c4a-8f1a-0b0e8e3a2b1c", // version 1
            "a4ac4e7c-47e2-4c4a-cf1a-0b0e8e3a2b1c", // variant c
            "a4ac4e7c-47e2-4c4a-7f1a-0b0e8e3a2b1c", // variant 7
            "a4ac4e7c47e24c4a8f1a0b0e8e3a2b1c",     // no hyphens
            "{a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c}", // braces
            "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1",  // too short
            "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1cd", // too long
            "g4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c", // not hex
            "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c ", // trailing space
            "urn:uuid:a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a", // urn form
        ];
        for value in invalid {
            assert!(Identifier::parse(value).is_err(), "{value:?} was accepted");
        }
    }

    #[test]
    fn generated_identifiers_parse() {
        for _ in 0..100 {
            let identifier = Identifier::new();
            assert_eq!(Identifier::parse(identifier.to_string()), Ok(identifier));
        }
    }
}
