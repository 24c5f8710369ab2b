//! The value types of the contract (docs/rest.md, "Conventions"), each parsed once at the
//! boundary so that handlers and queries only ever see valid values.

//! One module per type, its tests beside it.

mod access_token;
mod identifier;
mod names;
mod password;
mod revision;
mod severity;
mod timestamp;

pub use access_token::AccessToken;
pub use identifier::Identifier;
pub use names::{Attribute, NetworkName, SensorName, UserName};
pub use password::Password;
pub use revision::Revision;
pub use severity::Severity;
pub use timestamp::Timestamp;

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

/// Implements `Deserialize` through the type's `parse` from the JSON type `$raw`, so
/// a serde model that uses the type refuses invalid values while deserializing.
macro_rules! deserialize_through_parse {
    ($type:ty, $raw:ty) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <$raw as serde::Deserialize>::deserialize(deserializer)?;
                <$type>::parse(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
use deserialize_through_parse;
