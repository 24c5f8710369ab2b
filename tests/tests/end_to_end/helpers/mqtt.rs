//! MQTT helpers of the end-to-end tests: the harness's background (bridge, outbox,
//! timers) in process, a plain MQTT client as the sensor, rows created the way the
//! REST API creates them, and a broker of the test's own to stop and restart.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use sensorium_harness::mqtt::{MqttOptions, client_options};
use sensorium_harness::queues::TopicQueues;
use sensorium_harness::server::{Background, spawn_background};
use sensorium_shared::domain::Identifier;
use sensorium_shared::queries::configurations;
use sensorium_shared::testing::{eventually, wait_until_equal};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The broker `./scripts/test` started.
pub fn broker_url() -> url::Url {
    std::env::var("MQTT_URL")
        .expect("MQTT_URL is set (run the tests through ./scripts/test)")
        .parse()
        .expect("MQTT_URL is a URL")
}

/// The bridge, outbox and timers against `url`, under a client id of their own so
/// that tests running side by side do not take over each other's session; returns
/// once the bridge is subscribed.
pub async fn spawn_mqtt(pool: PgPool, url: &url::Url) -> Background {
    spawn_mqtt_as(pool, url, &format!("bridge-{}", Identifier::new())).await
}

/// [`spawn_mqtt`] with the bridge's client id, whose session a test may look into.
pub async fn spawn_mqtt_as(pool: PgPool, url: &url::Url, client_id: &str) -> Background {
    spawn_mqtt_to(pool, url, client_id, None).await
}

/// [`spawn_mqtt_as`], the bridge sending to `queues` (if any) rather than to the topic
/// functions, and a consumer per queue feeding them, as in the cloud.
pub async fn spawn_mqtt_to(
    pool: PgPool,
    url: &url::Url,
    client_id: &str,
    queues: Option<TopicQueues>,
) -> Background {
    let options = MqttOptions::from_url(url, client_id).unwrap();
    let mut background = spawn_background(pool, options, queues).unwrap();
    // Generous: the machine running the tests may be busy compiling.
    tokio::time::timeout(
        Duration::from_secs(30),
        background.subscribed.wait_for(|subscribed| *subscribed),
    )
    .await
    .expect("the bridge subscribes within 30 s")
    .unwrap();
    background
}

/// A configuration with the sensor's next revision, stored by the REST API's query.
pub async fn create_configuration(pool: &PgPool, sensor: Identifier, value: Value) -> i32 {
    let value = value.as_object().expect("configurations are JSON objects");
    configurations::create_configuration(pool, sensor, value)
        .await
        .unwrap()
        .expect("the sensor exists")
        .get()
}

/// A plain MQTT client playing a sensor: publishes with QoS 1, and hands over what
/// arrives on its subscriptions.
pub struct Sensor {
    pub client: AsyncClient,
    pub received: mpsc::UnboundedReceiver<Publish>,
    task: JoinHandle<()>,
}

impl Sensor {
    pub fn connect(url: &url::Url) -> Self {
        Self::connect_as(url, &format!("sensor-{}", Identifier::new()))
    }

    /// A client with `client_id`, and the user and password of `url` if it has them.
    pub fn connect_as(url: &url::Url, client_id: &str) -> Self {
        let mut options = client_options(url, client_id).unwrap();
        options
            .set_max_packet_size(4 << 20, 4 << 20)
            .set_keep_alive(Duration::from_secs(30))
            .set_inflight(1000);
        let (client, mut event_loop) = AsyncClient::new(options, 1000);
        let (sender, received) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let _ = sender.send(publish);
                    }
                    Ok(_) => {}
                    // The test's own broker may be down for a while.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self {
            client,
            received,
            task,
        }
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .unwrap();
    }

    pub async fn publish_json(&self, topic: &str, payload: Value) {
        self.publish(topic, payload.to_string()).await;
    }

    pub async fn subscribe(&self, topic: &str) {
        self.client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .unwrap();
    }

    /// The next message on a subscription, within `timeout`.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Publish> {
        tokio::time::timeout(timeout, self.received.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Mosquitto of the test's own (from `$MOSQUITTO_BIN` and
/// `$MOSQUITTO_CONF_TEMPLATE`, as `./scripts/test` exports them) on a fixed port, so
/// that it can be stopped and started again at the same address. Secured like the
/// broker of `./scripts/test`, with the same admin, or a plain one.
pub struct OwnBroker {
    pub port: u16,
    directory: PathBuf,
    process: Option<Child>,
    /// Anonymous clients welcome, no plugin.
    plain: bool,
}

impl OwnBroker {
    /// A broker with the dynamic-security plugin, anonymous access off.
    pub async fn start() -> Self {
        Self::start_with(false, &[]).await
    }

    /// A plain broker: anonymous clients may do anything, nobody manages credentials.
    pub async fn start_plain() -> Self {
        Self::start_with(true, &[]).await
    }

    /// A plain broker whose configuration has `replacements` (whole lines) applied.
    pub async fn start_plain_with(replacements: &[(&str, &str)]) -> Self {
        Self::start_with(true, replacements).await
    }

    async fn start_with(plain: bool, replacements: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let directory =
            std::env::temp_dir().join(format!("sensorium-broker-{}", Identifier::new()));
        std::fs::create_dir_all(&directory).unwrap();
        let template = std::fs::read_to_string(
            std::env::var("MOSQUITTO_CONF_TEMPLATE").expect("MOSQUITTO_CONF_TEMPLATE is set"),
        )
        .unwrap();
        let mut configuration = template
            .replace("@PORT@", &port.to_string())
            .replace("@DIRECTORY@", directory.to_str().unwrap());
        if plain {
            configuration = configuration
                .lines()
                .filter(|line| !line.starts_with("plugin"))
                .map(|line| line.replace("allow_anonymous false", "allow_anonymous true") + "\n")
                .collect();
        } else {
            std::fs::copy(
                std::env::var("MOSQUITTO_DYNAMIC_SECURITY_FILE")
                    .expect("MOSQUITTO_DYNAMIC_SECURITY_FILE is set"),
                directory.join("dynamic-security.json"),
            )
            .unwrap();
        }
        for (line, replacement) in replacements {
            assert!(
                configuration.contains(line),
                "the template has no line {line}"
            );
            configuration = configuration.replace(line, replacement);
        }
        std::fs::write(directory.join("mosquitto.conf"), configuration).unwrap();
        let mut broker = Self {
            port,
            directory,
            process: None,
            plain,
        };
        broker.resume().await;
        broker
    }

    /// The broker's URL, with the admin's user and password unless it is plain.
    pub fn url(&self) -> url::Url {
        let mut url = if self.plain {
            "mqtt://127.0.0.1".parse::<url::Url>().unwrap()
        } else {
            broker_url()
        };
        url.set_port(Some(self.port)).unwrap();
        url
    }

    /// Starts the broker (again) and waits until it accepts connections.
    pub async fn resume(&mut self) {
        let process = Command::new(std::env::var("MOSQUITTO_BIN").expect("MOSQUITTO_BIN is set"))
            .arg("-c")
            .arg(self.directory.join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.process = Some(process);
        let port = self.port;
        eventually(Duration::from_secs(10), || async move {
            TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        })
        .await
        .expect("the broker listens within 10 s");
    }

    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// How long a message may take from a sensor to the database. Generous: the machines
/// running the tests may be busy compiling.
pub const STORED_WITHIN: Duration = Duration::from_secs(30);

/// Waits until `read` returns `expected`, within [`STORED_WITHIN`]; fails with the
/// last value it saw otherwise.
pub async fn wait_for<T, F, Fut>(expected: T, read: F)
where
    T: PartialEq + std::fmt::Debug,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    wait_until_equal(STORED_WITHIN, expected, read).await;
}

/// The creation timestamps of the sensor's stored measurements, in order.
pub async fn measurement_timestamps(pool: &PgPool, sensor: Identifier) -> Vec<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM creation_timestamp)::float8 FROM measurement WHERE sensor_identifier = $1 ORDER BY 1",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The creation timestamps of the sensor's stored logs, in order.
pub async fn log_timestamps(pool: &PgPool, sensor: Identifier) -> Vec<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM creation_timestamp)::float8 FROM log WHERE sensor_identifier = $1 ORDER BY 1",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A timestamp an hour ago, in whole seconds: logs need one within the 8 weeks the
/// harness's retention job keeps, or they may be deleted as soon as stored.
pub fn recent() -> f64 {
    (chrono::Utc::now().timestamp() - 3600) as f64
}

/// The broker's count of the messages it holds, retained ones included, of the
/// retained ones, and its uptime, published at each `$SYS` update (Mosquitto's).
const STORED_MESSAGES: &str = "$SYS/broker/store/messages/count";
const RETAINED_MESSAGES: &str = "$SYS/broker/retained messages/count";
const UPTIME: &str = "$SYS/broker/uptime";

/// Waits until the broker at `url` holds no message but its retained ones: every
/// message it delivered with QoS 1 was acknowledged. The broker must publish its
/// `$SYS` topics every second (`sys_interval 1`). The counts arrive retained when
/// subscribed to, and later only when they change, so they are judged once a whole
/// `$SYS` update came after the wait began (the second fresh uptime).
pub async fn wait_until_every_delivery_is_acknowledged(url: &url::Url) {
    let mut probe = Sensor::connect(url);
    for topic in [STORED_MESSAGES, RETAINED_MESSAGES, UPTIME] {
        // QoS 0: what is sent to the probe is not held for it.
        probe
            .client
            .subscribe(topic, QoS::AtMostOnce)
            .await
            .unwrap();
    }
    let (mut stored, mut retained, mut updates) = (None, None, 0);
    let deadline = tokio::time::Instant::now() + STORED_WITHIN;
    while updates < 2 || stored.is_none() || stored != retained {
        let message = tokio::time::timeout_at(deadline, probe.received.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("the broker still holds {stored:?} messages, {retained:?} of them retained")
            })
            .expect("the probe stays connected");
        let count = std::str::from_utf8(&message.payload)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok());
        match message.topic.as_str() {
            STORED_MESSAGES => stored = count,
            RETAINED_MESSAGES => retained = count,
            _ if !message.retain => updates += 1,
            _ => {}
        }
    }
}
