//! What sensors publish, through a real Mosquitto, the bridge and the topic functions,
//! into PostgreSQL.

mod common;

use std::time::Duration;

use common::mqtt::{
    OwnBroker, Sensor, broker_url, create_configuration, spawn_mqtt, spawn_mqtt_as,
};
use rumqttc::{AsyncClient, Event, Packet};
use sensorium_shared::domain::Identifier;
use sensorium_shared::testing::create_sensor;
use serde_json::{Value, json};
use sqlx::PgPool;

// Generous: the machines running the tests may be busy compiling.
const STORED_WITHIN: Duration = Duration::from_secs(30);

async fn measurement_timestamps(pool: &PgPool, sensor: Identifier) -> Vec<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM creation_timestamp)::float8 FROM measurement WHERE sensor_identifier = $1 ORDER BY 1",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A timestamp an hour ago, in whole seconds: logs need one within the 8 weeks the
/// harness's retention job keeps, or they may be deleted as soon as stored.
fn recent() -> f64 {
    (chrono::Utc::now().timestamp() - 3600) as f64
}

async fn log_timestamps(pool: &PgPool, sensor: Identifier) -> Vec<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM creation_timestamp)::float8 FROM log WHERE sensor_identifier = $1 ORDER BY 1",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Waits until `read` returns `expected`; fails with the last value it saw otherwise.
async fn wait_for<T, F, Fut>(expected: T, mut read: F)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + STORED_WITHIN;
    loop {
        let value = read().await;
        if value == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {expected:?}, last saw {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn measurements_logs_and_heartbeats_published_by_a_sensor_are_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    create_configuration(&pool, sensor_identifier, json!({"interval": 60})).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let before = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let log_timestamp = recent();
    sensor
        .publish_json(
            &format!("measurements/{sensor_identifier}"),
            json!({"measurements": [
                {"revision": 0, "timestamp": 1683645000.0, "value": {"temperature": 20.5}},
                {"timestamp": 1683645001.25, "value": {"temperature": 20.75, "humidity": 0.5}},
            ]}),
        )
        .await;
    sensor
        .publish_json(
            &format!("log-messages/{sensor_identifier}"),
            json!({"log_messages": [{
                "severity": "error", "revision": 0, "timestamp": log_timestamp,
                "subject": "The CPU is burning", "details": "Please call the fire department",
            }]}),
        )
        .await;
    sensor
        .publish_json(
            &format!("heartbeats/{sensor_identifier}"),
            json!({"heartbeats": [{"revision": 0, "timestamp": 1683645000.0, "success": true}]}),
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

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn bad_elements_are_dropped_while_the_good_ones_of_the_message_are_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let many: serde_json::Map<String, Value> =
        (0..1024).map(|i| (format!("a{i}"), json!(i))).collect();
    let too_many: serde_json::Map<String, Value> =
        (0..1025).map(|i| (format!("a{i}"), json!(i))).collect();
    // Good elements have whole timestamps, bad ones a fraction, so the stored
    // timestamps tell which were kept.
    let base = recent();
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
    wait_for(vec![1.0, 2.0, 3.0], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;
    wait_for(vec![base + 1.0, base + 2.0], || {
        log_timestamps(&pool, sensor_identifier)
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
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM measurement")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total as usize, expected.len());
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_same_message_published_twice_is_stored_once(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let measurements = json!({"measurements": [
        {"timestamp": 10, "value": {"a": 1}},
        {"timestamp": 10, "value": {"a": 2}},
    ]});
    let base = recent();
    let logs =
        json!({"log_messages": [{"severity": "info", "timestamp": base + 10.0, "subject": "s"}]});
    for _ in 0..2 {
        sensor
            .publish_json(
                &format!("measurements/{sensor_identifier}"),
                measurements.clone(),
            )
            .await;
        sensor
            .publish_json(&format!("log-messages/{sensor_identifier}"), logs.clone())
            .await;
    }
    // A marker published after both copies: once it is stored, so are they.
    sensor
        .publish_json(
            &format!("measurements/{sensor_identifier}"),
            json!({"measurements": [{"timestamp": 11, "value": {"marker": 1}}]}),
        )
        .await;
    sensor
        .publish_json(
            &format!("log-messages/{sensor_identifier}"),
            json!({"log_messages": [{"severity": "info", "timestamp": base + 11.0, "subject": "marker"}]}),
        )
        .await;
    wait_for(vec![10.0, 10.0, 11.0], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;
    wait_for(vec![base + 10.0, base + 11.0], || {
        log_timestamps(&pool, sensor_identifier)
    })
    .await;
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn messages_failed_by_a_database_outage_are_retried_until_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    // An outage as the topic function sees it: every insert fails with a transient
    // error while the table `outage` holds a row.
    sqlx::raw_sql(
        r#"
        CREATE TABLE outage ();
        INSERT INTO outage DEFAULT VALUES;
        -- Counts the refused attempts: sequences are not rolled back.
        CREATE SEQUENCE refused_attempts;
        CREATE FUNCTION refuse_during_outage() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT FROM outage) THEN
                PERFORM nextval('refused_attempts');
                RAISE EXCEPTION 'outage' USING ERRCODE = '57P03';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_during_outage BEFORE INSERT ON measurement
            FOR EACH ROW EXECUTE FUNCTION refuse_during_outage();
        "#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    for timestamp in [1, 2, 3] {
        sensor
            .publish_json(
                &format!("measurements/{sensor_identifier}"),
                json!({"measurements": [{"timestamp": timestamp, "value": {"a": 1}}]}),
            )
            .await;
    }
    // The bridge has tried (and failed) at least once when the outage ends.
    let attempted = common::eventually(STORED_WITHIN, || async {
        let refused: bool = sqlx::query_scalar("SELECT is_called FROM refused_attempts")
            .fetch_one(&pool)
            .await
            .unwrap();
        refused.then_some(())
    })
    .await;
    assert!(attempted.is_some(), "the bridge never tried to store");
    assert!(
        measurement_timestamps(&pool, sensor_identifier)
            .await
            .is_empty()
    );
    sqlx::query("DELETE FROM outage")
        .execute(&pool)
        .await
        .unwrap();
    wait_for(vec![1.0, 2.0, 3.0], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn after_a_broker_restart_the_bridge_stores_and_acknowledges_on_the_new_connection(
    pool: PgPool,
) {
    let sensor_identifier = create_sensor(&pool).await;
    let topic = format!("measurements/{sensor_identifier}");
    let mut broker = OwnBroker::start().await;
    let client_id = format!("bridge-{}", Identifier::new());
    let mqtt = spawn_mqtt_as(pool.clone(), &broker.url(), &client_id).await;
    let sensor = Sensor::connect(&broker.url());
    let publish = |timestamp: i64| {
        sensor.publish_json(
            topic.as_str(),
            json!({"measurements": [{"timestamp": timestamp, "value": {"a": 1}}]}),
        )
    };
    publish(1).await;
    wait_for(vec![1.0], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;

    // Restarted without persistence, the broker forgot the bridge's session: the
    // bridge reconnects and subscribes again. Until it has, messages reach nobody, so
    // the sensor publishes one a second until one is stored.
    broker.stop();
    broker.resume().await;
    let deadline = std::time::Instant::now() + STORED_WITHIN;
    for timestamp in 2.. {
        publish(timestamp).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        if measurement_timestamps(&pool, sensor_identifier).await.len() > 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing stored after the restart"
        );
    }
    let before = measurement_timestamps(&pool, sensor_identifier).await.len();
    for timestamp in 1000..1100 {
        publish(timestamp).await;
    }
    wait_for(before + 100, || async {
        measurement_timestamps(&pool, sensor_identifier).await.len()
    })
    .await;
    // Time for the last batch's acknowledgements to leave, then the bridge stops.
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(mqtt);

    // Its session on the broker holds nothing unacknowledged: a client resuming it
    // gets no message redelivered.
    let mut options = sensorium_harness::mqtt::client_options(&broker.url(), &client_id).unwrap();
    options.set_clean_session(false);
    let (_client, mut event_loop) = AsyncClient::new(options, 10);
    let mut session_present = None;
    let redelivered = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    session_present = Some(connack.session_present);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => return publish,
                Ok(_) => {}
                Err(error) => panic!("resuming the bridge's session failed: {error}"),
            }
        }
    })
    .await;
    assert_eq!(
        session_present,
        Some(true),
        "the broker kept the bridge's session"
    );
    assert!(redelivered.is_err(), "redelivered: {redelivered:?}");
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_message_over_the_size_limit_is_refused_by_the_broker_and_holds_up_nothing(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let topic = format!("measurements/{sensor_identifier}");
    // A valid message just over the limit, from a client of its own: the broker
    // disconnects it and never hands the message on.
    let padding = "x".repeat(sensorium_shared::limits::MAXIMUM_MESSAGE_SIZE);
    let oversized = Sensor::connect(&broker_url());
    oversized
        .client
        .publish(
            &topic,
            rumqttc::QoS::AtMostOnce,
            false,
            json!({"measurements": [{"timestamp": 1, "value": {"big": 1}, "padding": padding}]})
                .to_string(),
        )
        .await
        .unwrap();
    let sensor = Sensor::connect(&broker_url());
    sensor
        .publish_json(
            &topic,
            json!({"measurements": [{"timestamp": 2, "value": {"good": 1}}]}),
        )
        .await;
    wait_for(vec![2.0], || {
        measurement_timestamps(&pool, sensor_identifier)
    })
    .await;
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_bridge_reports_messages_the_broker_dropped(pool: PgPool) {
    // A stock queue limit, and the $SYS counters every second.
    let broker = OwnBroker::start_plain_with(&[(
        "max_queued_messages 0",
        "max_queued_messages 5\nsys_interval 1",
    )])
    .await;
    let sensor_identifier = create_sensor(&pool).await;
    let bridge_id = format!("bridge-{}", Identifier::new());
    // The bridge's session exists, then the bridge goes away while a burst arrives.
    drop(spawn_mqtt_as(pool.clone(), &broker.url(), &bridge_id).await);
    let mut sensor = Sensor::connect(&broker.url());
    let probe = format!("probe/{}", Identifier::new());
    sensor
        .client
        .subscribe(&probe, rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    for index in 0..50 {
        sensor
            .publish_json(
                &format!("measurements/{sensor_identifier}"),
                json!({"measurements": [{"timestamp": index, "value": {"a": 1}}]}),
            )
            .await;
    }
    // The broker handles a client's messages in order: once the probe comes back, it
    // has queued or dropped the burst.
    sensor.publish(&probe, "done").await;
    sensor
        .next_message(STORED_WITHIN)
        .await
        .expect("the probe comes back");
    let mut mqtt = spawn_mqtt_as(pool.clone(), &broker.url(), &bridge_id).await;
    let dropped = tokio::time::timeout(
        STORED_WITHIN,
        mqtt.broker_dropped
            .wait_for(|dropped| dropped.is_some_and(|count| count >= 40)),
    )
    .await
    .expect("the broker reports what it dropped")
    .unwrap()
    .unwrap();
    assert!(dropped <= 45, "{dropped}");
}
