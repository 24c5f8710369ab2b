//! The `log-messages/+` topic: its element (subject and details cut to their
//! limits), its rows and their statement.

use sensorium_shared::domain::{Identifier, Revision, Severity, Timestamp};
use sensorium_shared::limits::{MAXIMUM_DETAILS_LENGTH, MAXIMUM_SUBJECT_LENGTH};
use sensorium_shared::queries::logs::{NewLogMessage, create_log_messages};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::PgPool;

use super::SensorTopic;
use super::payload::{Element, cut, deserialize};

/// A log message; `subject` and `details` are cut to their limits, and hold no U+0000.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogMessage {
    pub severity: Severity,
    pub timestamp: Timestamp,
    pub subject: String,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub revision: Option<Revision>,
}

impl Element for LogMessage {
    const KEY: &'static str = "log_messages";

    fn parse(element: &RawValue) -> Result<Self, String> {
        let mut log_message: Self = deserialize(element)?;
        // PostgreSQL cannot store it in text, and would refuse the whole batch.
        let holds_nul = |text: &str| text.contains('\0');
        if holds_nul(&log_message.subject) || log_message.details.as_deref().is_some_and(holds_nul)
        {
            return Err("subject or details hold U+0000".into());
        }
        cut(&mut log_message.subject, MAXIMUM_SUBJECT_LENGTH);
        if let Some(details) = &mut log_message.details {
            cut(details, MAXIMUM_DETAILS_LENGTH);
        }
        Ok(log_message)
    }
}

pub(super) struct LogMessages;

impl SensorTopic for LogMessages {
    const PREFIX: &'static str = "log-messages";
    type Element = LogMessage;
    type Row = NewLogMessage;

    fn row(
        element: LogMessage,
        sensor_identifier: Identifier,
        receipt_timestamp: Timestamp,
        position: i32,
    ) -> NewLogMessage {
        NewLogMessage {
            sensor_identifier,
            timestamp: element.timestamp,
            severity: element.severity,
            subject: element.subject,
            details: element.details,
            revision: element.revision,
            receipt_timestamp,
            position,
        }
    }

    async fn store(pool: &PgPool, rows: &[NewLogMessage]) -> Result<u64, sqlx::Error> {
        create_log_messages(pool, rows).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::topics::payload::tests::{accepted, parse};

    #[test]
    fn log_messages_are_cut_to_their_limits() {
        let subject = "ä".repeat(300);
        let details = "d".repeat(20000);
        let elements = parse::<LogMessage>(json!({"log_messages": [
            {"severity": "error", "timestamp": 1, "subject": subject, "details": details, "revision": 2},
            {"severity": "info", "timestamp": 1, "subject": "s"},
            {"severity": "warning", "timestamp": 1, "subject": "s", "details": null, "revision": null},
        ]}));
        let first = elements[0].as_ref().unwrap();
        assert_eq!(first.subject, "ä".repeat(256));
        assert_eq!(first.details.as_deref(), Some("d".repeat(16384).as_str()));
        assert!(elements[1].is_ok() && elements[2].is_ok());
        let refused = [
            json!({"severity": "fatal", "timestamp": 1, "subject": "s"}),
            json!({"severity": "ERROR", "timestamp": 1, "subject": "s"}),
            json!({"timestamp": 1, "subject": "s"}),
            json!({"severity": "info", "subject": "s"}),
            json!({"severity": "info", "timestamp": 1}),
            json!({"severity": "info", "timestamp": 1, "subject": 1}),
            json!({"severity": "info", "timestamp": 1, "subject": "s", "details": 1}),
            json!({"severity": "info", "timestamp": 1, "subject": "s", "revision": "1"}),
            json!({"severity": "info", "timestamp": 1, "subject": "s", "extra": true}),
        ];
        for element in refused {
            assert!(!accepted::<LogMessage>(element.clone()), "{element}");
        }
    }

    #[test]
    fn log_messages_holding_u0000_are_bad_elements() {
        let elements = parse::<LogMessage>(json!({"log_messages": [
            {"severity": "info", "timestamp": 1, "subject": "a\u{0}"},
            {"severity": "info", "timestamp": 1, "subject": "s", "details": "\u{0}"},
            // Beyond the length a subject is cut to, still refused.
            {"severity": "info", "timestamp": 1, "subject": format!("{}\u{0}", "s".repeat(300))},
            {"severity": "info", "timestamp": 1, "subject": "s", "details": "\\u0000"},
        ]}));
        assert!(elements[..3].iter().all(Result::is_err), "{elements:?}");
        assert!(elements[3].is_ok());
    }
}
