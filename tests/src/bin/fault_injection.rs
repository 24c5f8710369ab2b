//! `fault_injection <harness binary> <output directory> [SCENARIO...]`: the scenarios
//! (all, or those of the numbers given) of
//! `./scripts/fault-injection`, against the PostgreSQL of `DATABASE_URL` and the
//! broker of `MQTT_URL`. Faults are asked of the script, which owns the services: a
//! request per line on standard output (`postgres-stop`, `postgres-start`,
//! `mosquitto-restart`), one answer per line on standard input (`ok`, for the broker
//! `ok <port>`). Progress goes to standard error, each harness's log to the output
//! directory, the figures to `<output directory>/report.json`. Exits non-zero when a
//! scenario lost or duplicated anything or missed its promise.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use sensorium_harness::mqtt::open_bridge_session;
use sensorium_harness::seed;
use sensorium_shared::domain::Identifier;
use sensorium_shared::queries::configurations::create_configuration;
use sensorium_shared::{database, settings};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

/// The sensors' stream: messages a second, spread over this many sensors.
const STREAM_RATE: usize = 500;
const STREAM_SENSORS: usize = 5;
/// Streaming before the fault and after its end.
const BEFORE_FAULT: Duration = Duration::from_secs(3);
const AFTER_FAULT: Duration = Duration::from_secs(5);
/// Longest wait for everything to be stored (or published) once the fault ended.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(120);
/// Clients sending REST requests at once, and the pause of each between requests.
const REST_CLIENTS: usize = 4;
const REST_PAUSE: Duration = Duration::from_millis(20);
/// What "answers within a second" means for a request while the database is down.
const OUTAGE_ANSWER_LIMIT: Duration = Duration::from_secs(1);
/// Sensors given a configuration in the publication scenario.
const CONFIGURED_SENSORS: usize = 500;
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The figures of one scenario; `None` where a figure does not apply.
#[derive(Debug, Default, Serialize)]
struct Figures {
    scenario: String,
    promise: String,
    /// Messages the broker acknowledged to the publisher; requests sent; configurations
    /// created.
    sent: usize,
    /// Distinct messages stored; requests answered 2xx; configurations published.
    stored: usize,
    /// Rows beyond one per distinct message (or bucket counts beyond it).
    duplicated: Option<usize>,
    /// Sent but not stored; requests failed after the fault ended; configurations not
    /// published or not the retained one.
    lost: usize,
    /// From the fault's end to the first success, and to everything stored.
    first_success_seconds: Option<f64>,
    everything_seconds: Option<f64>,
    /// Scenario-specific figures.
    details: serde_json::Map<String, serde_json::Value>,
    /// How the scenario missed its promise; empty when it kept it.
    failures: Vec<String>,
}

impl Figures {
    fn new(scenario: &str, promise: &str) -> Self {
        Self {
            scenario: scenario.into(),
            promise: promise.into(),
            ..Self::default()
        }
    }

    fn detail(&mut self, key: &str, value: impl Serialize) {
        self.details.insert(
            key.into(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
    }

    fn require(&mut self, condition: bool, failure: impl Into<String>) {
        if !condition {
            self.failures.push(failure.into());
        }
    }
}

/// The script's side of the faults: requests on standard output, answers on
/// standard input. Each request waits for the script (a second or two), so it blocks
/// its thread rather than the runtime.
struct Control;

impl Control {
    /// Asks the script for `action` and returns what followed `ok` in its answer.
    fn request(&mut self, action: &str) -> anyhow::Result<String> {
        use std::io::{BufRead, Write};
        tokio::task::block_in_place(|| {
            let mut requests = std::io::stdout().lock();
            writeln!(requests, "{action}")?;
            requests.flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            anyhow::ensure!(!answer.is_empty(), "the script did not answer {action}");
            match answer.trim_end().strip_prefix("ok") {
                Some(rest) => Ok(rest.trim().to_string()),
                None => anyhow::bail!("{action} failed: {}", answer.trim_end()),
            }
        })
    }
}

struct Driver {
    harness_binary: PathBuf,
    output: PathBuf,
    pool: PgPool,
    mqtt_url: url::Url,
    control: Control,
    http: reqwest::Client,
    harnesses_started: usize,
}

/// A harness process; killed (SIGKILL) when dropped.
struct Harness {
    child: Child,
    base_url: String,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts `harness serve` with the bridge's client id `client_id`, and waits for
    /// its HTTP server.
    async fn start_harness(&mut self, scenario: &str, client_id: &str) -> anyhow::Result<Harness> {
        self.harnesses_started += 1;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        // "scenario-1-harness-1.log": the scenario's number, then the harness's.
        let number = scenario.split(' ').next().unwrap_or_default();
        let log_path = self.output.join(format!(
            "scenario-{number}-harness-{}.log",
            self.harnesses_started
        ));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(&self.harness_binary)
            .arg("serve")
            .env("MQTT_CLIENT_ID", client_id)
            .env("HTTP_ADDRESS", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            // Standard output is the script's channel: never the harness's.
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.harness_binary.display()))?;
        let harness = Harness {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            let answered = self
                .http
                .get(format!("{}/status", harness.base_url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if answered {
                return Ok(harness);
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the harness did not serve HTTP within 30 s (see {})",
                log_path.display()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// A network of `count` new sensors.
    async fn create_sensors(&self, count: usize) -> anyhow::Result<Vec<Identifier>> {
        let name = format!("fault-injection-{}", Identifier::new());
        seed::create_network_of_sensors(&self.pool, &name, count).await
    }
}

fn client_options(url: &url::Url, client_id: &str, clean_session: bool) -> MqttOptions {
    sensorium_harness::mqtt::bulk_client_options(url, client_id, clean_session)
        .expect("MQTT_URL names a broker")
}

fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

// --- The sensors' stream ----------------------------------------------------------------

/// What the stream's publisher saw: when the broker acknowledged each message (by its
/// index), and whether the broker ever lost the publisher's session.
#[derive(Default)]
struct Acknowledgements {
    at: Vec<Option<Instant>>,
    session_lost: bool,
}

/// A stream of QoS 1 messages, one measurement each, `{"index": i}` naming message i,
/// at `STREAM_RATE` over `sensors`, from a client with a persistent session (so a
/// restarted broker gets what it had not acknowledged again, as from a sensor).
struct Stream {
    stop: Arc<AtomicBool>,
    acknowledgements: Arc<Mutex<Acknowledgements>>,
    publisher: tokio::task::JoinHandle<anyhow::Result<usize>>,
    event_loop: tokio::task::JoinHandle<()>,
}

impl Stream {
    fn start(url: &url::Url, sensors: Vec<Identifier>) -> Self {
        let options = client_options(url, &format!("fault-stream-{}", Identifier::new()), false);
        let (client, mut event_loop) = AsyncClient::new(options, 10_000);
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledgements = Arc::new(Mutex::new(Acknowledgements::default()));
        // Indices in the order they were handed to the client, which sends them in
        // that order; a packet identifier maps to its message until acknowledged.
        let handed = Arc::new(Mutex::new(VecDeque::<usize>::new()));
        let publisher = {
            let stop = stop.clone();
            let handed = handed.clone();
            let acknowledgements = acknowledgements.clone();
            tokio::spawn(async move {
                let per_tick = STREAM_RATE / 100;
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut index = 0;
                while !stop.load(Ordering::Relaxed) {
                    interval.tick().await;
                    for _ in 0..per_tick {
                        let sensor = sensors[index % sensors.len()];
                        let payload = format!(
                            r#"{{"measurements": [{{"timestamp": {}, "value": {{"index": {index}}}}}]}}"#,
                            1_700_000_000 + index
                        );
                        handed.lock().unwrap().push_back(index);
                        acknowledgements.lock().unwrap().at.push(None);
                        client
                            .publish(
                                format!("measurements/{sensor}"),
                                QoS::AtLeastOnce,
                                false,
                                payload,
                            )
                            .await?;
                        index += 1;
                    }
                }
                anyhow::Ok(index)
            })
        };
        let event_loop = {
            let acknowledgements = acknowledgements.clone();
            tokio::spawn(async move {
                let mut in_flight = HashMap::<u16, usize>::new();
                let mut connections = 0;
                loop {
                    match event_loop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                            connections += 1;
                            if connections > 1 && !connack.session_present {
                                acknowledgements.lock().unwrap().session_lost = true;
                            }
                        }
                        Ok(Event::Outgoing(Outgoing::Publish(packet_id))) => {
                            // A packet identifier still in flight is a message sent
                            // again after a reconnection.
                            if let std::collections::hash_map::Entry::Vacant(entry) =
                                in_flight.entry(packet_id)
                                && let Some(index) = handed.lock().unwrap().pop_front()
                            {
                                entry.insert(index);
                            }
                        }
                        Ok(Event::Incoming(Packet::PubAck(puback))) => {
                            if let Some(index) = in_flight.remove(&puback.pkid) {
                                let mut acknowledgements = acknowledgements.lock().unwrap();
                                acknowledgements.at[index].get_or_insert_with(Instant::now);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            })
        };
        Self {
            stop,
            acknowledgements,
            publisher,
            event_loop,
        }
    }

    /// Messages whose index is below the returned one were all acknowledged before
    /// `instant`.
    fn acknowledged_prefix_before(&self, instant: Instant) -> usize {
        let acknowledgements = self.acknowledgements.lock().unwrap();
        acknowledgements
            .at
            .iter()
            .position(|at| !at.is_some_and(|at| at < instant))
            .unwrap_or(acknowledgements.at.len())
    }

    /// Stops publishing and waits (up to `deadline`) for the broker to acknowledge
    /// every message handed to the client; returns the acknowledged indices, how many
    /// were handed, and whether the broker lost the publisher's session.
    async fn finish(
        &mut self,
        deadline: Duration,
    ) -> anyhow::Result<(BTreeSet<usize>, usize, bool)> {
        self.stop.store(true, Ordering::Relaxed);
        let published = (&mut self.publisher).await??;
        let started = Instant::now();
        loop {
            let acknowledged = self
                .acknowledgements
                .lock()
                .unwrap()
                .at
                .iter()
                .filter(|at| at.is_some())
                .count();
            if acknowledged == published || started.elapsed() > deadline {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let acknowledgements = self.acknowledgements.lock().unwrap();
        let acknowledged = acknowledgements
            .at
            .iter()
            .enumerate()
            .filter_map(|(index, at)| at.map(|_| index))
            .collect();
        Ok((acknowledged, published, acknowledgements.session_lost))
    }
}

/// A scenario that fails half-way leaves no stream behind.
impl Drop for Stream {
    fn drop(&mut self) {
        self.publisher.abort();
        self.event_loop.abort();
    }
}

/// Rows of the stream's sensors, their distinct messages, and the sensors' bucket counts.
async fn stored_counts(pool: &PgPool, sensors: &[Identifier]) -> anyhow::Result<(i64, i64, i64)> {
    let sensors: Vec<uuid::Uuid> = sensors.iter().map(Identifier::as_uuid).collect();
    Ok(sqlx::query_as(
        r#"
        SELECT count(*), count(DISTINCT value->>'index'),
            (SELECT coalesce(sum(measurement_count), 0)::bigint FROM measurement_bucket
             WHERE sensor_identifier = ANY($1))
        FROM measurement WHERE sensor_identifier = ANY($1)
        "#,
    )
    .bind(&sensors)
    .fetch_one(pool)
    .await?)
}

async fn stored_rows(pool: &PgPool, sensors: &[Identifier]) -> anyhow::Result<i64> {
    let sensors: Vec<uuid::Uuid> = sensors.iter().map(Identifier::as_uuid).collect();
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM measurement WHERE sensor_identifier = ANY($1)")
            .bind(&sensors)
            .fetch_one(pool)
            .await?,
    )
}

/// Distinct messages stored whose index is below `below`.
async fn stored_below(pool: &PgPool, sensors: &[Identifier], below: usize) -> anyhow::Result<i64> {
    let sensors: Vec<uuid::Uuid> = sensors.iter().map(Identifier::as_uuid).collect();
    Ok(sqlx::query_scalar(
        "SELECT count(DISTINCT value->>'index') FROM measurement
         WHERE sensor_identifier = ANY($1) AND (value->>'index')::float8 < $2",
    )
    .bind(&sensors)
    .bind(below as f64)
    .fetch_one(pool)
    .await?)
}

async fn stored_indices(pool: &PgPool, sensors: &[Identifier]) -> anyhow::Result<BTreeSet<usize>> {
    let sensors: Vec<uuid::Uuid> = sensors.iter().map(Identifier::as_uuid).collect();
    let indices: Vec<f64> = sqlx::query_scalar(
        "SELECT DISTINCT (value->>'index')::float8 FROM measurement WHERE sensor_identifier = ANY($1)",
    )
    .bind(&sensors)
    .fetch_all(pool)
    .await?;
    Ok(indices.into_iter().map(|index| index as usize).collect())
}

/// The fault of an ingest scenario.
#[derive(Clone, Copy)]
enum IngestFault {
    PostgresDown(Duration),
    BrokerRestart,
}

/// A stream through the harness, a fault in its middle, then: every message the
/// broker acknowledged stored exactly once.
async fn ingest_scenario(
    driver: &mut Driver,
    name: &str,
    promise: &str,
    fault: IngestFault,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::new(name, promise);
    let sensors = driver.create_sensors(STREAM_SENSORS).await?;
    let client_id = format!("fault-bridge-{}", Identifier::new());
    open_bridge_session(&driver.mqtt_url, &client_id).await?;
    let harness = driver.start_harness(name, &client_id).await?;
    let mut stream = Stream::start(&driver.mqtt_url, sensors.clone());
    tokio::time::sleep(BEFORE_FAULT).await;
    let before = stored_rows(&driver.pool, &sensors).await?;
    figures.require(before > 0, "nothing was stored before the fault");
    figures.detail("stored_before_fault", before);

    let fault_start = Instant::now();
    match fault {
        IngestFault::PostgresDown(duration) => {
            eprintln!("    stopping PostgreSQL for {} s", duration.as_secs());
            driver.control.request("postgres-stop")?;
            tokio::time::sleep(duration).await;
            driver.control.request("postgres-start")?;
        }
        IngestFault::BrokerRestart => {
            eprintln!("    restarting Mosquitto");
            let port = driver.control.request("mosquitto-restart")?;
            anyhow::ensure!(
                port == driver.mqtt_url.port().unwrap_or(1883).to_string(),
                "the broker came back on another port ({port})"
            );
        }
    }
    let fault_end = Instant::now();
    figures.detail("fault_seconds", seconds(fault_end - fault_start));
    let backlog = stream.acknowledged_prefix_before(fault_end);
    figures.detail("acknowledged_before_fault_end", backlog);

    // Recovery, while the stream goes on: the first new row, then the backlog (every
    // message acknowledged before the fault ended) stored.
    let at_end = stored_rows(&driver.pool, &sensors).await?;
    let stream_end = fault_end + AFTER_FAULT;
    let (mut first_success, mut everything) = (None, None);
    while everything.is_none() && fault_end.elapsed() < RECOVERY_DEADLINE {
        if first_success.is_none() && stored_rows(&driver.pool, &sensors).await? > at_end {
            first_success = Some(fault_end.elapsed());
        }
        if first_success.is_some()
            && stored_below(&driver.pool, &sensors, backlog).await? == backlog as i64
        {
            everything = Some(fault_end.elapsed());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    figures.first_success_seconds = first_success.map(seconds);
    figures.everything_seconds = everything.map(seconds);
    figures.require(
        everything.is_some(),
        format!(
            "the messages acknowledged before the fault ended were not all stored within {} s",
            RECOVERY_DEADLINE.as_secs()
        ),
    );
    tokio::time::sleep(stream_end.saturating_duration_since(Instant::now())).await;

    let (acknowledged, published, session_lost) = stream.finish(Duration::from_secs(60)).await?;
    drop(stream);
    figures.sent = acknowledged.len();
    figures.detail("published", published);
    figures.require(
        acknowledged.len() == published,
        format!(
            "the broker acknowledged {} of {published} messages",
            acknowledged.len()
        ),
    );
    figures.require(
        !session_lost,
        "the broker lost the publisher's session across the fault",
    );
    // Everything acknowledged is stored, however long the backlog takes.
    let started = Instant::now();
    let mut stored = stored_indices(&driver.pool, &sensors).await?;
    while !acknowledged.is_subset(&stored) && started.elapsed() < RECOVERY_DEADLINE {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stored = stored_indices(&driver.pool, &sensors).await?;
    }
    // The bridge's last acknowledgements, and any late duplicate, settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(harness);
    let (rows, distinct, counted) = stored_counts(&driver.pool, &sensors).await?;
    stored = stored_indices(&driver.pool, &sensors).await?;
    figures.stored = stored.len();
    let duplicated = (rows - distinct).max(counted - distinct).max(0) as usize;
    figures.duplicated = Some(duplicated);
    figures.detail("rows", rows);
    figures.detail("bucket_count", counted);
    figures.lost = acknowledged.difference(&stored).count();
    figures.require(
        figures.lost == 0,
        format!("{} acknowledged messages were lost", figures.lost),
    );
    figures.require(duplicated == 0, format!("{duplicated} rows are duplicates"));
    Ok(figures)
}

// --- REST traffic -----------------------------------------------------------------------

/// One request: when it started, how long it took, its status (`None`: no answer).
struct Request {
    started: Instant,
    latency: Duration,
    status: Option<u16>,
}

/// `REST_CLIENTS` clients reading `GET /networks` in a loop until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Vec<Request>>>,
}

impl Traffic {
    fn start(http: &reqwest::Client, url: String, token: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..REST_CLIENTS)
            .map(|_| {
                let (stop, http, url, token) =
                    (stop.clone(), http.clone(), url.clone(), token.clone());
                tokio::spawn(async move {
                    let mut requests = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let status = http
                            .get(&url)
                            .bearer_auth(&token)
                            .send()
                            .await
                            .ok()
                            .map(|response| response.status().as_u16());
                        requests.push(Request {
                            started,
                            latency: started.elapsed(),
                            status,
                        });
                        tokio::time::sleep(REST_PAUSE).await;
                    }
                    requests
                })
            })
            .collect();
        Self { stop, clients }
    }

    async fn finish(&mut self) -> anyhow::Result<Vec<Request>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut requests = Vec::new();
        for client in std::mem::take(&mut self.clients) {
            requests.extend(client.await?);
        }
        requests.sort_by_key(|request| request.started);
        Ok(requests)
    }
}

/// A scenario that fails half-way leaves no traffic behind.
impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn succeeded(request: &Request) -> bool {
    request.status.is_some_and(|status| status < 300)
}

fn status_text(status: Option<u16>) -> String {
    status.map_or_else(|| "no answer".into(), |status| status.to_string())
}

/// A histogram of statuses, as `{"200": n, "503": m}`.
fn statuses<'a>(requests: impl Iterator<Item = &'a Request>) -> serde_json::Value {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for request in requests {
        *counts.entry(status_text(request.status)).or_default() += 1;
    }
    json!(counts)
}

/// REST traffic while PostgreSQL stops for `outage` (zero: a quick restart).
async fn rest_scenario(
    driver: &mut Driver,
    name: &str,
    promise: &str,
    outage: Duration,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::new(name, promise);
    let harness = driver
        .start_harness(name, &format!("fault-bridge-{}", Identifier::new()))
        .await?;
    let user: serde_json::Value = driver
        .http
        .post(format!("{}/users", harness.base_url))
        .json(&json!({"user_name": format!("fault-{}", Identifier::new()), "password": "fault-injection"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = user["access_token"]
        .as_str()
        .context("POST /users gave no access_token")?
        .to_string();
    driver
        .http
        .post(format!("{}/networks", harness.base_url))
        .bearer_auth(&token)
        .json(&json!({"network_name": format!("fault-{}", Identifier::new())}))
        .send()
        .await?
        .error_for_status()?;
    let mut traffic = Traffic::start(
        &driver.http,
        format!("{}/networks", harness.base_url),
        token,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    eprintln!(
        "    stopping PostgreSQL {}",
        if outage.is_zero() {
            "and starting it again at once".to_string()
        } else {
            format!("for {} s", outage.as_secs())
        }
    );
    let stop_requested = Instant::now();
    driver.control.request("postgres-stop")?;
    let stopped = Instant::now();
    tokio::time::sleep(outage).await;
    let start_requested = Instant::now();
    driver.control.request("postgres-start")?;
    let fault_end = Instant::now();
    figures.detail("stop_seconds", seconds(stopped - stop_requested));
    figures.detail("start_seconds", seconds(fault_end - start_requested));
    tokio::time::sleep(AFTER_FAULT).await;
    let requests = traffic.finish().await?;
    drop(harness);

    figures.sent = requests.len();
    figures.stored = requests.iter().filter(|request| succeeded(request)).count();
    let before: Vec<&Request> = requests
        .iter()
        .filter(|request| request.started < stop_requested)
        .collect();
    let failed_before = before.iter().filter(|request| !succeeded(request)).count();
    figures.detail("failed_before_fault", failed_before);
    figures.require(
        failed_before == 0,
        format!("{failed_before} requests failed before the fault"),
    );
    // Started while the database was down.
    let outage_requests: Vec<&Request> = requests
        .iter()
        .filter(|request| request.started >= stopped && request.started < start_requested)
        .collect();
    let worst = outage_requests
        .iter()
        .map(|request| request.latency)
        .max()
        .unwrap_or_default();
    figures.detail("outage_requests", outage_requests.len());
    figures.detail("outage_statuses", statuses(outage_requests.iter().copied()));
    figures.detail("outage_worst_latency_seconds", seconds(worst));
    // Those that overlapped the stop or the start, answered as they could.
    figures.detail(
        "transition_statuses",
        statuses(requests.iter().filter(|request| {
            (request.started < stopped && request.started + request.latency > stop_requested)
                || (request.started >= start_requested && request.started < fault_end)
        })),
    );
    let after: Vec<&Request> = requests
        .iter()
        .filter(|request| request.started >= fault_end)
        .collect();
    figures.lost = after.iter().filter(|request| !succeeded(request)).count();
    figures.detail("after_statuses", statuses(after.iter().copied()));
    if let Some(first) = after.first() {
        figures.detail("first_after_restart_status", status_text(first.status));
        figures.detail(
            "first_after_restart_latency_seconds",
            seconds(first.latency),
        );
        figures.require(
            succeeded(first),
            format!(
                "the first request after the restart answered {}",
                status_text(first.status)
            ),
        );
    } else {
        figures.require(false, "no request was sent after the restart");
    }
    figures.first_success_seconds = after
        .iter()
        .find(|request| succeeded(request))
        .map(|request| seconds(request.started + request.latency - fault_end));
    figures.everything_seconds = after
        .iter()
        .rev()
        .take_while(|request| succeeded(request))
        .last()
        .map(|request| seconds(request.started + request.latency - fault_end));
    figures.require(
        figures.lost == 0,
        format!("{} requests failed after the restart", figures.lost),
    );
    if !outage.is_zero() {
        // A 200 is right for a request still waiting for a connection when the
        // database came back.
        let not_503 = outage_requests
            .iter()
            .filter(|request| {
                let answered_after_restart = request.started + request.latency > start_requested;
                request.status != Some(503) && !(answered_after_restart && succeeded(request))
            })
            .count();
        figures.require(
            not_503 == 0,
            format!("{not_503} requests during the outage were not answered 503"),
        );
        figures.require(
            worst <= OUTAGE_ANSWER_LIMIT,
            format!(
                "a request during the outage took {:.2} s (limit {} s)",
                worst.as_secs_f64(),
                OUTAGE_ANSWER_LIMIT.as_secs()
            ),
        );
    }
    Ok(figures)
}

// --- The configuration outbox -----------------------------------------------------------

/// Configurations of `sensors` created, and those published.
async fn publication_counts(
    pool: &PgPool,
    sensors: &[uuid::Uuid],
    revision: i32,
) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*), count(publication_timestamp) FROM configuration
         WHERE sensor_identifier = ANY($1) AND revision <= $2",
    )
    .bind(sensors)
    .bind(revision)
    .fetch_one(pool)
    .await?)
}

/// A configuration of revision `revision` for each sensor, in one transaction.
async fn create_configurations(
    pool: &PgPool,
    sensors: &[Identifier],
    revision: i32,
) -> anyhow::Result<()> {
    let mut transaction = pool.begin().await?;
    for sensor in sensors {
        let value = json!({"interval": 60, "written_as": revision});
        let serde_json::Value::Object(value) = value else {
            unreachable!("an object")
        };
        let created = create_configuration(&mut *transaction, *sensor, &value)
            .await?
            .context("the sensor exists")?;
        anyhow::ensure!(created.get() == revision, "revision {}", created.get());
    }
    transaction.commit().await?;
    Ok(())
}

/// Waits until every configuration up to `revision` is published; the time it took.
async fn wait_for_publication(
    pool: &PgPool,
    sensors: &[uuid::Uuid],
    revision: i32,
    deadline: Duration,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        let (created, published) = publication_counts(pool, sensors, revision).await?;
        if published == created {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(None)
}

/// The revision retained on `configurations/<sensor>` for each of `sensors`, as a new
/// subscriber receives them.
async fn retained_revisions(
    url: &url::Url,
    sensors: &[Identifier],
) -> anyhow::Result<HashMap<String, i64>> {
    let (client, mut event_loop) = AsyncClient::new(
        client_options(
            url,
            &format!("fault-subscriber-{}", Identifier::new()),
            true,
        ),
        100,
    );
    // One filter for all: hundreds of topics would not fit in one SUBSCRIBE packet.
    client
        .subscribe("configurations/+", QoS::AtLeastOnce)
        .await?;
    let ours: BTreeSet<String> = sensors.iter().map(ToString::to_string).collect();
    let mut revisions = HashMap::new();
    let received = async {
        while revisions.len() < sensors.len() {
            if let Event::Incoming(Packet::Publish(publish)) = event_loop.poll().await? {
                let payload: serde_json::Value = serde_json::from_slice(&publish.payload)?;
                let sensor = publish.topic.trim_start_matches("configurations/");
                if publish.retain && ours.contains(sensor) {
                    revisions.insert(
                        sensor.to_string(),
                        payload["revision"].as_i64().unwrap_or(-1),
                    );
                }
            }
        }
        anyhow::Ok(())
    };
    // Retained messages come at once after the subscription; missing ones never do.
    let _ = tokio::time::timeout(Duration::from_secs(10), received).await;
    let _ = client.try_disconnect();
    Ok(revisions)
}

/// The harness killed (SIGKILL) while its outbox publishes, then restarted.
async fn publication_scenario(
    driver: &mut Driver,
    name: &str,
    promise: &str,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::new(name, promise);
    let sensors = driver.create_sensors(CONFIGURED_SENSORS).await?;
    let uuids: Vec<uuid::Uuid> = sensors.iter().map(Identifier::as_uuid).collect();
    let client_id = format!("fault-bridge-{}", Identifier::new());
    let harness = driver.start_harness(name, &client_id).await?;
    // Revision 0 published and retained, then revision 1 created: a subscriber must
    // end up with revision 1 even though 0 was retained first.
    create_configurations(&driver.pool, &sensors, 0).await?;
    wait_for_publication(&driver.pool, &uuids, 0, Duration::from_secs(60))
        .await?
        .context("revision 0 was not published within 60 s")?;
    create_configurations(&driver.pool, &sensors, 1).await?;
    let total = 2 * sensors.len() as i64;
    // The next sweep (within the outbox's interval) publishes revision 1.
    let started = Instant::now();
    loop {
        let (_, published) = publication_counts(&driver.pool, &uuids, 1).await?;
        if published > sensors.len() as i64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the outbox did not start publishing revision 1 within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(harness);
    let (_, at_kill) = publication_counts(&driver.pool, &uuids, 1).await?;
    eprintln!(
        "    killed the harness with {} of {} configurations of revision 1 published",
        at_kill - sensors.len() as i64,
        sensors.len()
    );
    figures.detail("published_at_kill", at_kill);
    figures.require(
        at_kill < total,
        "the kill came after the publication ended: nothing was interrupted",
    );

    let restarted = Instant::now();
    let harness = driver.start_harness(name, &client_id).await?;
    let (mut first_success, mut everything) = (None, None);
    while everything.is_none() && restarted.elapsed() < RECOVERY_DEADLINE {
        let (_, published) = publication_counts(&driver.pool, &uuids, 1).await?;
        if first_success.is_none() && published > at_kill {
            first_success = Some(restarted.elapsed());
        }
        if published == total {
            everything = Some(restarted.elapsed());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    drop(harness);
    figures.first_success_seconds = first_success.map(seconds);
    figures.everything_seconds = everything.map(seconds);
    let (created, published) = publication_counts(&driver.pool, &uuids, 1).await?;
    figures.sent = created as usize;
    figures.stored = published as usize;
    figures.require(
        published == created,
        format!(
            "{} configurations were never published",
            created - published
        ),
    );
    let retained = retained_revisions(&driver.mqtt_url, &sensors).await?;
    let stale = retained.values().filter(|&&revision| revision != 1).count();
    let missing = sensors.len() - retained.len();
    figures.detail("retained_stale", stale);
    figures.detail("retained_missing", missing);
    figures.lost = (created - published) as usize + stale + missing;
    figures.require(
        stale + missing == 0,
        format!("{stale} sensors' retained configuration is not the newest, {missing} have none"),
    );
    Ok(figures)
}

// --- The suite ---------------------------------------------------------------------------

/// What a scenario does.
#[derive(Clone, Copy)]
enum Kind {
    Ingest(IngestFault),
    /// REST traffic while PostgreSQL is down this long (zero: stopped and started).
    Rest(Duration),
    Publication,
}

const SCENARIOS: [(&str, &str, Kind); 6] = [
    (
        "1 PostgreSQL down 10 s, ingest",
        "after the restart every acknowledged message is stored exactly once",
        Kind::Ingest(IngestFault::PostgresDown(Duration::from_secs(10))),
    ),
    (
        "2 PostgreSQL down 60 s, ingest",
        "after the restart every acknowledged message is stored exactly once",
        Kind::Ingest(IngestFault::PostgresDown(Duration::from_secs(60))),
    ),
    (
        "3 PostgreSQL down 10 s, REST",
        "503 within 1 s while down; the first request after the restart succeeds",
        Kind::Rest(Duration::from_secs(10)),
    ),
    (
        "4 PostgreSQL restarted, REST",
        "no request fails once it is back",
        Kind::Rest(Duration::ZERO),
    ),
    (
        "5 Mosquitto restarted, ingest",
        "nothing lost, nothing stored twice",
        Kind::Ingest(IngestFault::BrokerRestart),
    ),
    (
        "6 harness killed, publication",
        "every configuration published; the newest retained",
        Kind::Publication,
    ),
];

async fn run_scenario(
    driver: &mut Driver,
    name: &str,
    promise: &str,
    kind: Kind,
) -> anyhow::Result<Figures> {
    match kind {
        Kind::Ingest(fault) => ingest_scenario(driver, name, promise, fault).await,
        Kind::Rest(outage) => rest_scenario(driver, name, promise, outage).await,
        Kind::Publication => publication_scenario(driver, name, promise).await,
    }
}

// --- The report -------------------------------------------------------------------------

fn optional(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".into(), |value| value.to_string())
}

fn print_table(report: &[Figures]) {
    eprintln!();
    eprintln!(
        "{:<34} {:>7} {:>7} {:>5} {:>5} {:>9} {:>9}  result",
        "scenario", "sent", "stored", "dup", "lost", "first ok", "all ok"
    );
    for figures in report {
        eprintln!(
            "{:<34} {:>7} {:>7} {:>5} {:>5} {:>8}s {:>8}s  {}",
            figures.scenario,
            figures.sent,
            figures.stored,
            optional(figures.duplicated),
            figures.lost,
            optional(figures.first_success_seconds),
            optional(figures.everything_seconds),
            if figures.failures.is_empty() {
                "kept".to_string()
            } else {
                format!("MISSED: {}", figures.failures.join("; "))
            }
        );
        let details: Vec<String> = figures
            .details
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        eprintln!("    {}", details.join(", "));
    }
    eprintln!(
        "(sent/stored: messages acknowledged by the broker/stored; requests/answered 2xx; \
         configurations created/published. lost: for REST, requests failed after the restart. \
         first ok, all ok: from the fault's end)"
    );
}

fn write_report(path: &Path, report: &[Figures], wall: Duration) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(&json!({
        "wall_seconds": seconds(wall),
        "scenarios": report,
    }))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("written to {}", path.display());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let mut arguments = std::env::args().skip(1);
    let (Some(harness_binary), Some(output)) = (arguments.next(), arguments.next()) else {
        anyhow::bail!("usage: fault_injection <harness binary> <output directory> [SCENARIO...]");
    };
    // Scenarios chosen by number; all by default.
    let chosen: Vec<String> = arguments.collect();
    let output = PathBuf::from(output);
    std::fs::create_dir_all(&output)?;
    let pool = database::connect(&settings::database_url()?, 4)?;
    database::MIGRATOR.run(&pool).await?;
    let mut driver = Driver {
        harness_binary: harness_binary.into(),
        output: output.clone(),
        pool,
        mqtt_url: settings::mqtt_url()?,
        control: Control,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        harnesses_started: 0,
    };
    let started = Instant::now();
    let mut report = Vec::new();
    for (name, promise, kind) in SCENARIOS {
        let number = name.split(' ').next().unwrap_or_default();
        if !chosen.is_empty() && !chosen.iter().any(|chosen| chosen == number) {
            continue;
        }
        let scenario_started = Instant::now();
        eprintln!("==> scenario {name}");
        let figures = match run_scenario(&mut driver, name, promise, kind).await {
            Ok(figures) => figures,
            Err(error) => {
                let mut figures = Figures::new(name, promise);
                figures.failures.push(format!("{error:#}"));
                // The next scenarios need the database, whatever this one left.
                driver.control.request("postgres-start")?;
                figures
            }
        };
        eprintln!(
            "    {} in {:.1} s",
            if figures.failures.is_empty() {
                "kept its promise".to_string()
            } else {
                format!("MISSED: {}", figures.failures.join("; "))
            },
            scenario_started.elapsed().as_secs_f64()
        );
        report.push(figures);
    }
    print_table(&report);
    write_report(&output.join("report.json"), &report, started.elapsed())?;
    let missed = report
        .iter()
        .filter(|figures| !figures.failures.is_empty())
        .count();
    if missed > 0 {
        eprintln!(
            "error: {missed} of {} scenarios missed their promise",
            report.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
