//! Names: of users, networks and sensors (joined by hyphens), and of the
//! attributes of measurements (joined by underscores).

use std::fmt;

use serde::Serialize;

use super::{ParseError, deserialize_through_parse};
use crate::limits::MAXIMUM_NAME_LENGTH;

/// Whether `value` is 1 to 64 lowercase alphanumerics, optionally joined by single
/// `separator` characters that neither start nor end it.
fn is_joined_lowercase_word(value: &str, separator: u8) -> bool {
    let bytes = value.as_bytes();
    let alphanumeric = |byte: &u8| byte.is_ascii_digit() || byte.is_ascii_lowercase();
    !bytes.is_empty()
        && bytes.len() <= MAXIMUM_NAME_LENGTH
        && bytes.first().is_some_and(alphanumeric)
        && bytes.last().is_some_and(alphanumeric)
        && bytes
            .iter()
            .all(|byte| alphanumeric(byte) || *byte == separator)
        && !bytes
            .windows(2)
            .any(|pair| pair[0] == separator && pair[1] == separator)
}

/// Declares a name newtype: 1 to 64 lowercase alphanumerics, joined by single
/// `$separator` characters that neither start nor end it.
macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $separator:literal, $reason:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                if is_joined_lowercase_word(&value, $separator) {
                    Ok(Self(value))
                } else {
                    Err(ParseError::new($kind, $reason))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        deserialize_through_parse!($name, String);
    };
}

const HYPHENATED: &str = "not 1 to 64 lowercase alphanumerics joined by single hyphens";

name_type!(
    /// The unique name of a user.
    UserName,
    "user name",
    b'-',
    HYPHENATED
);
name_type!(
    /// The unique name of a network.
    NetworkName,
    "network name",
    b'-',
    HYPHENATED
);
name_type!(
    /// The name of a sensor, unique within its network.
    SensorName,
    "sensor name",
    b'-',
    HYPHENATED
);
name_type!(
    /// The key of one data point in a measurement: `^[a-z0-9](_?[a-z0-9])*$`.
    Attribute,
    "attribute",
    b'_',
    "not 1 to 64 lowercase alphanumerics joined by single underscores"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_alphanumerics_joined_by_single_hyphens() {
        let longest = "a".repeat(64);
        for value in ["a", "0", "sensor-1", "a-b-c", "abc123", longest.as_str()] {
            assert!(UserName::parse(value).is_ok(), "{value:?} was refused");
            assert!(NetworkName::parse(value).is_ok(), "{value:?} was refused");
            assert!(SensorName::parse(value).is_ok(), "{value:?} was refused");
        }
        let too_long = "a".repeat(65);
        for value in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a_b",
            "a b",
            "ä",
            too_long.as_str(),
            "sensor.1",
        ] {
            assert!(UserName::parse(value).is_err(), "{value:?} was accepted");
            assert!(NetworkName::parse(value).is_err(), "{value:?} was accepted");
            assert!(SensorName::parse(value).is_err(), "{value:?} was accepted");
        }
    }

    #[test]
    fn attributes_are_lowercase_alphanumerics_joined_by_single_underscores() {
        let longest = "a".repeat(64);
        for value in ["a", "temperature", "pm2_5", "a_b_c", "0", longest.as_str()] {
            assert!(Attribute::parse(value).is_ok(), "{value:?} was refused");
        }
        let too_long = "a".repeat(65);
        for value in [
            "",
            "_a",
            "a_",
            "a__b",
            "a-b",
            "Temperature",
            "a b",
            too_long.as_str(),
        ] {
            assert!(Attribute::parse(value).is_err(), "{value:?} was accepted");
        }
    }
}
