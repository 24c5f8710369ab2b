//! What the topic functions do before storing: find which sensors of a batch exist,
//! recording that each was seen. The measurement and log inserts fail on a sensor that
//! does not exist, so a batch is filtered first.

use std::collections::{HashMap, HashSet};

use sqlx::PgExecutor;

use crate::domain::{Identifier, Timestamp};

/// Sets each sensor's `last_seen_timestamp` to the receipt time given for it (unless a
/// later one is stored), and returns those of the sensors that exist.
///
/// Rows are locked in identifier order, so that batches of different topics naming the
/// same sensors in another order wait for each other instead of deadlocking.
pub async fn update_sensors_seen(
    executor: impl PgExecutor<'_>,
    seen: &HashMap<Identifier, Timestamp>,
) -> Result<HashSet<Identifier>, sqlx::Error> {
    let (sensor_identifiers, timestamps): (Vec<uuid::Uuid>, Vec<_>) = seen
        .iter()
        .map(|(sensor, timestamp)| (sensor.as_uuid(), timestamp.as_datetime()))
        .unzip();
    let existing = sqlx::query_scalar!(
        r#"
        WITH seen AS (
            SELECT identifier, seen.timestamp
            FROM unnest($1::uuid[], $2::timestamptz[]) AS seen (identifier, timestamp)
        ),
        locked AS MATERIALIZED (
            SELECT sensor.identifier
            FROM sensor
            WHERE sensor.identifier = ANY($1::uuid[])
            ORDER BY sensor.identifier
            FOR NO KEY UPDATE
        )
        UPDATE sensor
        SET last_seen_timestamp = greatest(sensor.last_seen_timestamp, seen.timestamp)
        FROM locked JOIN seen USING (identifier)
        WHERE sensor.identifier = locked.identifier
        RETURNING sensor.identifier
        "#,
        &sensor_identifiers,
        &timestamps,
    )
    .fetch_all(executor)
    .await?;
    Ok(existing.into_iter().map(Identifier::from).collect())
}
