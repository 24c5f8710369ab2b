//! Helpers for the tests of every crate, behind the `testing` feature (enabled only
//! in dev-dependencies). They panic on failure, as test set-up should.

use sqlx::PgPool;

use crate::domain::{Identifier, NetworkName, SensorName};
use crate::queries::{networks, sensors};

/// A new network with one sensor, stored by the queries the REST API uses; returns
/// the network's and the sensor's identifiers.
pub async fn create_network_and_sensor(pool: &PgPool) -> (Identifier, Identifier) {
    let network = Identifier::new();
    let sensor = Identifier::new();
    let network_name = NetworkName::parse(format!("network-{}", &network.to_string()[..8]))
        .expect("a valid network name");
    networks::create_network(pool, network, &network_name)
        .await
        .expect("the network is created");
    let sensor_name = SensorName::parse("sensor").expect("a valid sensor name");
    sensors::create_sensor(pool, sensor, network, &sensor_name)
        .await
        .expect("the sensor is created");
    (network, sensor)
}

/// A new sensor, in a network of its own.
pub async fn create_sensor(pool: &PgPool) -> Identifier {
    create_network_and_sensor(pool).await.1
}

/// The sensor's 4-hour measurement counts: (bucket start in seconds, count), by time.
pub async fn bucket_counts(pool: &PgPool, sensor: Identifier) -> Vec<(f64, i64)> {
    sqlx::query_as(
        "SELECT extract(epoch FROM bucket_timestamp)::float8, measurement_count
         FROM measurement_bucket WHERE sensor_identifier = $1 ORDER BY 1",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .expect("the buckets are read")
}
