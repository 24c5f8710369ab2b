//! Sensors of networks.

use sqlx::PgExecutor;

use crate::domain::{Identifier, Revision, SensorName, Timestamp};

/// Stores a new sensor; a name taken in the network fails with a unique violation, a
/// missing network with a foreign key violation.
pub async fn create_sensor(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    network_identifier: Identifier,
    sensor_name: &SensorName,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO sensor (identifier, network_identifier, name) VALUES ($1, $2, $3)",
        sensor_identifier.as_uuid(),
        network_identifier.as_uuid(),
        sensor_name.as_str(),
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Renames the sensor; false if it is not (any more) in the network.
pub async fn update_sensor_name(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    network_identifier: Identifier,
    sensor_name: &SensorName,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "UPDATE sensor SET name = $3 WHERE identifier = $1 AND network_identifier = $2",
        sensor_identifier.as_uuid(),
        network_identifier.as_uuid(),
        sensor_name.as_str(),
    )
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[derive(Debug, serde::Serialize)]
pub struct Sensor {
    pub sensor_identifier: Identifier,
    pub sensor_name: SensorName,
    pub last_seen_timestamp: Option<Timestamp>,
}

/// The sensors of the network, by name.
pub async fn read_sensors(
    executor: impl PgExecutor<'_>,
    network_identifier: Identifier,
) -> Result<Vec<Sensor>, sqlx::Error> {
    sqlx::query_as!(
        Sensor,
        r#"
        SELECT
            identifier AS "sensor_identifier: _",
            name AS "sensor_name: _",
            last_seen_timestamp AS "last_seen_timestamp: _"
        FROM sensor
        WHERE network_identifier = $1
        ORDER BY name
        "#,
        network_identifier.as_uuid(),
    )
    .fetch_all(executor)
    .await
}

/// What `GET /networks/{n}/sensors/{s}` answers; each field `null` when there is none.
#[derive(Debug, serde::Serialize)]
pub struct SensorStatus {
    pub sensor_identifier: Identifier,
    pub sensor_name: SensorName,
    pub creation_timestamp: Timestamp,
    /// Server time of the newest message the sensor sent, on any topic.
    pub last_seen_timestamp: Option<Timestamp>,
    pub latest_revision: Option<Revision>,
    /// The newest revision the sensor acknowledged with `success: true`.
    pub acknowledged_revision: Option<Revision>,
    /// When its current broker credentials were issued.
    pub credentials_timestamp: Option<Timestamp>,
}

/// The sensor's status, `None` if it is not (any more) in the network.
pub async fn read_sensor(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    network_identifier: Identifier,
) -> Result<Option<SensorStatus>, sqlx::Error> {
    sqlx::query_as!(
        SensorStatus,
        r#"
        SELECT
            identifier AS "sensor_identifier: _",
            name AS "sensor_name: _",
            creation_timestamp AS "creation_timestamp: _",
            last_seen_timestamp AS "last_seen_timestamp: _",
            nullif(next_revision, 0) - 1 AS "latest_revision?: _",
            (
                SELECT max(revision)
                FROM configuration
                WHERE sensor_identifier = sensor.identifier AND success
            ) AS "acknowledged_revision?: _",
            credentials_timestamp AS "credentials_timestamp: _"
        FROM sensor
        WHERE identifier = $1 AND network_identifier = $2
        "#,
        sensor_identifier.as_uuid(),
        network_identifier.as_uuid(),
    )
    .fetch_optional(executor)
    .await
}

/// Takes the lock of the sensor's credentials until the transaction ends, so that they
/// are issued or revoked one request at a time and the broker's state and
/// `credentials_timestamp` agree. An advisory lock, not the sensor's row: ingest
/// updates that row, and must not wait while a broker or cloud service answers. False
/// if the sensor does not exist (any more).
pub async fn lock_sensor_credentials(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT EXISTS (SELECT FROM sensor WHERE identifier = $1::uuid) AS "exists!"
        FROM pg_advisory_xact_lock(hashtextextended('sensor credentials ' || $1::uuid, 0))
        "#,
        sensor_identifier.as_uuid(),
    )
    .fetch_one(executor)
    .await
}

/// Records when the sensor's current credentials were issued (`None`: it has none).
pub async fn update_credentials_timestamp(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    credentials_timestamp: Option<Timestamp>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sensor SET credentials_timestamp = $2 WHERE identifier = $1",
        sensor_identifier.as_uuid(),
        credentials_timestamp.map(|timestamp| timestamp.as_datetime()),
    )
    .execute(executor)
    .await?;
    Ok(())
}
