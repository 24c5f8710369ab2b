//! The queue path against moto's SQS server (`MOTO_URL`, started by `./scripts/test`):
//! Mosquitto → bridge (queue mode) → SQS → consumer (as Lambda's event-source mapping)
//! → topic function → PostgreSQL, with an outage retried, a poison message ending in
//! the dead-letter queue, and the redrive that brings it back. Nothing lost, nothing
//! stored twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::helpers::mqtt::{OwnBroker, Sensor, spawn_mqtt_to};
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use sensorium_functions::cloud::{SqsQueue, https_client};
use sensorium_functions::topics::Topic;
use sensorium_harness::queues::{self, TopicQueues};
use sensorium_shared::domain::Identifier;
use sensorium_shared::queue::{BoxFuture, Outgoing, Queue, QueueError, Received};
use sensorium_shared::testing::eventually;
use sensorium_shared::testing::{
    create_sensor, end_fault, fault_hits, inject_fault, install_fault_injection,
};
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

/// An SQS queue that counts the batches sent to it: the test sees when the bridge has
/// tried to send.
struct CountingQueue {
    queue: SqsQueue,
    sent_batches: AtomicUsize,
}

impl Queue for CountingQueue {
    fn url(&self) -> &str {
        self.queue.url()
    }

    fn send_batch<'a>(
        &'a self,
        messages: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<String>, QueueError>> {
        self.sent_batches.fetch_add(1, Ordering::SeqCst);
        self.queue.send_batch(messages)
    }

    fn receive(
        &self,
        maximum: usize,
        wait: Duration,
        visibility_timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Vec<Received>, QueueError>> {
        self.queue.receive(maximum, wait, visibility_timeout)
    }

    fn delete_batch<'a>(
        &'a self,
        receipt_handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, QueueError>> {
        self.queue.delete_batch(receipt_handles)
    }

    fn dead_letter_queue_url(&self) -> BoxFuture<'_, Result<Option<String>, QueueError>> {
        self.queue.dead_letter_queue_url()
    }
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
    inject_fault(&pool, None).await;
    inject_fault(&pool, Some(poison)).await;

    let broker = OwnBroker::start_plain().await;
    let bridge_id = format!("bridge-{}", Identifier::new());
    let _background = spawn_mqtt_to(pool.clone(), &broker.url(), &bridge_id, Some(queues)).await;

    // More messages than one SendMessageBatch takes, so the bridge splits them.
    let sensor = Sensor::connect(&broker.url());
    let now = chrono::Utc::now().timestamp() - 60;
    for index in 0..25 {
        sensor
            .publish_json(&format!("measurements/{healthy}"), measurement(now - index))
            .await;
    }

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
    end_fault(&pool, None).await;
    eventually(WITHIN, || async {
        (measurement_count(&pool, healthy).await == 25).then_some(())
    })
    .await
    .expect("every message of the healthy sensor is stored after the outage");

    // The poison message fails at every receive until the queue moves it aside. Sent
    // after the outage, so that each refused insert from now on is one of its receives
    // (during the outage one insert may fail a batch of several messages).
    let hits_before = fault_hits(&pool).await;
    sensor
        .publish_json(&format!("measurements/{poison}"), measurement(now))
        .await;
    eventually(WITHIN, || async {
        (visible_messages(&client, &dead_letter_url).await == 1).then_some(())
    })
    .await
    .expect("the poison message reaches the dead-letter queue");
    assert_eq!(measurement_count(&pool, poison).await, 0);
    let hits = fault_hits(&pool).await - hits_before;
    assert!(
        hits >= i64::from(MAX_RECEIVE_COUNT),
        "the poison message was tried at each of its receives: {hits} refused inserts"
    );

    // Fixed, it is redriven and stored; nothing is left behind, nothing doubled.
    end_fault(&pool, Some(poison)).await;
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
    let missing = Arc::new(CountingQueue {
        queue: SqsQueue::new(client.clone(), url.clone()),
        sent_batches: AtomicUsize::new(0),
    });
    // The other topics' queues exist; a consumer takes only its own topic's messages.
    let existing = topic_queues(&client).await;
    let queues = TopicQueues::new(
        Topic::ALL
            .map(|topic| match topic {
                Topic::Measurements => (topic, missing.clone() as Arc<dyn Queue>),
                _ => (topic, existing.queue(topic).clone()),
            })
            .to_vec(),
    );

    let broker = OwnBroker::start_plain().await;
    let bridge_id = format!("bridge-{}", Identifier::new());
    let _background = spawn_mqtt_to(pool.clone(), &broker.url(), &bridge_id, Some(queues)).await;
    let sensor = Sensor::connect(&broker.url());
    let now = chrono::Utc::now().timestamp() - 60;
    sensor
        .publish_json(&format!("measurements/{healthy}"), measurement(now))
        .await;

    // Once the bridge tried to send it, the queue appears: the retried batch goes
    // through and is consumed.
    eventually(WITHIN, || async {
        (missing.sent_batches.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await
    .expect("the bridge sends to the queue");
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
