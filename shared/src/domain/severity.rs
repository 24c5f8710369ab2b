//! Severities of log messages.

use serde::{Deserialize, Serialize};

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
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_info_warning_or_error() {
        for value in ["info", "warning", "error"] {
            let severity: Severity = serde_json::from_value(value.into()).unwrap();
            assert_eq!(severity.as_str(), value);
        }
        for value in ["", "INFO", "debug", "critical", "warn", "fatal"] {
            let refused = serde_json::from_value::<Severity>(value.into());
            assert!(refused.is_err(), "{value:?}");
        }
    }
}
