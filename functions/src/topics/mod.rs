//! The topic functions: one per sensor topic, each taking SQS batches of bridge
//! envelopes. Each topic has one module (its element type, its rows, its statement);
//! what they share is apart: `payload` parses, `batch` decodes and stores. Per message: envelope, topic and payload checks, then element-by-element
//! validation; what can never be stored is logged and dropped. The rows of a whole
//! batch go to PostgreSQL in one statement. Only rows the database refuses for their
//! data are dropped; any other failure makes their messages fail, named in
//! `batchItemFailures` so that just those are retried (and dead-lettered in the end).

mod batch;
pub mod envelope;
mod heartbeats;
mod log_messages;
mod measurements;
mod payload;

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use sensorium_shared::domain::{Identifier, Timestamp};
use sqlx::PgPool;

use self::batch::handle_batch;
pub use self::heartbeats::Heartbeat;
pub use self::log_messages::LogMessage;
pub use self::measurements::Measurement;
pub use self::payload::{Element, PayloadError, parse_elements};

/// The sensor topics the server subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Measurements,
    Heartbeats,
    LogMessages,
}

impl Topic {
    pub const ALL: [Topic; 3] = [Topic::Measurements, Topic::Heartbeats, Topic::LogMessages];

    /// The first topic level; the second is the sensor identifier.
    pub fn prefix(self) -> &'static str {
        match self {
            Topic::Measurements => measurements::Measurements::PREFIX,
            Topic::Heartbeats => heartbeats::Heartbeats::PREFIX,
            Topic::LogMessages => log_messages::LogMessages::PREFIX,
        }
    }

    /// The subscription that receives this topic of every sensor.
    pub fn filter(self) -> String {
        format!("{}/+", self.prefix())
    }

    /// The topic of a message published to `topic`, by its first level.
    pub fn of(topic: &str) -> Option<Topic> {
        let prefix = topic.split('/').next()?;
        Topic::ALL
            .into_iter()
            .find(|known| known.prefix() == prefix)
    }

    /// Runs this topic's function on a batch.
    pub async fn handle(self, pool: &PgPool, event: LambdaEvent<SqsEvent>) -> SqsBatchResponse {
        match self {
            Topic::Measurements => handle_batch::<measurements::Measurements>(pool, event).await,
            Topic::Heartbeats => handle_batch::<heartbeats::Heartbeats>(pool, event).await,
            Topic::LogMessages => handle_batch::<log_messages::LogMessages>(pool, event).await,
        }
    }
}

/// What differs between the topic functions: the elements, the rows they become,
/// and the statement that stores a batch of rows.
trait SensorTopic {
    const PREFIX: &'static str;
    type Element: Element;
    type Row: Send + Sync;

    fn row(
        element: Self::Element,
        sensor_identifier: Identifier,
        receipt_timestamp: Timestamp,
        position: i32,
    ) -> Self::Row;

    fn store(
        pool: &PgPool,
        rows: &[Self::Row],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}
