//! The configuration outbox: which configurations still wait for the broker, marking
//! them published, and the sensors' acknowledgements (heartbeats) of them.

use sqlx::PgExecutor;

use crate::domain::{Identifier, Revision, Timestamp};

/// A sensor's newest configuration, not yet published, as the outbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpublishedConfiguration {
    pub sensor_identifier: Identifier,
    pub revision: Revision,
    pub value: serde_json::Value,
    /// Failed publications since it entered the outbox.
    pub attempt_count: i32,
}

/// The configurations of the outbox that are due (not backing off after a failure),
/// longest waiting first, at most `limit`. Each sensor has at most one, its newest:
/// an older unpublished one is superseded and never sent.
pub async fn read_unpublished_configurations(
    executor: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<UnpublishedConfiguration>, sqlx::Error> {
    sqlx::query_as!(
        UnpublishedConfiguration,
        r#"
        SELECT outbox.sensor_identifier AS "sensor_identifier: _",
            outbox.revision AS "revision: _", configuration.value, outbox.attempt_count
        FROM configuration_outbox AS outbox
        JOIN configuration USING (sensor_identifier, revision)
        WHERE outbox.next_attempt_timestamp <= now()
        ORDER BY outbox.next_attempt_timestamp
        LIMIT $1
        "#,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// How long, in seconds, the configuration longest in the outbox has waited since it
/// was created; 0 when none waits.
pub async fn read_oldest_unpublished_age(
    executor: impl PgExecutor<'_>,
) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT coalesce(
            extract(epoch FROM now() - min(configuration.creation_timestamp))::float8, 0
        ) AS "age!"
        FROM configuration_outbox AS outbox
        JOIN configuration USING (sensor_identifier, revision)
        "#,
    )
    .fetch_one(executor)
    .await
}

/// Records that the broker accepted this configuration, and takes it out of the
/// outbox (unless a newer one replaced it there meanwhile). Returns whether it was
/// unpublished until now.
pub async fn update_publication_timestamp(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    revision: Revision,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        r#"
        WITH sent AS (
            DELETE FROM configuration_outbox WHERE sensor_identifier = $1 AND revision = $2
        )
        UPDATE configuration SET publication_timestamp = now()
        WHERE sensor_identifier = $1 AND revision = $2 AND publication_timestamp IS NULL
        "#,
        sensor_identifier.as_uuid(),
        revision.get(),
    )
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records a failed publication of this configuration: one more attempt, the error,
/// and the next attempt after `retry_after_seconds`.
pub async fn update_publication_failure(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    revision: Revision,
    error: &str,
    retry_after_seconds: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE configuration_outbox
        SET attempt_count = attempt_count + 1,
            last_error = $3,
            next_attempt_timestamp = now() + make_interval(secs => $4)
        WHERE sensor_identifier = $1 AND revision = $2
        "#,
        sensor_identifier.as_uuid(),
        revision.get(),
        error,
        retry_after_seconds,
    )
    .execute(executor)
    .await?;
    Ok(())
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
    let result = sqlx::query!(
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
        &sensor_identifiers,
        &revisions,
        &acknowledgement_timestamps,
        &successes,
        &receipt_timestamps,
    )
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}
