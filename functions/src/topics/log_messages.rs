//! The `log-messages/+` function.

use sensorium_shared::domain::{Identifier, Timestamp};
use sensorium_shared::queries::logs::{NewLogMessage, create_log_messages};
use sqlx::PgPool;

use super::SensorTopic;
use super::elements::LogMessage;

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
