//! `log-messages/<sensor>`: what sensors publish, through a real Mosquitto, the bridge
//! and the topic function, into PostgreSQL.

use crate::helpers::mqtt::{Sensor, broker_url, log_timestamps, recent, spawn_mqtt, wait_for};
use sensorium_shared::testing::create_sensor;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn log_messages_published_by_a_sensor_are_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let log_timestamp = recent();
    sensor
        .publish_json(
            &format!("log-messages/{sensor_identifier}"),
            json!({"log_messages": [{
                "severity": "error", "revision": 0, "timestamp": log_timestamp,
                "subject": "The CPU is burning", "details": "Please call the fire department",
            }]}),
        )
        .await;

    wait_for(vec![log_timestamp], || {
        log_timestamps(&pool, sensor_identifier)
    })
    .await;
    let log: (String, String, Option<String>, Option<i32>) = sqlx::query_as(
        "SELECT severity::text, subject, details, revision FROM log WHERE sensor_identifier = $1",
    )
    .bind(sensor_identifier)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        log,
        (
            "error".into(),
            "The CPU is burning".into(),
            Some("Please call the fire department".into()),
            Some(0)
        )
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn bad_log_messages_are_dropped_while_the_good_ones_of_the_message_are_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    // Good elements have whole timestamps, bad ones a fraction, so the stored
    // timestamps tell which were kept.
    let base = recent();
    sensor
        .publish_json(
            &format!("log-messages/{sensor_identifier}"),
            json!({"log_messages": [
                {"severity": "info", "timestamp": base + 1.0, "subject": "s"},
                {"severity": "warning", "timestamp": base + 2.0, "subject": "s", "details": "d", "revision": 1},
                {"severity": "debug", "timestamp": base + 2.5, "subject": "s"},
                {"severity": "info", "timestamp": base + 3.5},
                {"severity": "info", "timestamp": base + 4.5, "subject": "s", "details": 5},
                {"severity": "info", "timestamp": base + 5.5, "subject": "s", "unknown": 1},
            ]}),
        )
        .await;
    wait_for(vec![base + 1.0, base + 2.0], || {
        log_timestamps(&pool, sensor_identifier)
    })
    .await;
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_same_log_messages_published_twice_are_stored_once(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let topic = format!("log-messages/{sensor_identifier}");
    let base = recent();
    let logs =
        json!({"log_messages": [{"severity": "info", "timestamp": base + 10.0, "subject": "s"}]});
    for _ in 0..2 {
        sensor.publish_json(&topic, logs.clone()).await;
    }
    // A marker published after both copies: once it is stored, so are they.
    sensor
        .publish_json(
            &topic,
            json!({"log_messages": [{"severity": "info", "timestamp": base + 11.0, "subject": "marker"}]}),
        )
        .await;
    wait_for(vec![base + 10.0, base + 11.0], || {
        log_timestamps(&pool, sensor_identifier)
    })
    .await;
}
