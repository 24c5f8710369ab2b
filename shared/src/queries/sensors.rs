//! Sensors of networks.

use sqlx::PgExecutor;

use crate::domain::{Identifier, SensorName};

/// Stores a new sensor; a name taken in the network fails with a unique violation, a
/// missing network with a foreign key violation.
pub async fn create_sensor(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    network_identifier: Identifier,
    sensor_name: &SensorName,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sensor (identifier, network_identifier, name) VALUES ($1, $2, $3)")
        .bind(sensor_identifier)
        .bind(network_identifier)
        .bind(sensor_name)
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
    let result = sqlx::query(
        "UPDATE sensor SET name = $3 WHERE identifier = $1 AND network_identifier = $2",
    )
    .bind(sensor_identifier)
    .bind(network_identifier)
    .bind(sensor_name)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[derive(Debug, serde::Serialize, sqlx::FromRow)]
pub struct Sensor {
    pub sensor_identifier: Identifier,
    pub sensor_name: SensorName,
}

/// The sensors of the network, by name.
pub async fn read_sensors(
    executor: impl PgExecutor<'_>,
    network_identifier: Identifier,
) -> Result<Vec<Sensor>, sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT identifier AS sensor_identifier, name AS sensor_name
        FROM sensor
        WHERE network_identifier = $1
        ORDER BY name
        "#,
    )
    .bind(network_identifier)
    .fetch_all(executor)
    .await
}
