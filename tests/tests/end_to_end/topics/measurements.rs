//! `measurements/<sensor>`: what sensors publish, through a real Mosquitto, the bridge
//! and the topic function, into PostgreSQL.

use crate::helpers::count;
use crate::helpers::mqtt::{Sensor, broker_url, measurement_timestamps, spawn_mqtt, wait_for};
use sensorium_shared::domain::Identifier;
use sensorium_shared::testing::create_sensor;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn measurements_published_by_a_sensor_are_stored_with_their_receipt_time(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let before = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    sensor
        .publish_json(
            &format!("measurements/{sensor_identifier}"),
            json!({"measurements": [
                {"revision": 0, "timestamp": 1683645000.0, "value": {"temperature": 20.5}},
                {"timestamp": 1683645001.25, "value": {"temperature": 20.75, "humidity": 0.5}},
            ]}),
        )
        .await;

    wait_for(vec![1683645000.0, 1683645001.25], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;
    let rows: Vec<(Value, Option<i32>, i32, f64)> = sqlx::query_as(
        "SELECT value, revision, position, extract(epoch FROM receipt_timestamp)::float8 FROM measurement WHERE sensor_identifier = $1 ORDER BY position",
    )
    .bind(sensor_identifier)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows[0].0, json!({"temperature": 20.5}));
    assert_eq!((rows[0].1, rows[0].2), (Some(0), 0));
    assert_eq!(rows[1].0, json!({"temperature": 20.75, "humidity": 0.5}));
    assert_eq!((rows[1].1, rows[1].2), (None, 1));
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    assert!(
        (before - 0.01..=now).contains(&rows[0].3),
        "receipt time {}",
        rows[0].3
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn bad_measurements_are_dropped_while_the_good_ones_of_the_message_are_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let many: serde_json::Map<String, Value> =
        (0..1024).map(|i| (format!("a{i}"), json!(i))).collect();
    let too_many: serde_json::Map<String, Value> =
        (0..1025).map(|i| (format!("a{i}"), json!(i))).collect();
    // Good elements have whole timestamps, bad ones a fraction, so the stored
    // timestamps tell which were kept.
    sensor
        .publish_json(
            &format!("measurements/{sensor_identifier}"),
            json!({"measurements": [
                {"timestamp": 1, "value": {"a": 1}},
                {"timestamp": 1.5},
                {"timestamp": 2, "revision": null, "value": {"b_2": -0.5}},
                {"timestamp": 2.5, "value": {}},
                {"timestamp": 3, "revision": 7, "value": many},
                {"timestamp": 3.5, "value": too_many},
                {"timestamp": 4.5, "value": {"a": "1"}},
                {"timestamp": 5.5, "value": {"Bad": 1}},
                {"timestamp": 6.5, "revision": -1, "value": {"a": 1}},
                {"timestamp": 7.5, "value": {"a": 1}, "unknown": true},
                {"value": {"a": 1}},
                {"timestamp": 2147483648.5, "value": {"a": 1}},
            ]}),
        )
        .await;
    wait_for(vec![1.0, 2.0, 3.0], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn malformed_payloads_are_dropped_and_the_next_good_message_is_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let topic = format!("measurements/{sensor_identifier}");
    // Large, yet within the broker's limit on a message.
    let padding = "x".repeat(100 << 10);
    let zoo: Vec<(String, Vec<u8>)> = vec![
        (topic.clone(), b"\xff\xfe\x00 not UTF-8".to_vec()),
        (topic.clone(), b"not JSON".to_vec()),
        (topic.clone(), b"".to_vec()),
        (
            topic.clone(),
            b"[{\"timestamp\": 1, \"value\": {\"a\": 1}}]".to_vec(),
        ),
        (topic.clone(), b"\"measurements\"".to_vec()),
        (
            topic.clone(),
            b"{\"log_messages\": [{\"timestamp\": 1, \"value\": {\"a\": 1}}]}".to_vec(),
        ),
        (
            topic.clone(),
            b"{\"measurements\": [], \"extra\": 1}".to_vec(),
        ),
        (topic.clone(), b"{\"measurements\": []}".to_vec()),
        (topic.clone(), b"{\"measurements\": {}}".to_vec()),
        (topic.clone(), padding.clone().into_bytes()),
        (
            topic.clone(),
            json!({"measurements": [{"timestamp": 1, "value": {"a": 1}, "padding": padding}]})
                .to_string()
                .into_bytes(),
        ),
        (
            format!("measurements/{}", Identifier::new()),
            br#"{"measurements": [{"timestamp": 1, "value": {"a": 1}}]}"#.to_vec(),
        ),
        (
            "measurements/not-a-sensor".into(),
            br#"{"measurements": [{"timestamp": 1, "value": {"a": 1}}]}"#.to_vec(),
        ),
        (
            format!(
                "measurements/{}",
                sensor_identifier.to_string().to_uppercase()
            ),
            br#"{"measurements": [{"timestamp": 1, "value": {"a": 1}}]}"#.to_vec(),
        ),
    ];
    let mut expected = Vec::new();
    for (index, (bad_topic, bad_payload)) in zoo.into_iter().enumerate() {
        sensor.publish(&bad_topic, bad_payload).await;
        let timestamp = 1000.0 + index as f64;
        sensor
            .publish_json(
                &topic,
                json!({"measurements": [{"timestamp": timestamp, "value": {"good": 1}}]}),
            )
            .await;
        expected.push(timestamp);
        wait_for(expected.clone(), || {
            measurement_timestamps(&pool, sensor_identifier)
        })
        .await;
    }
    let total = count(&pool, "SELECT count(*) FROM measurement").await;
    assert_eq!(total as usize, expected.len());
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_same_measurements_published_twice_are_stored_once(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let topic = format!("measurements/{sensor_identifier}");
    let measurements = json!({"measurements": [
        {"timestamp": 10, "value": {"a": 1}},
        {"timestamp": 10, "value": {"a": 2}},
    ]});
    for _ in 0..2 {
        sensor.publish_json(&topic, measurements.clone()).await;
    }
    // A marker published after both copies: once it is stored, so are they.
    sensor
        .publish_json(
            &topic,
            json!({"measurements": [{"timestamp": 11, "value": {"marker": 1}}]}),
        )
        .await;
    wait_for(vec![10.0, 10.0, 11.0], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;
}
