//! The topic functions: one per sensor topic, each taking SQS batches of bridge
//! envelopes. Per message: envelope, topic and payload checks, then element-by-element
//! validation; what can never be stored is logged and dropped. The rows of a whole
//! batch go to PostgreSQL in one statement. Only rows the database refuses for their
//! data are dropped; any other failure makes their messages fail, named in
//! `batchItemFailures` so that just those are retried (and dead-lettered in the end).

pub mod elements;
pub mod envelope;
mod heartbeats;
mod log_messages;
mod measurements;

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use sensorium_shared::domain::{Identifier, Timestamp};
use sensorium_shared::error::{ErrorChain, is_caused_by_data};
use sensorium_shared::queries::ingest::update_sensors_seen;
use sqlx::PgPool;

use self::elements::Element;

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

/// A message whose payload passed the checks: the rows of its good elements.
struct Decoded<R> {
    message_id: String,
    sensor_identifier: Identifier,
    receipt_timestamp: Timestamp,
    rows: Vec<R>,
    /// Each row's position in the message, for the logs.
    positions: Vec<usize>,
}

async fn handle_batch<T: SensorTopic>(
    pool: &PgPool,
    event: LambdaEvent<SqsEvent>,
) -> SqsBatchResponse {
    let decoded = event
        .payload
        .records
        .into_iter()
        .filter_map(decode::<T>)
        .filter(|message| !message.rows.is_empty())
        .collect();
    let failed = store_batch::<T>(pool, decoded).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|message_id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            failure
        })
        .collect();
    response
}

/// The message's id, sensor and rows, or `None` (logged) when nothing of it can be
/// stored.
fn decode<T: SensorTopic>(record: SqsMessage) -> Option<Decoded<T::Row>> {
    let message_id = record.message_id.unwrap_or_default();
    let envelope = match envelope::decode(record.body.as_deref().unwrap_or_default()) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::warn!(%message_id, %error, "dropped a queue message that is not an envelope");
            return None;
        }
    };
    let topic = envelope.topic.as_str();
    let sensor = match topic.split_once('/') {
        Some((prefix, sensor)) if prefix == T::PREFIX => sensor,
        _ => {
            tracing::warn!(%message_id, topic, "dropped a message of another topic");
            return None;
        }
    };
    let Ok(sensor_identifier) = Identifier::parse(sensor) else {
        tracing::warn!(
            %message_id,
            topic,
            sensor_identifier = sensor,
            "dropped a message: malformed sensor identifier"
        );
        return None;
    };
    let elements = match elements::parse_elements::<T::Element>(&envelope.payload) {
        Ok(elements) => elements,
        Err(error) => {
            tracing::warn!(
                %message_id,
                topic,
                %sensor_identifier,
                %error,
                "dropped a message: malformed payload"
            );
            return None;
        }
    };
    let mut rows = Vec::with_capacity(elements.len());
    let mut positions = Vec::with_capacity(elements.len());
    for (position, element) in elements.into_iter().enumerate() {
        match element {
            Ok(element) => {
                rows.push(T::row(
                    element,
                    sensor_identifier,
                    envelope.receipt_timestamp,
                    position as i32,
                ));
                positions.push(position);
            }
            Err(error) => tracing::warn!(
                %message_id,
                topic,
                %sensor_identifier,
                position,
                %error,
                "dropped a malformed element"
            ),
        }
    }
    Some(Decoded {
        message_id,
        sensor_identifier,
        receipt_timestamp: envelope.receipt_timestamp,
        rows,
        positions,
    })
}

/// Stores the rows of the decoded messages, those of unknown sensors dropped.
/// Returns the ids of the messages that failed and may succeed when retried.
async fn store_batch<T: SensorTopic>(pool: &PgPool, decoded: Vec<Decoded<T::Row>>) -> Vec<String> {
    if decoded.is_empty() {
        return Vec::new();
    }
    // Each sensor's newest receipt time in the batch: recording it is the same
    // statement that finds which sensors exist.
    let mut seen = HashMap::<Identifier, Timestamp>::new();
    for message in &decoded {
        let newest = seen
            .entry(message.sensor_identifier)
            .or_insert(message.receipt_timestamp);
        *newest = (*newest).max(message.receipt_timestamp);
    }
    let existing = match update_sensors_seen(pool, &seen).await {
        Ok(existing) => existing,
        Err(error) => {
            // Without knowing the sensors nothing can be stored; a database error
            // never drops a message, as that could lose good ones.
            tracing::error!(topic = T::PREFIX, error = %ErrorChain(&error), "reading the sensors failed");
            return decoded
                .into_iter()
                .map(|message| message.message_id)
                .collect();
        }
    };
    // One statement for the batch, with each message's rows remembered as a range,
    // and the rows of unknown sensors left out: the insert would fail on them.
    let mut rows = Vec::new();
    let mut positions = Vec::new();
    let mut messages = Vec::new();
    for message in decoded {
        if !existing.contains(&message.sensor_identifier) {
            tracing::warn!(
                message_id = %message.message_id,
                topic = T::PREFIX,
                sensor_identifier = %message.sensor_identifier,
                "dropped a message: unknown sensor"
            );
            continue;
        }
        let start = rows.len();
        rows.extend(message.rows);
        positions.extend(message.positions);
        messages.push(Share {
            message_id: message.message_id,
            sensor_identifier: message.sensor_identifier,
            range: start..rows.len(),
        });
    }
    if messages.is_empty() {
        return Vec::new();
    }
    let error = match T::store(pool, &rows).await {
        Ok(_) => return Vec::new(),
        Err(error) => error,
    };
    // Without a connection nothing can be stored, and the whole batch is retried.
    if !matches!(error, sqlx::Error::Database(_)) {
        tracing::warn!(
            topic = T::PREFIX,
            error = %ErrorChain(&error),
            messages = messages.len(),
            "storing a batch failed; its messages will be retried"
        );
        return messages.into_iter().map(|share| share.message_id).collect();
    }
    // An error the server raised may come from one message's rows: store the messages
    // one by one, so that one message that fails does not fail the others.
    let mut batch_error = if messages.len() == 1 {
        Some(error)
    } else {
        tracing::warn!(
            topic = T::PREFIX,
            error = %ErrorChain(&error),
            "storing a batch failed; storing its messages one by one"
        );
        None
    };
    let mut failed = Vec::new();
    for share in messages {
        let message_rows = &rows[share.range.clone()];
        let result = match batch_error.take() {
            // The batch was this one message.
            Some(error) => Err(error),
            None => T::store(pool, message_rows).await.map(drop),
        };
        let result = match result {
            Err(error) if is_caused_by_data(&error) => {
                store_accepted_rows::<T>(
                    pool,
                    &share,
                    message_rows,
                    &positions[share.range.clone()],
                    error,
                )
                .await
            }
            result => result,
        };
        if let Err(error) = result {
            tracing::warn!(
                message_id = %share.message_id,
                topic = T::PREFIX,
                sensor_identifier = %share.sensor_identifier,
                error = %ErrorChain(&error),
                "storing a message failed; it will be retried"
            );
            failed.push(share.message_id);
        }
    }
    failed
}

/// One message's part of a batch: its rows are `range` of the batch's rows.
struct Share {
    message_id: String,
    sensor_identifier: Identifier,
    range: Range<usize>,
}

/// Stores the rows of a message the database refused for its data (`refusal`), except
/// the rows it refuses, each dropped and logged. Halves are tried until each refused row
/// stands alone: a few statements find one bad row among hundreds. Any other error
/// ends this, and the message is retried: its rows stored by then are skipped as
/// duplicates when it comes again.
async fn store_accepted_rows<T: SensorTopic>(
    pool: &PgPool,
    share: &Share,
    rows: &[T::Row],
    positions: &[usize],
    refusal: sqlx::Error,
) -> Result<(), sqlx::Error> {
    let mut refused = vec![(0..rows.len(), refusal)];
    while let Some((range, error)) = refused.pop() {
        if range.len() == 1 {
            tracing::error!(
                message_id = %share.message_id,
                topic = T::PREFIX,
                sensor_identifier = %share.sensor_identifier,
                position = positions[range.start],
                error = %ErrorChain(&error),
                "dropped an element the database refuses"
            );
            continue;
        }
        let middle = range.start + range.len() / 2;
        for half in [middle..range.end, range.start..middle] {
            match T::store(pool, &rows[half.clone()]).await {
                Ok(_) => {}
                Err(error) if is_caused_by_data(&error) => refused.push((half, error)),
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}
