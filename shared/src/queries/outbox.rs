//! The configuration outbox: which configurations still wait for the broker, marking
//! them published, and the sensors' acknowledgements (heartbeats) of them.

use sqlx::PgExecutor;

use crate::domain::{Identifier, Revision, Timestamp};

/// A sensor's newest configuration, not yet published.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UnpublishedConfiguration {
    pub sensor_identifier: Identifier,
    pub revision: Revision,
    pub value: serde_json::Value,
}

/// Per sensor, its newest configuration if that one is unpublished. An older
/// unpublished one is superseded and never sent: publishing it (retained) would
/// replace the newer configuration on the broker.
pub async fn read_unpublished_configurations(
    executor: impl PgExecutor<'_>,
) -> Result<Vec<UnpublishedConfiguration>, sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT sensor_identifier, revision, value
        FROM configuration AS unpublished
        WHERE publication_timestamp IS NULL
            AND NOT EXISTS (
                SELECT FROM configuration AS newer
                WHERE newer.sensor_identifier = unpublished.sensor_identifier
                    AND newer.revision > unpublished.revision
            )
        ORDER BY creation_timestamp
        "#,
    )
    .fetch_all(executor)
    .await
}

/// How long, in seconds, the oldest of the configurations [`read_unpublished_configurations`]
/// returns has waited; 0 when none waits.
pub async fn read_oldest_unpublished_age(
    executor: impl PgExecutor<'_>,
) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        SELECT coalesce(extract(epoch FROM now() - min(creation_timestamp))::float8, 0)
        FROM configuration AS unpublished
        WHERE publication_timestamp IS NULL
            AND NOT EXISTS (
                SELECT FROM configuration AS newer
                WHERE newer.sensor_identifier = unpublished.sensor_identifier
                    AND newer.revision > unpublished.revision
            )
        "#,
    )
    .fetch_one(executor)
    .await
}

/// Records that the broker accepted this configuration. Returns whether it was
/// unpublished until now.
pub async fn update_publication_timestamp(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    revision: Revision,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        r#"
        UPDATE configuration SET publication_timestamp = now()
        WHERE sensor_identifier = $1 AND revision = $2 AND publication_timestamp IS NULL
        "#,
    )
    .bind(sensor_identifier)
    .bind(revision)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// One heartbeat as received, validated: the sensor's word on a configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHeartbeat {
    pub sensor_identifier: Identifier,
    pub revision: Revision,
    pub timestamp: Timestamp,
    pub success: bool,
    pub receipt_timestamp: Timestamp,
}

/// Records acknowledgements in one statement: the first heartbeat of a revision (in
/// slice order, then over time) sets its acknowledgement; later ones, and those of
/// revisions that do not exist, change nothing. Returns how many configurations
/// were acknowledged now.
pub async fn update_acknowledgements(
    executor: impl PgExecutor<'_>,
    heartbeats: &[NewHeartbeat],
) -> Result<u64, sqlx::Error> {
    let length = heartbeats.len();
    let mut sensor_identifiers = Vec::with_capacity(length);
    let mut revisions = Vec::with_capacity(length);
    let mut acknowledgement_timestamps = Vec::with_capacity(length);
    let mut successes = Vec::with_capacity(length);
    let mut receipt_timestamps = Vec::with_capacity(length);
    for heartbeat in heartbeats {
        sensor_identifiers.push(heartbeat.sensor_identifier.as_uuid());
        revisions.push(heartbeat.revision.get());
        acknowledgement_timestamps.push(heartbeat.timestamp.as_datetime());
        successes.push(heartbeat.success);
        receipt_timestamps.push(heartbeat.receipt_timestamp.as_datetime());
    }
    let result = sqlx::query(
        r#"
        UPDATE configuration
        SET acknowledgement_timestamp = first.acknowledgement_timestamp,
            receipt_timestamp = first.receipt_timestamp,
            success = first.success
        FROM (
            SELECT DISTINCT ON (sensor_identifier, revision) *
            FROM UNNEST($1::uuid[], $2::integer[], $3::timestamptz[], $4::boolean[], $5::timestamptz[])
                WITH ORDINALITY AS heartbeat (
                    sensor_identifier, revision, acknowledgement_timestamp, success,
                    receipt_timestamp, position
                )
            ORDER BY sensor_identifier, revision, position
        ) AS first
        WHERE configuration.sensor_identifier = first.sensor_identifier
            AND configuration.revision = first.revision
            AND configuration.acknowledgement_timestamp IS NULL
        "#,
    )
    .bind(sensor_identifiers)
    .bind(revisions)
    .bind(acknowledgement_timestamps)
    .bind(successes)
    .bind(receipt_timestamps)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}
