//! `heartbeats/<sensor>`: a sensor acknowledges its configuration, through a real
//! Mosquitto, the bridge and the topic function.

use crate::helpers::mqtt::{Sensor, broker_url, create_configuration, spawn_mqtt, wait_for};
use sensorium_shared::testing::create_sensor;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_heartbeat_published_by_a_sensor_acknowledges_its_configuration(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    create_configuration(&pool, sensor_identifier, json!({"interval": 60})).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    sensor
        .publish_json(
            &format!("heartbeats/{sensor_identifier}"),
            json!({"heartbeats": [{"revision": 0, "timestamp": 1683645000.0, "success": true}]}),
        )
        .await;

    wait_for(Some((Some(1683645000.0), Some(true))), || async {
        sqlx::query_as::<_, (Option<f64>, Option<bool>)>(
            "SELECT extract(epoch FROM acknowledgement_timestamp)::float8, success FROM configuration WHERE sensor_identifier = $1",
        )
        .bind(sensor_identifier)
        .fetch_optional(&pool)
        .await
        .unwrap()
    })
    .await;
}
