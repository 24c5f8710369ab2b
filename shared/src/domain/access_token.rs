//! Access tokens of sessions: shown to their user once, stored as a hash.

use std::fmt;

use serde::{Serialize, Serializer};

use super::ParseError;

/// An access token: 32 random bytes as 64 lowercase hex characters. Only its
/// SHA-256 is stored. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(hex::encode(bytes))
    }

    pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        if value.len() == 64
            && value
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        {
            Ok(Self(value))
        } else {
            Err(ParseError::new(
                "access token",
                "not 64 lowercase hex characters",
            ))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the session table stores and looks up.
    pub fn hash(&self) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("AccessToken(..)")
    }
}

impl Serialize for AccessToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_are_64_lowercase_hex_characters() {
        let token = AccessToken::generate();
        assert_eq!(token.expose().len(), 64);
        assert_eq!(AccessToken::parse(token.expose()), Ok(token.clone()));
        assert_ne!(AccessToken::generate(), token);
        for value in [
            String::new(),
            "a".repeat(63),
            "a".repeat(65),
            "A".repeat(64),
            "g".repeat(64),
        ] {
            assert!(AccessToken::parse(value.clone()).is_err(), "{value:?}");
        }
    }

    #[test]
    fn access_tokens_are_hashed_with_sha256() {
        let token = AccessToken::parse("0".repeat(64)).unwrap();
        assert_eq!(token.hash().len(), 32);
        assert_ne!(token.hash(), token.expose().as_bytes());
        assert!(!format!("{token:?}").contains("0000"));
    }
}
