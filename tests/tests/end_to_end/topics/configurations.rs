//! `configurations/<sensor>`: configurations reach their sensors, published retained
//! by the outbox, recorded as published once the broker accepted them, and delayed,
//! not lost, by a broker outage.

use std::time::Duration;

use crate::helpers::mqtt::{OwnBroker, Sensor, broker_url, create_configuration, spawn_mqtt};
use sensorium_shared::domain::Identifier;
use sensorium_shared::publisher::OutboxTrigger;
use sensorium_shared::testing::create_sensor;
use sensorium_shared::testing::eventually;
use serde_json::{Value, json};
use sqlx::PgPool;

async fn publication_timestamps(pool: &PgPool, sensor: Identifier) -> Vec<(i32, bool)> {
    sqlx::query_as(
        "SELECT revision, publication_timestamp IS NOT NULL FROM configuration WHERE sensor_identifier = $1 ORDER BY revision",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Subscribes a new sensor client to its configuration topic and returns the retained
/// message it gets: retain flag and JSON payload.
async fn receive_retained(url: &url::Url, sensor_identifier: Identifier) -> (bool, Value) {
    let mut sensor = Sensor::connect(url);
    sensor
        .subscribe(&format!("configurations/{sensor_identifier}"))
        .await;
    let message = sensor
        .next_message(Duration::from_secs(10))
        .await
        .expect("the retained configuration arrives");
    (
        message.retain,
        serde_json::from_slice(&message.payload).expect("a JSON payload"),
    )
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_sensor_that_subscribes_later_receives_its_newest_configuration_retained(pool: PgPool) {
    let sensor_identifier = create_sensor(&pool).await;
    // Both before the outbox runs, so that no sweep can come between them.
    create_configuration(&pool, sensor_identifier, json!({"interval": 60})).await;
    create_configuration(
        &pool,
        sensor_identifier,
        json!({"interval": 30, "nested": [1, {"a": null}]}),
    )
    .await;
    let mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    mqtt.outbox.wake().await;
    // Revision 0 was superseded before it went out: only the newest is sent.
    let published = eventually(Duration::from_secs(10), || async {
        (publication_timestamps(&pool, sensor_identifier).await == vec![(0, false), (1, true)])
            .then_some(())
    })
    .await;
    assert!(
        published.is_some(),
        "{:?}",
        publication_timestamps(&pool, sensor_identifier).await
    );
    assert_eq!(
        receive_retained(&broker_url(), sensor_identifier).await,
        (
            true,
            json!({"revision": 1, "configuration": {"interval": 30, "nested": [1, {"a": null}]}})
        )
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_configuration_created_while_the_broker_is_down_is_published_once_it_is_back(
    pool: PgPool,
) {
    let mut broker = OwnBroker::start().await;
    let sensor_identifier = create_sensor(&pool).await;
    let mqtt = spawn_mqtt(pool.clone(), &broker.url()).await;
    broker.stop();
    create_configuration(&pool, sensor_identifier, json!({"interval": 10})).await;
    mqtt.outbox.wake().await;
    // Nothing can have accepted it: the only broker is down.
    assert_eq!(
        publication_timestamps(&pool, sensor_identifier).await,
        vec![(0, false)]
    );
    broker.resume().await;
    // The sweep timer (5 s) brings it out without another wake.
    let published = eventually(Duration::from_secs(30), || async {
        (publication_timestamps(&pool, sensor_identifier).await == vec![(0, true)]).then_some(())
    })
    .await;
    assert!(
        published.is_some(),
        "not published after the broker came back"
    );
    assert_eq!(
        receive_retained(&broker.url(), sensor_identifier).await,
        (
            true,
            json!({"revision": 0, "configuration": {"interval": 10}})
        )
    );
}
