//! The AWS IoT data-plane publisher against a recording stand-in of the data plane's
//! HTTP API (the real endpoint needs an AWS account): what the SDK sends for a
//! configuration, and how the outbox sweep treats acceptance and refusal.

use std::sync::{Arc, Mutex};

use aws_sdk_iotdataplane::config::{BehaviorVersion, Credentials, Region};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use sensorium_functions::cloud::{IotDataPublisher, https_client};
use sensorium_functions::jobs::publish_configurations;
use sensorium_shared::domain::{Identifier, NetworkName, SensorName};
use sensorium_shared::publisher::Publisher;
use sensorium_shared::queries::{configurations, networks, sensors};
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

async fn create_configuration(pool: &PgPool) -> Identifier {
    let network = Identifier::new();
    let sensor = Identifier::new();
    networks::create_network(pool, network, &NetworkName::parse("mast").unwrap())
        .await
        .unwrap();
    sensors::create_sensor(pool, sensor, network, &SensorName::parse("one").unwrap())
        .await
        .unwrap();
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
    let published = publish_configurations::run(&pool, &publisher)
        .await
        .unwrap();
    assert_eq!(published, 1);
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
    assert!(
        publish_configurations::run(&pool, &publisher)
            .await
            .is_err()
    );
    assert!(!plane.requests.lock().unwrap().is_empty());
    assert_eq!(publication_timestamps(&pool).await, [None]);
}
