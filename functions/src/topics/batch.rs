//! What every topic function does with a batch: decode each message in a span of
//! its own (`message_id`, `topic`, `sensor_identifier`, on every line logged about
//! it), keep the rows of known sensors, store them in one statement, and fall back to
//! message by message, then row by row, when the database refuses some.

use std::collections::HashMap;
use std::ops::Range;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use sensorium_shared::domain::{Identifier, Timestamp};
use sensorium_shared::error::{ErrorChain, is_caused_by_data};
use sensorium_shared::queries::ingest::update_sensors_seen;
use sqlx::PgPool;
use tracing::Span;
use tracing::field::Empty;

use super::payload::parse_elements;
use super::{SensorTopic, envelope};

/// A message whose payload passed the checks: the rows of its good elements.
struct Decoded<R> {
    message_id: String,
    span: Span,
    sensor_identifier: Identifier,
    receipt_timestamp: Timestamp,
    rows: Vec<R>,
    /// Each row's position in the message, for the logs.
    positions: Vec<usize>,
}

pub(super) async fn handle_batch<T: SensorTopic>(
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

/// The span every line about one message is logged in. An error-level span, so that
/// it is enabled whenever a warning about the message is.
fn message_span(message_id: &str) -> Span {
    tracing::error_span!(
        "message",
        message_id,
        topic = Empty,
        sensor_identifier = Empty
    )
}

/// The message's sensor and rows, or `None` (logged) when nothing of it can be stored.
fn decode<T: SensorTopic>(record: SqsMessage) -> Option<Decoded<T::Row>> {
    let message_id = record.message_id.unwrap_or_default();
    let span = message_span(&message_id);
    let _entered = span.enter();
    let envelope = match envelope::decode(record.body.as_deref().unwrap_or_default()) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::warn!(%error, "dropped a queue message that is not an envelope");
            return None;
        }
    };
    span.record("topic", envelope.topic.as_str());
    let sensor = match envelope.topic.split_once('/') {
        Some((prefix, sensor)) if prefix == T::PREFIX => sensor,
        _ => {
            tracing::warn!("dropped a message of another topic");
            return None;
        }
    };
    span.record("sensor_identifier", sensor);
    let Ok(sensor_identifier) = Identifier::parse(sensor) else {
        tracing::warn!("dropped a message: malformed sensor identifier");
        return None;
    };
    let elements = match parse_elements::<T::Element>(&envelope.payload) {
        Ok(elements) => elements,
        Err(error) => {
            tracing::warn!(%error, "dropped a message: malformed payload");
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
            Err(error) => tracing::warn!(position, %error, "dropped a malformed element"),
        }
    }
    Some(Decoded {
        message_id,
        span: span.clone(),
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
            tracing::warn!(parent: &message.span, "dropped a message: unknown sensor");
            continue;
        }
        let start = rows.len();
        rows.extend(message.rows);
        positions.extend(message.positions);
        messages.push(Share {
            message_id: message.message_id,
            span: message.span,
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
                parent: &share.span,
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
    span: Span,
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
                parent: &share.span,
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
