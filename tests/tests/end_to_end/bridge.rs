//! The bridge between the broker and the topic functions, end to end: what it does
//! when the database or the broker fails, and what the broker refuses or drops.

use std::time::Duration;

use crate::helpers::mqtt::{
    OwnBroker, STORED_WITHIN, Sensor, broker_url, measurement_timestamps, spawn_mqtt,
    spawn_mqtt_as, wait_for, wait_until_every_delivery_is_acknowledged,
};
use rumqttc::{AsyncClient, Event, Packet};
use sensorium_shared::domain::Identifier;
use sensorium_shared::testing::{
    create_sensor, end_fault, eventually, fault_hits, inject_fault, install_fault_injection,
};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn messages_failed_by_a_database_outage_are_retried_until_stored(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    // An outage as the topic function sees it: every insert fails with a transient
    // error until it ends.
    install_fault_injection(&pool).await;
    inject_fault(&pool, None).await;
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
    let attempted = eventually(STORED_WITHIN, || async {
        (fault_hits(&pool).await > 0).then_some(())
    })
    .await;
    assert!(attempted.is_some(), "the bridge never tried to store");
    assert!(
        measurement_timestamps(&pool, sensor_identifier)
            .await
            .is_empty()
    );
    end_fault(&pool, None).await;
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
    // Its `$SYS` counts every second, to see what it holds.
    let mut broker = OwnBroker::start_plain_with(&[(
        "set_tcp_nodelay true",
        "set_tcp_nodelay true\nsys_interval 1",
    )])
    .await;
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
    let mut timestamp = 1;
    let pool_ref = &pool;
    let stored = eventually(STORED_WITHIN, || {
        timestamp += 1;
        let published = publish(timestamp);
        async move {
            published.await;
            eventually(Duration::from_secs(1), || async move {
                let stored = measurement_timestamps(pool_ref, sensor_identifier).await;
                (stored.len() > 1).then_some(())
            })
            .await
        }
    })
    .await;
    assert!(stored.is_some(), "nothing stored after the restart");
    let before = measurement_timestamps(&pool, sensor_identifier).await.len();
    for timestamp in 1000..1100 {
        publish(timestamp).await;
    }
    wait_for(before + 100, || async {
        measurement_timestamps(&pool, sensor_identifier).await.len()
    })
    .await;
    // The last batch's acknowledgements reach the broker, then the bridge stops.
    wait_until_every_delivery_is_acknowledged(&broker.url()).await;
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
