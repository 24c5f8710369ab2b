//! Sensor identity end to end: credentials issued over REST are enforced by a real
//! Mosquitto with its dynamic-security plugin. A sensor may publish only to its own
//! topics and read only its own configuration; replaced or revoked credentials stop
//! working at once; a plain broker keeps working without credentials (501).

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::mqtt::{OwnBroker, broker_url, spawn_mqtt};
use crate::helpers::scene::{Scene, create_sensor, create_user, now};
use crate::helpers::{TestApp, error};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS, SubscribeReasonCode};
use sensorium_harness::credentials::MosquittoCredentials;
use sensorium_harness::mqtt::MqttOptions;
use sensorium_harness::server::Background;
use sensorium_shared::credentials::NoCredentials;
use sensorium_shared::domain::Identifier;
use sensorium_shared::testing::eventually;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const DEADLINE: Duration = Duration::from_secs(10);
/// How long a test waits for something that must not happen.
const QUIET: Duration = Duration::from_millis(500);

/// The harness against the broker at `url`: bridge, outbox and HTTP server, with
/// credentials managed through the broker's dynamic-security plugin.
async fn spawn_secured(pool: PgPool, url: &url::Url) -> (Background, TestApp) {
    let background = spawn_mqtt(pool.clone(), url).await;
    let options = MqttOptions::from_url(url, &format!("server-{}", Identifier::new())).unwrap();
    let app = TestApp::spawn_with(
        pool,
        background.outbox.clone(),
        Arc::new(MosquittoCredentials::new(options)),
    )
    .await;
    (background, app)
}

/// One MQTT connection as a sensor makes it, which ends at its first error: what it
/// received, and whether the broker closed it.
struct Connection {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, String>>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Connects to the broker at `url` as `client_id` with `login` (anonymously without
    /// one); the broker's refusal is an `Err`.
    async fn open(
        url: &url::Url,
        client_id: &str,
        login: Option<(&str, &str)>,
    ) -> Result<Self, String> {
        let mut options =
            rumqttc::MqttOptions::new(client_id, url.host_str().unwrap(), url.port().unwrap());
        options.set_keep_alive(Duration::from_secs(30));
        if let Some((user_name, password)) = login {
            options.set_credentials(user_name, password);
        }
        let (client, mut event_loop) = AsyncClient::new(options, 10);
        let (sender, mut events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        let _ = sender.send(Ok(packet));
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(error) => {
                        let _ = sender.send(Err(error.to_string()));
                        return;
                    }
                }
            }
        });
        match tokio::time::timeout(DEADLINE, events.recv()).await {
            Ok(Some(Ok(Packet::ConnAck(_)))) => Ok(Self {
                client,
                events,
                task,
            }),
            Ok(Some(Err(error))) => Err(error),
            other => panic!("no ConnAck and no error: {other:?}"),
        }
    }

    /// Connects with the credentials a `POST .../credentials` answered.
    async fn open_with(url: &url::Url, credentials: &Value) -> Result<Self, String> {
        let client_id = credentials["client_identifier"].as_str().unwrap();
        let login = (
            credentials["user_name"].as_str().unwrap(),
            credentials["password"].as_str().unwrap(),
        );
        Self::open(url, client_id, Some(login)).await
    }

    /// The next packet within `timeout`, `Err` if the connection ended.
    async fn next(&mut self, timeout: Duration) -> Option<Result<Packet, String>> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    async fn subscribe(&mut self, topic: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .unwrap();
        loop {
            match self.next(DEADLINE).await {
                Some(Ok(Packet::SubAck(suback))) => return suback.return_codes[0],
                Some(Ok(_)) => {}
                other => panic!("no SubAck for {topic}: {other:?}"),
            }
        }
    }

    /// The next message published to this connection within `timeout`.
    async fn next_publish(&mut self, timeout: Duration) -> Option<Publish> {
        loop {
            match self.next(timeout).await {
                Some(Ok(Packet::Publish(publish))) => return Some(publish),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }

    /// Publishes with QoS 1 and waits for the broker's PUBACK.
    async fn publish(&mut self, topic: &str, payload: &Value) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_string())
            .await
            .unwrap();
        loop {
            match self.next(DEADLINE).await {
                Some(Ok(Packet::PubAck(_))) => return,
                Some(Ok(_)) => {}
                other => panic!("no PubAck for {topic}: {other:?}"),
            }
        }
    }

    /// Publishes a measurement of `temperature` to the topic of `sensor`, as
    /// [`Connection::publish`].
    async fn publish_measurement(&mut self, sensor: &str, temperature: f64) {
        self.publish(&format!("measurements/{sensor}"), &measurement(temperature))
            .await;
    }

    /// Whether the broker closes the connection within `timeout`.
    async fn is_closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return true,
                Err(_) => return false,
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn measurement(temperature: f64) -> Value {
    json!({"measurements": [{"timestamp": now(), "value": {"temperature": temperature}}]})
}

/// The sensor's stored measurements, through the REST API.
async fn measurements_of(app: &TestApp, scene: &Scene, sensor: &str) -> Vec<Value> {
    let path = format!("/networks/{}/sensors/{sensor}/measurements", scene.network);
    let (status, body) = app.get(&path, scene.token()).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

/// Polls until the sensor has `count` measurements stored.
async fn wait_for_measurements(app: &TestApp, scene: &Scene, sensor: &str, count: usize) {
    eventually(DEADLINE, || async {
        (measurements_of(app, scene, sensor).await.len() == count).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{sensor} did not get {count} measurements within {DEADLINE:?}"));
}

async fn issue(app: &TestApp, scene: &Scene, sensor: &str) -> Value {
    let path = format!("/networks/{}/sensors/{sensor}/credentials", scene.network);
    let (status, body) = app
        .request(reqwest::Method::POST, &path, scene.token(), None)
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn status_of(app: &TestApp, scene: &Scene, sensor: &str) -> Value {
    let path = format!("/networks/{}/sensors/{sensor}", scene.network);
    let (status, body) = app.get(&path, scene.token()).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_sensor_with_credentials_reaches_its_own_topics_and_no_others(pool: PgPool) {
    let url = broker_url();
    let (_background, app) = spawn_secured(pool, &url).await;
    let scene = Scene::create(&app).await;
    let own = scene.sensor.clone();
    let other = create_sensor(&app, &scene.user.access_token, &scene.network, "orchard").await;

    let credentials = issue(&app, &scene, &own).await;
    assert_eq!(credentials["kind"], "password");
    assert_eq!(credentials["client_identifier"], own.as_str());
    assert_eq!(credentials["user_name"], own.as_str());
    let password = credentials["password"].as_str().unwrap();
    assert!(password.len() >= 32, "at least 128 bits: {password}");
    assert!(status_of(&app, &scene, &own).await["credentials_timestamp"].is_f64());
    assert!(status_of(&app, &scene, &other).await["credentials_timestamp"].is_null());

    // Both sensors have a configuration, published retained.
    for sensor in [&own, &other] {
        let path = format!(
            "/networks/{}/sensors/{sensor}/configurations",
            scene.network
        );
        let (status, _) = app.post(&path, scene.token(), json!({"for": sensor})).await;
        assert_eq!(status, 201);
        eventually(DEADLINE, || async {
            let (_, body) = app.get(&path, scene.token()).await;
            body[0]["publication_timestamp"].is_f64().then_some(())
        })
        .await
        .expect("the configuration is published");
    }

    let mut sensor = Connection::open_with(&url, &credentials).await.unwrap();
    // Its own configuration arrives, retained.
    assert_eq!(
        sensor.subscribe(&format!("configurations/{own}")).await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let configuration = sensor
        .next_publish(DEADLINE)
        .await
        .expect("its configuration");
    let configuration: Value = serde_json::from_slice(&configuration.payload).unwrap();
    assert_eq!(configuration["configuration"], json!({"for": own}));
    // Another sensor's is refused, and nothing arrives.
    assert_eq!(
        sensor.subscribe(&format!("configurations/{other}")).await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(
        sensor.subscribe("configurations/#").await,
        SubscribeReasonCode::Failure
    );
    assert!(sensor.next_publish(QUIET).await.is_none());

    // What it publishes as itself is stored; as the other sensor, nothing: Mosquitto
    // 2.0 drops the message and closes the connection.
    sensor.publish_measurement(&own, 21.5).await;
    wait_for_measurements(&app, &scene, &own, 1).await;
    sensor
        .client
        .publish(
            format!("measurements/{other}"),
            QoS::AtLeastOnce,
            false,
            measurement(99.0).to_string(),
        )
        .await
        .unwrap();
    assert!(sensor.is_closed_within(DEADLINE).await);
    // A message the server's own user publishes for the other sensor, after the
    // refused one, on the same topic and lane: once it is stored, the refused one would
    // have been too.
    let admin = (url.username(), url.password().unwrap());
    let mut server = Connection::open(&url, &format!("admin-{}", Identifier::new()), Some(admin))
        .await
        .unwrap();
    server.publish_measurement(&other, 1.0).await;
    wait_for_measurements(&app, &scene, &other, 1).await;
    assert_eq!(
        measurements_of(&app, &scene, &other).await[0]["value"],
        json!({"temperature": 1.0})
    );

    // The sensor was seen; the other only through the server's message.
    let status = status_of(&app, &scene, &own).await;
    assert!(
        status["last_seen_timestamp"].as_f64().unwrap() > now() - 60.0,
        "{status}"
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn anonymous_clients_and_wrong_passwords_cannot_connect(pool: PgPool) {
    let url = broker_url();
    let (_background, app) = spawn_secured(pool, &url).await;
    let scene = Scene::create(&app).await;
    let credentials = issue(&app, &scene, &scene.sensor).await;

    let anonymous = Connection::open(&url, &scene.sensor, None).await;
    assert!(anonymous.is_err(), "an anonymous client connected");
    let wrong = Connection::open(
        &url,
        &scene.sensor,
        Some((&scene.sensor, "0".repeat(64).as_str())),
    )
    .await;
    assert!(wrong.is_err(), "a wrong password connected");
    // Under another client id, even the right password is refused.
    let password = credentials["password"].as_str().unwrap();
    let other_id = Connection::open(&url, "someone-else", Some((&scene.sensor, password))).await;
    assert!(other_id.is_err(), "another client id connected");
    assert!(Connection::open_with(&url, &credentials).await.is_ok());
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn issuing_again_replaces_the_password_and_revoking_disconnects(pool: PgPool) {
    let url = broker_url();
    let (_background, app) = spawn_secured(pool, &url).await;
    let scene = Scene::create(&app).await;

    let first = issue(&app, &scene, &scene.sensor).await;
    let mut connected = Connection::open_with(&url, &first).await.unwrap();
    let first_timestamp = status_of(&app, &scene, &scene.sensor).await["credentials_timestamp"]
        .as_f64()
        .unwrap();

    let second = issue(&app, &scene, &scene.sensor).await;
    assert_ne!(first["password"], second["password"]);
    assert!(
        connected.is_closed_within(DEADLINE).await,
        "the connection with the old password stays open"
    );
    assert!(Connection::open_with(&url, &first).await.is_err());
    let mut connected = Connection::open_with(&url, &second).await.unwrap();
    let second_timestamp = status_of(&app, &scene, &scene.sensor).await["credentials_timestamp"]
        .as_f64()
        .unwrap();
    assert!(second_timestamp > first_timestamp);

    let path = scene.sensor_path("/credentials");
    let (status, body) = app.delete(&path, scene.token()).await;
    assert_eq!((status, body), (204, Value::Null));
    assert!(
        connected.is_closed_within(DEADLINE).await,
        "the revoked sensor's connection stays open"
    );
    assert!(Connection::open_with(&url, &second).await.is_err());
    assert!(status_of(&app, &scene, &scene.sensor).await["credentials_timestamp"].is_null());
    // Revoking what is revoked already is done too.
    assert_eq!(app.delete(&path, scene.token()).await.0, 204);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn credentials_outlive_a_restart_of_the_harness_and_the_broker(pool: PgPool) {
    let mut broker = OwnBroker::start().await;
    let url = broker.url();
    let (background, app) = spawn_secured(pool.clone(), &url).await;
    let scene = Scene::create(&app).await;
    let credentials = issue(&app, &scene, &scene.sensor).await;
    let issued_at = status_of(&app, &scene, &scene.sensor).await["credentials_timestamp"].clone();
    drop(background);
    drop(app);

    // The plugin saved its clients in its file; the database has the timestamp.
    broker.stop();
    broker.resume().await;
    let (_background, app) = spawn_secured(pool, &url).await;
    assert_eq!(
        status_of(&app, &scene, &scene.sensor).await["credentials_timestamp"],
        issued_at
    );
    let mut sensor = Connection::open_with(&url, &credentials).await.unwrap();
    sensor.publish_measurement(&scene.sensor, 20.0).await;
    wait_for_measurements(&app, &scene, &scene.sensor, 1).await;

    let (status, _) = app
        .delete(&scene.sensor_path("/credentials"), scene.token())
        .await;
    assert_eq!(status, 204);
    assert!(sensor.is_closed_within(DEADLINE).await);
    broker.stop();
    broker.resume().await;
    assert!(
        Connection::open_with(&url, &credentials).await.is_err(),
        "revoked credentials came back with the broker"
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn on_a_plain_broker_credentials_are_not_implemented_and_ingest_works(pool: PgPool) {
    let broker = OwnBroker::start_plain().await;
    let url = broker.url();
    let background = spawn_mqtt(pool.clone(), &url).await;
    let app = TestApp::spawn_with(pool, background.outbox.clone(), Arc::new(NoCredentials)).await;
    let scene = Scene::create(&app).await;

    let path = scene.sensor_path("/credentials");
    let (status, body) = app
        .request(reqwest::Method::POST, &path, scene.token(), None)
        .await;
    assert_eq!((status, body), error(501));
    let (status, body) = app.delete(&path, scene.token()).await;
    assert_eq!((status, body), error(501));
    assert!(status_of(&app, &scene, &scene.sensor).await["credentials_timestamp"].is_null());

    let mut sensor = Connection::open(&url, &scene.sensor, None).await.unwrap();
    sensor.publish_measurement(&scene.sensor, 20.0).await;
    wait_for_measurements(&app, &scene, &scene.sensor, 1).await;
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn credentials_routes_check_the_request_before_the_broker(pool: PgPool) {
    let url = broker_url();
    let (_background, app) = spawn_secured(pool, &url).await;
    let scene = Scene::create(&app).await;
    let stranger = create_user(&app, "mallory").await;
    let unknown = Identifier::new();
    let network = &scene.network;
    let cases = [
        (
            format!("/networks/{network}/sensors/not-a-uuid/credentials"),
            scene.token(),
            400,
        ),
        (scene.sensor_path("/credentials"), None, 401),
        (
            format!("/networks/{network}/sensors/{unknown}/credentials"),
            scene.token(),
            404,
        ),
        (
            scene.sensor_path("/credentials"),
            Some(stranger.access_token.as_str()),
            403,
        ),
    ];
    for (path, token, expected) in cases {
        for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
            let (status, body) = app.request(method.clone(), &path, token, None).await;
            assert_eq!(status, expected, "{method} {path}: {body}");
        }
    }
    assert!(status_of(&app, &scene, &scene.sensor).await["credentials_timestamp"].is_null());
}
