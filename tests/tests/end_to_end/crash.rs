//! The harness binary killed with SIGKILL in the middle of a stream and restarted:
//! every message the broker accepted is stored, none twice.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::database_url;
use crate::helpers::mqtt::broker_url;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sensorium_harness::mqtt::open_bridge_session;
use sensorium_shared::domain::Identifier;
use sensorium_shared::testing::create_sensor;
use sensorium_shared::testing::eventually;
use sqlx::PgPool;

const MESSAGES: usize = 20_000;
const SENSORS: usize = 4;

fn start_harness(database_url: &str, client_id: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("MQTT_URL", broker_url().as_str())
        .env("MQTT_CLIENT_ID", client_id)
        .env("HTTP_ADDRESS", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("the harness starts")
}

fn client_options(client_id: &str, clean_session: bool) -> MqttOptions {
    let url = broker_url();
    let mut options = sensorium_harness::mqtt::client_options(&url, client_id).unwrap();
    options
        .set_clean_session(clean_session)
        .set_inflight(1000)
        .set_keep_alive(Duration::from_secs(30));
    options
}

async fn stored(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM measurement")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_harness_killed_mid_stream_stores_every_message_exactly_once(pool: PgPool) {
    let mut sensors = Vec::new();
    for _ in 0..SENSORS {
        sensors.push(create_sensor(&pool).await);
    }
    let database_url = database_url(&pool).await;
    let client_id = format!("bridge-{}", Identifier::new());
    open_bridge_session(&broker_url(), &client_id)
        .await
        .unwrap();
    let mut harness = start_harness(&database_url, &client_id);

    // The sensors' stream, QoS 1, until the broker acknowledged every message.
    let (client, mut event_loop) = AsyncClient::new(
        client_options(&format!("stream-{}", Identifier::new()), true),
        1000,
    );
    let publisher = tokio::spawn(async move {
        for index in 0..MESSAGES {
            let payload = format!(
                r#"{{"measurements": [{{"timestamp": {}, "value": {{"index": {index}}}}}]}}"#,
                1_700_000_000 + index
            );
            let topic = format!("measurements/{}", sensors[index % SENSORS]);
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    });
    let acknowledged = tokio::spawn(async move {
        let mut acknowledged = 0;
        while acknowledged < MESSAGES {
            if let Event::Incoming(Packet::PubAck(_)) = event_loop.poll().await.unwrap() {
                acknowledged += 1;
            }
        }
    });

    // Killed once a quarter is stored, so the stream is still going.
    let quarter = eventually(Duration::from_secs(60), || async {
        (stored(&pool).await >= (MESSAGES / 4) as i64).then_some(())
    })
    .await;
    assert!(
        quarter.is_some(),
        "a quarter of the stream was not stored in 60 s"
    );
    harness.kill().unwrap();
    harness.wait().unwrap();
    let at_kill = stored(&pool).await;
    assert!(
        at_kill < MESSAGES as i64,
        "the stream ended before the kill"
    );

    let mut harness = start_harness(&database_url, &client_id);
    publisher.await.unwrap();
    acknowledged.await.unwrap();
    let complete = eventually(Duration::from_secs(120), || async {
        (stored(&pool).await >= MESSAGES as i64).then_some(())
    })
    .await;
    harness.kill().unwrap();
    harness.wait().unwrap();
    assert!(
        complete.is_some(),
        "stored {} of {MESSAGES}",
        stored(&pool).await
    );

    let (rows, distinct, counted): (i64, i64, i64) = sqlx::query_as(
        r#"
        SELECT count(*), count(DISTINCT (value->>'index')),
            (SELECT sum(measurement_count)::bigint FROM measurement_bucket)
        FROM measurement
        "#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (rows, distinct, counted),
        (MESSAGES as i64, MESSAGES as i64, MESSAGES as i64)
    );
    eprintln!(
        "killed with {at_kill} of {MESSAGES} stored; all {MESSAGES} stored once after the restart"
    );
}

/// Whether a statement of the database `name` waits for a lock: the bridge, blocked.
async fn waits_for_a_lock(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_stat_activity
         WHERE datname = $1 AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO measurement%')",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_message_is_acknowledged_to_the_broker_only_once_stored(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let database_url = database_url(&pool).await;
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let client_id = format!("bridge-{}", Identifier::new());
    open_bridge_session(&broker_url(), &client_id)
        .await
        .unwrap();
    let mut harness = start_harness(&database_url, &client_id);

    // Inserts of measurements block until this transaction ends.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE measurement IN EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();

    // The sensor's message, accepted by the broker.
    let (client, mut event_loop) = AsyncClient::new(
        client_options(&format!("sensor-{}", Identifier::new()), true),
        10,
    );
    client
        .publish(
            format!("measurements/{sensor}"),
            QoS::AtLeastOnce,
            false,
            r#"{"measurements": [{"timestamp": 1700000000, "value": {"a": 1}}]}"#,
        )
        .await
        .unwrap();
    loop {
        if let Event::Incoming(Packet::PubAck(_)) = event_loop.poll().await.unwrap() {
            break;
        }
    }

    // The bridge holds the message, stuck on the insert: killed now, it has stored
    // nothing, so it must not have acknowledged anything either.
    eventually(Duration::from_secs(60), || async {
        waits_for_a_lock(&pool, &name).await.then_some(())
    })
    .await
    .expect("the bridge reaches the insert");
    harness.kill().unwrap();
    harness.wait().unwrap();
    blocker.rollback().await.unwrap();
    assert_eq!(stored(&pool).await, 0);

    // The broker still has the message for the bridge's session: delivered again.
    let mut harness = start_harness(&database_url, &client_id);
    let delivered = eventually(Duration::from_secs(60), || async {
        (stored(&pool).await == 1).then_some(())
    })
    .await;
    harness.kill().unwrap();
    harness.wait().unwrap();
    assert!(
        delivered.is_some(),
        "the message the bridge held when it was killed was lost"
    );
}
