//! The cloud's configuration path. The AWS IoT data-plane publisher against a
//! recording stand-in of the data plane's HTTP API (to see the signed request the SDK
//! sends); how the outbox sweep treats acceptance and refusal; the wake-ups on the
//! FIFO publish queue (moto's SQS); and the age metric the publisher reports.

use std::sync::{Arc, Mutex};

use aws_sdk_iotdataplane::config::{BehaviorVersion, Credentials, Region};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use sensorium_functions::cloud::{IotDataPublisher, SqsOutboxTrigger, https_client};
use sensorium_functions::jobs::publish_configurations;
use sensorium_shared::domain::Identifier;
use sensorium_shared::publisher::{OutboxTrigger, PublishError, Publisher};
use sensorium_shared::queries::configurations;
use sqlx::PgPool;

#[derive(Debug, Clone)]
struct Request {
    path_and_query: String,
    authorization: String,
    body: Vec<u8>,
}

#[derive(Clone)]
struct DataPlane {
    requests: Arc<Mutex<Vec<Request>>>,
    status: StatusCode,
}

async fn record(
    State(plane): State<DataPlane>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    plane.requests.lock().unwrap().push(Request {
        path_and_query: uri.path_and_query().unwrap().to_string(),
        authorization,
        body: body.to_vec(),
    });
    plane.status
}

/// Serves a stand-in data plane answering `status` and returns it with a publisher
/// pointed at it.
async fn data_plane(status: StatusCode) -> (DataPlane, IotDataPublisher) {
    let plane = DataPlane {
        requests: Arc::default(),
        status,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().fallback(record).with_state(plane.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let config = aws_sdk_iotdataplane::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(format!("http://{address}"))
        .http_client(https_client())
        .build();
    let publisher = IotDataPublisher::new(aws_sdk_iotdataplane::Client::from_conf(config));
    (plane, publisher)
}

#[tokio::test]
async fn publishing_sends_a_signed_retained_qos_1_publish_to_the_topic() {
    let (plane, publisher) = data_plane(StatusCode::OK).await;
    publisher
        .publish("configurations/abc", br#"{"revision":3}"#.to_vec())
        .await
        .unwrap();
    let requests = plane.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let (path, query) = request.path_and_query.split_once('?').unwrap();
    assert_eq!(path.replace("%2F", "/"), "/topics/configurations/abc");
    let mut parameters: Vec<&str> = query.split('&').collect();
    parameters.sort_unstable();
    assert_eq!(parameters, ["qos=1", "retain=true"]);
    assert_eq!(request.body, br#"{"revision":3}"#);
    assert!(
        request
            .authorization
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{}",
        request.authorization
    );
}

/// A sensor, in a network of its own, with one configuration.
async fn create_configuration(pool: &PgPool) -> Identifier {
    let sensor = sensorium_shared::testing::create_sensor(pool).await;
    let value = serde_json::json!({"interval": 60});
    configurations::create_configuration(pool, sensor, value.as_object().unwrap())
        .await
        .unwrap()
        .unwrap();
    sensor
}

async fn publication_timestamps(pool: &PgPool) -> Vec<Option<chrono::DateTime<chrono::Utc>>> {
    sqlx::query_scalar("SELECT publication_timestamp FROM configuration")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_sweep_publishes_through_the_data_plane_and_records_it(pool: PgPool) {
    let sensor = create_configuration(&pool).await;
    let (plane, publisher) = data_plane(StatusCode::OK).await;
    let sweep = publish_configurations::run(&pool, &publisher)
        .await
        .unwrap();
    assert_eq!(sweep.published, 1);
    let requests = plane.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0]
            .path_and_query
            .replace("%2F", "/")
            .starts_with(&format!("/topics/configurations/{sensor}?"))
    );
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"revision": 0, "configuration": {"interval": 60}})
    );
    assert!(publication_timestamps(&pool).await[0].is_some());
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_refused_publication_leaves_the_configuration_in_the_outbox(pool: PgPool) {
    create_configuration(&pool).await;
    let (plane, publisher) = data_plane(StatusCode::FORBIDDEN).await;
    let sweep = publish_configurations::run(&pool, &publisher)
        .await
        .unwrap();
    assert_eq!(sweep.failed, 1);
    assert!(!plane.requests.lock().unwrap().is_empty());
    assert_eq!(publication_timestamps(&pool).await, [None]);
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempt_count, last_error FROM configuration_outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.is_some_and(|error| error.contains("403") || error.contains("Forbidden")));
}

/// A broker that refuses the topics in `refused` and records what it accepted and
/// every topic it was asked to publish to.
#[derive(Default)]
struct SelectiveBroker {
    refused: Vec<String>,
    asked: std::sync::Mutex<Vec<String>>,
    accepted: std::sync::Mutex<Vec<(String, serde_json::Value)>>,
}

impl Publisher for SelectiveBroker {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Vec<u8>,
    ) -> sensorium_shared::publisher::BoxFuture<'a, Result<(), PublishError>> {
        self.asked.lock().unwrap().push(topic.to_owned());
        let result = if self.refused.iter().any(|refused| refused == topic) {
            Err(PublishError("refused by the broker".into()))
        } else {
            let payload = serde_json::from_slice(&payload).unwrap();
            self.accepted
                .lock()
                .unwrap()
                .push((topic.to_owned(), payload));
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }
}

async fn outbox_rows(pool: &PgPool) -> Vec<(uuid::Uuid, i32, i32)> {
    sqlx::query_as(
        "SELECT sensor_identifier, revision, attempt_count FROM configuration_outbox ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_refused_configuration_backs_off_alone_while_the_others_go_out(pool: PgPool) {
    let stuck = create_configuration(&pool).await;
    let first = create_configuration(&pool).await;
    let second = create_configuration(&pool).await;
    let broker = SelectiveBroker {
        refused: vec![format!("configurations/{stuck}")],
        ..SelectiveBroker::default()
    };
    let sweep = publish_configurations::run(&pool, &broker).await.unwrap();
    assert_eq!((sweep.published, sweep.failed), (2, 1));
    let mut accepted: Vec<String> = broker
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|(topic, _)| topic.clone())
        .collect();
    accepted.sort();
    let mut expected = vec![
        format!("configurations/{first}"),
        format!("configurations/{second}"),
    ];
    expected.sort();
    assert_eq!(accepted, expected);
    assert_eq!(outbox_rows(&pool).await, [(stuck.as_uuid(), 0, 1)]);
    // Backing off: the next sweep, right away, does not try it again.
    let asked = broker.asked.lock().unwrap().len();
    let sweep = publish_configurations::run(&pool, &broker).await.unwrap();
    assert_eq!(sweep, publish_configurations::Sweep::default());
    assert_eq!(broker.asked.lock().unwrap().len(), asked);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_superseded_configuration_leaves_the_outbox_unsent(pool: PgPool) {
    let sensor = create_configuration(&pool).await;
    configurations::create_configuration(
        &pool,
        sensor,
        serde_json::json!({"interval": 5}).as_object().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(outbox_rows(&pool).await, [(sensor.as_uuid(), 1, 0)]);
    let broker = SelectiveBroker::default();
    publish_configurations::run(&pool, &broker).await.unwrap();
    assert_eq!(
        *broker.accepted.lock().unwrap(),
        [(
            format!("configurations/{sensor}"),
            serde_json::json!({"revision": 1, "configuration": {"interval": 5}})
        )]
    );
    assert!(outbox_rows(&pool).await.is_empty());
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_sweep_stops_after_three_failures_in_a_row(pool: PgPool) {
    let mut refused = Vec::new();
    for _ in 0..5 {
        refused.push(format!(
            "configurations/{}",
            create_configuration(&pool).await
        ));
    }
    let broker = SelectiveBroker {
        refused,
        ..SelectiveBroker::default()
    };
    let sweep = publish_configurations::run(&pool, &broker).await.unwrap();
    assert_eq!((sweep.published, sweep.failed), (0, 3));
    assert_eq!(broker.asked.lock().unwrap().len(), 3);
}

#[test]
fn the_backoff_doubles_up_to_fifteen_minutes() {
    use publish_configurations::backoff;
    use std::time::Duration;
    assert_eq!(backoff(0), Duration::from_secs(1));
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(5), Duration::from_secs(32));
    assert_eq!(backoff(10), Duration::from_secs(15 * 60));
    assert_eq!(backoff(i32::MAX), Duration::from_secs(15 * 60));
}

/// An SQS client of moto's server (`MOTO_URL`, started by `./scripts/test`).
fn moto_sqs() -> aws_sdk_sqs::Client {
    let url = std::env::var("MOTO_URL")
        .expect("MOTO_URL names moto's server; ./scripts/test starts one and sets it");
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .endpoint_url(url)
        .http_client(https_client())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

#[tokio::test]
async fn every_wake_puts_a_sweep_request_in_the_outbox_group_of_the_fifo_queue() {
    use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
    let client = moto_sqs();
    let name = format!("publish-{}.fifo", &Identifier::new().to_string()[..8]);
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await
        .unwrap();
    let url = queue.queue_url.unwrap();
    let trigger = SqsOutboxTrigger::new(client.clone(), url.clone());
    // Two wakes with the same body: content-based deduplication must not merge them,
    // as a sweep already running may miss the second configuration.
    trigger.wake().await;
    trigger.wake().await;
    let mut groups = Vec::new();
    for _ in 0..2 {
        let received = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            groups.push(
                message
                    .attributes()
                    .and_then(|attributes| {
                        attributes.get(&MessageSystemAttributeName::MessageGroupId)
                    })
                    .cloned()
                    .unwrap_or_default(),
            );
            client
                .delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(groups, ["outbox", "outbox"]);
}

#[tokio::test]
async fn a_wake_the_queue_refuses_is_logged_not_raised() {
    let client = moto_sqs();
    let url = format!(
        "{}/123456789012/missing-{}.fifo",
        std::env::var("MOTO_URL").unwrap(),
        Identifier::new()
    );
    // Completes: the configuration is stored, and the schedule publishes it.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        SqsOutboxTrigger::new(client, url).wake(),
    )
    .await
    .expect("a refused wake returns");
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_oldest_unpublished_age_counts_only_configurations_still_waiting(pool: PgPool) {
    use sensorium_shared::queries::outbox::read_oldest_unpublished_age;
    assert_eq!(read_oldest_unpublished_age(&pool).await.unwrap(), 0.0);
    let sensor = create_configuration(&pool).await;
    sqlx::query("UPDATE configuration SET creation_timestamp = now() - interval '10 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    let age = read_oldest_unpublished_age(&pool).await.unwrap();
    assert!((600.0..660.0).contains(&age), "{age}");
    configurations::create_configuration(
        &pool,
        sensor,
        serde_json::json!({"interval": 30}).as_object().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    // The newer one supersedes the old: only its own (short) wait counts.
    assert!(read_oldest_unpublished_age(&pool).await.unwrap() < 60.0);
}

#[test]
fn the_oldest_unpublished_age_is_reported_in_embedded_metric_format() {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let metric = publish_configurations::oldest_unpublished_metric("production", 42.5, now);
    assert_eq!(
        metric,
        serde_json::json!({
            "_aws": {
                "Timestamp": 1_700_000_000_000_i64,
                "CloudWatchMetrics": [{
                    "Namespace": "Sensorium",
                    "Dimensions": [["Environment"]],
                    "Metrics": [{"Name": "OldestUnpublishedConfigurationAge", "Unit": "Seconds"}],
                }],
            },
            "Environment": "production",
            "OldestUnpublishedConfigurationAge": 42.5,
        })
    );
}
