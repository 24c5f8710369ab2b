//! Passwords as users send them, never shown.

use std::fmt;

use super::{ParseError, deserialize_through_parse};
use crate::limits::{MAXIMUM_PASSWORD_LENGTH, MINIMUM_PASSWORD_LENGTH};

/// A password of 8 to 256 characters. Never logged: `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        let length = value.chars().count();
        if (MINIMUM_PASSWORD_LENGTH..=MAXIMUM_PASSWORD_LENGTH).contains(&length) {
            Ok(Self(value))
        } else {
            Err(ParseError::new("password", "not 8 to 256 characters"))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Password(..)")
    }
}

deserialize_through_parse!(Password, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_8_to_256_characters() {
        for length in [8, 9, 100, 256] {
            assert!(Password::parse("x".repeat(length)).is_ok(), "{length}");
        }
        for length in [0, 1, 7, 257, 1000] {
            assert!(Password::parse("x".repeat(length)).is_err(), "{length}");
        }
        // Characters, not bytes: eight two-byte characters are enough.
        assert!(Password::parse("ä".repeat(8)).is_ok());
        assert!(Password::parse("ä".repeat(257)).is_err());
    }

    #[test]
    fn passwords_do_not_show_in_debug_output() {
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
