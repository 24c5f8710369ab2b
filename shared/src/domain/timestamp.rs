//! Points in time as the contract writes them: seconds since the Unix epoch.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::{ParseError, deserialize_through_parse};
use crate::limits::TIMESTAMP_LIMIT;

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

deserialize_through_parse!(Timestamp, f64);

#[cfg(test)]
mod tests {
    use super::*;

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
}
