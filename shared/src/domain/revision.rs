//! Configuration revisions.

use serde::Serialize;

use super::{ParseError, deserialize_through_parse};
use crate::limits::REVISION_LIMIT;

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

    pub fn get(&self) -> i32 {
        self.0
    }
}

// Only JSON integers: 1.0 or "1" are refused.
deserialize_through_parse!(Revision, i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_integers_from_0_below_2_to_the_31() {
        for value in [0, 1, 2_147_483_647] {
            assert_eq!(Revision::parse(value).unwrap().get() as i64, value);
        }
        for value in [-1, 2_147_483_648, i64::MAX, i64::MIN] {
            assert!(Revision::parse(value).is_err(), "{value}");
        }
        assert!(serde_json::from_str::<Revision>("1.0").is_err());
        assert!(serde_json::from_str::<Revision>("\"1\"").is_err());
        assert!(serde_json::from_str::<Revision>("7").is_ok());
    }
}
