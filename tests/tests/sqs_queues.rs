//! The queue path against moto's SQS server (`MOTO_URL`, started by `./scripts/test`):
//! Mosquitto → bridge (queue mode) → SQS → consumer (as Lambda's event-source mapping)
//! → topic function → PostgreSQL, with an outage retried, a poison message ending in
//! the dead-letter queue, and the redrive that brings it back. Nothing lost, nothing
//! stored twice.

mod common;

use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use common::eventually;
use common::mqtt::{OwnBroker, Sensor};
use sensorium_functions::cloud::{SqsQueue, https_client};
use sensorium_functions::topics::Topic;
use sensorium_harness::mqtt::MqttOptions;
use sensorium_harness::queues::{self, TopicQueues};
use sensorium_harness::server::spawn_background;
use sensorium_shared::domain::Identifier;
use sensorium_shared::queue::Queue;
use sensorium_shared::testing::create_sensor;
use serde_json::json;
use sqlx::PgPool;

/// Generous: the machine running the tests may be busy compiling.
const WITHIN: Duration = Duration::from_secs(60);
/// Receives before a message goes to the dead-letter queue.
const MAX_RECEIVE_COUNT: u32 = 3;

fn sqs_client() -> aws_sdk_sqs::Client {
    let url = std::env::var("MOTO_URL")
        .expect("MOTO_URL names moto's server; ./scripts/test starts one and sets it");
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(url)
        .http_client(https_client())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Fresh queues of this test's own, hiding a received message for 1 s.
async fn topic_queues(client: &aws_sdk_sqs::Client) -> TopicQueues {
    let prefix = format!("test-{}", &Identifier::new().to_string()[..8]);
    queues::create_topic_queues(client, &prefix, MAX_RECEIVE_COUNT, Duration::from_secs(1))
        .await
        .expect("moto creates the queues")
}

/// Makes inserting a sensor's measurements fail with a transient error (40001) while
/// `injected_fault` names the sensor, or holds a row without one (every sensor).
/// `injected_fault_hits` counts the failures (a sequence: not rolled back).
async fn install_fault_injection(pool: &PgPool) {
    for statement in [
        "CREATE TABLE injected_fault (sensor_identifier uuid)",
        "CREATE SEQUENCE injected_fault_hits",
        r#"CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (
                SELECT FROM injected_fault
                WHERE sensor_identifier IS NULL OR sensor_identifier = NEW.sensor_identifier
            ) THEN
                PERFORM nextval('injected_fault_hits');
                RAISE EXCEPTION 'injected fault' USING ERRCODE = '40001';
            END IF;
            RETURN NEW;
        END
        $$"#,
        "CREATE TRIGGER inject_fault BEFORE INSERT ON measurement
         FOR EACH ROW EXECUTE FUNCTION inject_fault()",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

async fn fault_hits(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM injected_fault_hits",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn measurement_count(pool: &PgPool, sensor: Identifier) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM measurement WHERE sensor_identifier = $1")
        .bind(sensor)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The approximate number of visible messages of the queue at `url`.
async fn visible_messages(client: &aws_sdk_sqs::Client, url: &str) -> i64 {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    attributes
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|count| count.parse().ok())
        .expect("the queue reports its depth")
}

fn measurement(timestamp: i64) -> serde_json::Value {
    json!({"measurements": [{"timestamp": timestamp, "value": {"temperature": 21.5}}]})
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_queue_path_retries_an_outage_dead_letters_a_poison_message_and_redrives_it(
    pool: PgPool,
) {
    let client = sqs_client();
    let queues = topic_queues(&client).await;
    let measurements = queues.queue(Topic::Measurements).clone();
    let dead_letter_url = measurements
        .dead_letter_queue_url()
        .await
        .unwrap()
        .expect("the queue redrives to a dead-letter queue");
    let healthy = create_sensor(&pool).await;
    let poison = create_sensor(&pool).await;
    install_fault_injection(&pool).await;
    // An outage of every insert, and a sensor whose inserts always fail.
    sqlx::query("INSERT INTO injected_fault VALUES (NULL), ($1)")
        .bind(poison)
        .execute(&pool)
        .await
        .unwrap();

    let broker = OwnBroker::start_plain().await;
    let bridge =
        MqttOptions::from_url(&broker.url(), &format!("bridge-{}", Identifier::new())).unwrap();
    let mut background = spawn_background(pool.clone(), bridge, Some(queues)).unwrap();
    tokio::time::timeout(
        WITHIN,
        background.subscribed.wait_for(|subscribed| *subscribed),
    )
    .await
    .expect("the bridge subscribes")
    .unwrap();

    // More messages than one SendMessageBatch takes, so the bridge splits them.
    let sensor = Sensor::connect(&broker.url());
    let now = chrono::Utc::now().timestamp() - 60;
    for index in 0..25 {
        sensor
            .publish_json(&format!("measurements/{healthy}"), measurement(now - index))
            .await;
    }
    sensor
        .publish_json(&format!("measurements/{poison}"), measurement(now))
        .await;

    // Once the outage failed deliveries, it ends; the failed ones come back after the
    // visibility timeout and are stored.
    eventually(WITHIN, || async {
        (fault_hits(&pool).await >= 2).then_some(())
    })
    .await
    .expect("the outage fails deliveries");
    assert_eq!(
        measurement_count(&pool, healthy).await,
        0,
        "nothing is stored during the outage"
    );
    sqlx::query("DELETE FROM injected_fault WHERE sensor_identifier IS NULL")
        .execute(&pool)
        .await
        .unwrap();
    eventually(WITHIN, || async {
        (measurement_count(&pool, healthy).await == 25).then_some(())
    })
    .await
    .expect("every message of the healthy sensor is stored after the outage");

    // The poison message fails at every receive until the queue moves it aside.
    eventually(WITHIN, || async {
        (visible_messages(&client, &dead_letter_url).await == 1).then_some(())
    })
    .await
    .expect("the poison message reaches the dead-letter queue");
    assert_eq!(measurement_count(&pool, poison).await, 0);
    assert!(
        fault_hits(&pool).await >= 2 + i64::from(MAX_RECEIVE_COUNT),
        "the poison message was tried at each of its receives"
    );

    // Fixed, it is redriven and stored; nothing is left behind, nothing doubled.
    sqlx::query("DELETE FROM injected_fault")
        .execute(&pool)
        .await
        .unwrap();
    let dead_letter = SqsQueue::new(client.clone(), dead_letter_url.clone());
    let moved = queues::redrive(measurements.as_ref(), &dead_letter)
        .await
        .unwrap();
    assert_eq!(moved, 1);
    eventually(WITHIN, || async {
        (measurement_count(&pool, poison).await == 1).then_some(())
    })
    .await
    .expect("the redriven message is stored");
    assert_eq!(measurement_count(&pool, healthy).await, 25);
    assert_eq!(visible_messages(&client, &dead_letter_url).await, 0);
    eventually(WITHIN, || async {
        (visible_messages(&client, measurements.url()).await == 0).then_some(())
    })
    .await
    .expect("the consumer deletes what it stored");
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_bridge_acknowledges_only_what_the_queue_accepted(pool: PgPool) {
    // A queue that does not exist refuses every batch: the broker must keep the
    // messages, and the bridge deliver them once the queue is there.
    let client = sqs_client();
    let healthy = create_sensor(&pool).await;
    let name = format!("test-{}", &Identifier::new().to_string()[..8]);
    let url = format!("{}/123456789012/{name}", std::env::var("MOTO_URL").unwrap());
    let missing: std::sync::Arc<dyn Queue> =
        std::sync::Arc::new(SqsQueue::new(client.clone(), url.clone()));
    // The other topics' queues exist; a consumer takes only its own topic's messages.
    let existing = topic_queues(&client).await;
    let queues = TopicQueues::new(
        Topic::ALL
            .map(|topic| match topic {
                Topic::Measurements => (topic, missing.clone()),
                _ => (topic, existing.queue(topic).clone()),
            })
            .to_vec(),
    );

    let broker = OwnBroker::start_plain().await;
    let bridge_id = format!("bridge-{}", Identifier::new());
    let options = MqttOptions::from_url(&broker.url(), &bridge_id).unwrap();
    let mut background = spawn_background(pool.clone(), options, Some(queues)).unwrap();
    tokio::time::timeout(
        WITHIN,
        background.subscribed.wait_for(|subscribed| *subscribed),
    )
    .await
    .expect("the bridge subscribes")
    .unwrap();
    let sensor = Sensor::connect(&broker.url());
    let now = chrono::Utc::now().timestamp() - 60;
    sensor
        .publish_json(&format!("measurements/{healthy}"), measurement(now))
        .await;

    // The queue appears: the retried batch goes through and is consumed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let created = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(created.queue_url.as_deref(), Some(url.as_str()));
    eventually(WITHIN, || async {
        (measurement_count(&pool, healthy).await == 1).then_some(())
    })
    .await
    .expect("the message the queue refused at first is delivered once it exists");
}
