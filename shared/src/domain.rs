//! The value types of the contract (API.md's type table), each parsed once at the
//! boundary so that handlers and queries only ever see valid values.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::{
    MAXIMUM_NAME_LENGTH, MAXIMUM_PASSWORD_LENGTH, MINIMUM_PASSWORD_LENGTH, REVISION_LIMIT,
    TIMESTAMP_LIMIT,
};

/// Why a value was refused; the text is for logs, clients only see `Bad Request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct ParseError {
    pub kind: &'static str,
    pub reason: &'static str,
}

impl ParseError {
    const fn new(kind: &'static str, reason: &'static str) -> Self {
        Self { kind, reason }
    }
}

/// Implements `Deserialize` through the type's `parse`, so a serde model that uses
/// the type refuses invalid values while deserializing.
macro_rules! deserialize_through_parse {
    ($type:ty, $raw:ty) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <$raw>::deserialize(deserializer)?;
                <$type>::parse(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

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

/// Declares a name newtype: `^[a-z0-9](-?[a-z0-9])*$`, 1 to 64 characters.
macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                if is_joined_lowercase_word(&value, b'-') {
                    Ok(Self(value))
                } else {
                    Err(ParseError::new(
                        $kind,
                        "not 1 to 64 lowercase alphanumerics joined by single hyphens",
                    ))
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

name_type!(
    /// The unique name of a user.
    UserName,
    "user name"
);
name_type!(
    /// The unique name of a network.
    NetworkName,
    "network name"
);
name_type!(
    /// The name of a sensor, unique within its network.
    SensorName,
    "sensor name"
);

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

/// A configuration revision, `0 <= r < 2^31`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct Revision(i32);

impl Revision {
    pub fn parse(value: i64) -> Result<Self, ParseError> {
        if (0..REVISION_LIMIT).contains(&value) {
            Ok(Self(value as i32))
        } else {
            Err(ParseError::new("revision", "not an integer in [0, 2^31)"))
        }
    }

    /// Parses the decimal text of a query parameter.
    pub fn parse_text(value: &str) -> Result<Self, ParseError> {
        value
            .parse::<i64>()
            .map_err(|_| ParseError::new("revision", "not an integer"))
            .and_then(Self::parse)
    }

    pub fn get(&self) -> i32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Revision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Accepts only JSON integers: 1.0 or "1" are refused.
        let value = i64::deserialize(deserializer)?;
        Revision::parse(value).map_err(serde::de::Error::custom)
    }
}

/// A point in time: seconds since the Unix epoch as a JSON number, `0 <= t < 2^31`,
/// kept to the microsecond (PostgreSQL's `timestamptz` precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn parse(seconds: f64) -> Result<Self, ParseError> {
        const ERROR: ParseError = ParseError::new("timestamp", "not a number in [0, 2^31)");
        if !(seconds.is_finite() && (0.0..TIMESTAMP_LIMIT).contains(&seconds)) {
            return Err(ERROR);
        }
        let microseconds = (seconds * 1e6).round() as i64;
        DateTime::from_timestamp_micros(microseconds)
            .map(Self)
            .ok_or(ERROR)
    }

    /// Parses the decimal text of a query parameter.
    pub fn parse_text(value: &str) -> Result<Self, ParseError> {
        value
            .parse::<f64>()
            .map_err(|_| ParseError::new("timestamp", "not a number"))
            .and_then(Self::parse)
    }

    pub fn now() -> Self {
        // Truncated to what PostgreSQL stores, so a value read back compares equal.
        let microseconds = Utc::now().timestamp_micros();
        Self(DateTime::from_timestamp_micros(microseconds).expect("now is representable"))
    }

    pub fn from_datetime(value: DateTime<Utc>) -> Self {
        Self(value)
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    pub fn as_seconds(&self) -> f64 {
        self.0.timestamp_micros() as f64 / 1e6
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_seconds())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Timestamp::parse(seconds).map_err(serde::de::Error::custom)
    }
}

/// The key of one data point in a measurement: `^[a-z0-9](_?[a-z0-9])*$`, 1 to 64.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Attribute(String);

impl Attribute {
    pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
        let value = value.into();
        if is_joined_lowercase_word(&value, b'_') {
            Ok(Self(value))
        } else {
            Err(ParseError::new(
                "attribute",
                "not 1 to 64 lowercase alphanumerics joined by single underscores",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

deserialize_through_parse!(Attribute, String);

/// The severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "severity", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        match value {
            "info" => Ok(Self::Info),
            "warning" => Ok(Self::Warning),
            "error" => Ok(Self::Error),
            _ => Err(ParseError::new(
                "severity",
                "not one of info, warning, error",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

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

    #[test]
    fn revisions_are_integers_from_0_below_2_to_the_31() {
        for value in [0, 1, 2_147_483_647] {
            assert_eq!(Revision::parse(value).unwrap().get() as i64, value);
        }
        for value in [-1, 2_147_483_648, i64::MAX, i64::MIN] {
            assert!(Revision::parse(value).is_err(), "{value}");
        }
        assert!(Revision::parse_text("12").is_ok());
        for text in ["", "-1", "1.5", "x", "2147483648"] {
            assert!(Revision::parse_text(text).is_err(), "{text:?}");
        }
        assert!(serde_json::from_str::<Revision>("1.0").is_err());
        assert!(serde_json::from_str::<Revision>("\"1\"").is_err());
        assert!(serde_json::from_str::<Revision>("7").is_ok());
    }

    #[test]
    fn timestamps_are_seconds_from_0_below_2_to_the_31() {
        for value in [0.0, 1.5, 1_683_645_000.0, 2_147_483_647.999] {
            assert!(Timestamp::parse(value).is_ok(), "{value}");
        }
        for value in [
            -0.001,
            -1.0,
            2_147_483_648.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(Timestamp::parse(value).is_err(), "{value}");
        }
        assert!(Timestamp::parse_text("1683645000.5").is_ok());
        for text in ["", "x", "NaN", "-1", "inf"] {
            assert!(Timestamp::parse_text(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn timestamps_keep_microseconds() {
        let timestamp = Timestamp::parse(1_683_645_000.123_456).unwrap();
        assert_eq!(timestamp.as_datetime().timestamp_subsec_micros(), 123_456);
        assert_eq!(timestamp.as_seconds(), 1_683_645_000.123_456);
        assert_eq!(
            serde_json::to_string(&timestamp).unwrap(),
            "1683645000.123456"
        );
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

    #[test]
    fn severities_are_info_warning_or_error() {
        for value in ["info", "warning", "error"] {
            assert_eq!(Severity::parse(value).unwrap().as_str(), value);
        }
        for value in ["", "INFO", "debug", "critical", "warn"] {
            assert!(Severity::parse(value).is_err(), "{value:?}");
        }
        assert!(serde_json::from_str::<Severity>("\"warning\"").is_ok());
        assert!(serde_json::from_str::<Severity>("\"fatal\"").is_err());
    }

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
