//! The function binaries run as AWS Lambda runs them: each test starts cargo-lambda's
//! runtime emulator (`cargo lambda watch --only-lambda-apis`) and the binaries it needs,
//! each pointed at the emulator's Runtime API and at the test's fresh database, then
//! invokes them through the emulator's Invoke API with the events of
//! `functions/events/`, the fields that vary replaced.
//!
//! What the emulator answers an invocation: status 200 and the function's response;
//! status 500 and the runtime's diagnostic (`{"errorType": .., "errorMessage": ..}`)
//! when the handler returns an error; status 200 and the diagnostic when the function
//! reported an error at init.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sensorium_functions::topics::envelope;
use sensorium_shared::database::MIGRATOR;
use sensorium_shared::domain::{Identifier, Revision};
use sensorium_shared::limits::LOG_RETENTION_DAYS;
use sensorium_shared::queries::configurations::create_configuration;
use sensorium_shared::testing::{
    create_sensor, end_fault, eventually, inject_fault, install_fault_injection,
};
use serde_json::{Value, json};
use sqlx::{ConnectOptions, PgPool};

/// How long an invocation may take, its function's start included.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the emulator may take to listen (it runs `cargo metadata` first).
const EMULATOR_START_TIMEOUT: Duration = Duration::from_secs(120);

/// A function binary of this package, as cargo built it for the tests.
struct Function {
    name: &'static str,
    path: &'static str,
}

macro_rules! function {
    ($name:literal) => {
        Function {
            name: $name,
            path: env!(concat!("CARGO_BIN_EXE_", $name)),
        }
    };
}

const STATUS: Function = function!("status");
const USERS: Function = function!("users");
const NETWORKS: Function = function!("networks");
const SENSORS: Function = function!("sensors");
const CONFIGURATIONS: Function = function!("configurations");
const MEASUREMENTS: Function = function!("measurements");
const LOGS: Function = function!("logs");
const FALLBACK: Function = function!("fallback");
const INGEST_MEASUREMENTS: Function = function!("ingest-measurements");
const INGEST_HEARTBEATS: Function = function!("ingest-heartbeats");
const INGEST_LOG_MESSAGES: Function = function!("ingest-log-messages");
const RETAIN_LOGS: Function = function!("retain-logs");
const PUBLISH_CONFIGURATIONS: Function = function!("publish-configurations");
const MIGRATE: Function = function!("migrate");

/// The URL of the test's database, for the functions.
fn database_url(pool: &PgPool) -> String {
    pool.connect_options().to_url_lossy().to_string()
}

/// A process started for a test, with the file its output goes to.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, mut command: Command, log: PathBuf) -> std::io::Result<Process> {
        let file = File::create(&log).expect("the log file is created");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file is shared"))
            .stderr(file);
        Ok(Process {
            name: name.to_owned(),
            child: command.spawn()?,
            log,
        })
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .expect("the process's state can be read")
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// cargo-lambda's emulator and the functions started against it; all are killed on
/// drop (after a failure too, when their output is printed).
struct Emulator {
    port: u16,
    directory: PathBuf,
    emulator: Process,
    functions: Vec<Process>,
    client: reqwest::Client,
}

impl Emulator {
    /// Starts the emulator on a free port and waits until it accepts connections.
    async fn start() -> Emulator {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the package is in the workspace");
        for _attempt in 0..3 {
            let port = free_port();
            let directory = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("emulator")
                .join(format!("{}-{port}", std::process::id()));
            std::fs::create_dir_all(&directory).expect("the log directory is created");
            // cargo-lambda is what `cargo lambda` runs; started directly, it is the
            // process we kill.
            let mut command = Command::new("cargo-lambda");
            command
                .args(["lambda", "watch", "--only-lambda-apis"])
                .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
                .arg(port.to_string())
                .current_dir(workspace);
            let emulator = match Process::spawn("emulator", command, directory.join("emulator.log"))
            {
                Ok(emulator) => emulator,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    panic!("cargo-lambda is not on PATH: run ./scripts/setup to install it")
                }
                Err(error) => panic!("cargo-lambda did not start: {error}"),
            };
            let mut started = Emulator {
                port,
                directory,
                emulator,
                functions: Vec::new(),
                client: reqwest::Client::new(),
            };
            if started.wait_until_listening().await {
                return started;
            }
            // Most likely another process took the port first: try another.
        }
        panic!("cargo lambda watch did not start in 3 attempts (see target/tmp/emulator/)");
    }

    /// Whether the emulator listens; false if it exited first.
    async fn wait_until_listening(&mut self) -> bool {
        let port = self.port;
        let emulator = &mut self.emulator;
        let listening = eventually(EMULATOR_START_TIMEOUT, || {
            // Another process may hold the port; ours would have exited.
            let exited = emulator.exit_status().is_some();
            async move {
                if exited {
                    return Some(false);
                }
                let connected = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
                connected.is_ok().then_some(true)
            }
        })
        .await;
        listening.unwrap_or_else(|| {
            panic!(
                "cargo lambda watch did not listen within {EMULATOR_START_TIMEOUT:?}:\n{}",
                self.emulator.output()
            )
        })
    }

    /// Starts `function` the way Lambda does: the runtime environment and `settings`
    /// only, nothing of the test's environment.
    fn start_function(&mut self, function: &Function, settings: &[(&str, &str)]) {
        let runtime_api = format!("http://127.0.0.1:{}/.rt/{}", self.port, function.name);
        let mut command = Command::new(function.path);
        command
            .env_clear()
            .env("AWS_LAMBDA_FUNCTION_NAME", function.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .envs(settings.iter().copied());
        if let Ok(filter) = std::env::var("RUST_LOG") {
            command.env("RUST_LOG", filter);
        }
        let log = self
            .directory
            .join(format!("{}-{}.log", function.name, self.functions.len()));
        let process = Process::spawn(function.name, command, log)
            .unwrap_or_else(|error| panic!("{} did not start: {error}", function.path));
        self.functions.push(process);
    }

    /// Starts `function` against the database at `database_url`.
    fn start_with_database(&mut self, function: &Function, database_url: &str) {
        self.start_function(function, &[("DATABASE_URL", database_url)]);
    }

    /// What the processes of `function` wrote so far.
    fn output(&self, function: &Function) -> String {
        self.functions
            .iter()
            .filter(|process| process.name == function.name)
            .map(Process::output)
            .collect()
    }

    /// Invokes `function` with `event`: the emulator's status and answer.
    async fn invoke(&self, function: &Function, event: &Value) -> (u16, Value) {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{}/invocations",
            self.port, function.name
        );
        let response = self
            .client
            .post(url)
            .body(event.to_string())
            .timeout(INVOCATION_TIMEOUT)
            .send()
            .await
            .unwrap_or_else(|error| panic!("invoking {} failed: {error}", function.name));
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .unwrap_or_else(|error| panic!("reading {}'s answer failed: {error}", function.name));
        let answer = serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!("{}'s answer is not JSON ({error}): {text}", function.name)
        });
        (status, answer)
    }

    /// Invokes `function` and expects it to succeed: its response.
    async fn invoke_ok(&self, function: &Function, event: &Value) -> Value {
        let (status, answer) = self.invoke(function, event).await;
        assert_eq!(status, 200, "{} failed: {answer}", function.name);
        answer
    }

    /// Invokes the route function `function` with an HTTP API event: its HTTP response.
    async fn request(&self, function: &Function, event: &HttpEvent) -> HttpResponse {
        HttpResponse::parse(function.name, self.invoke_ok(function, &event.0).await)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        for process in self
            .functions
            .iter_mut()
            .chain(std::iter::once(&mut self.emulator))
        {
            // Already exited is not an error.
            let _ = process.child.kill();
            let _ = process.child.wait();
            if failed {
                eprintln!(
                    "--- output of {} ({}):\n{}",
                    process.name,
                    process.log.display(),
                    process.output()
                );
            }
        }
        if !failed {
            let _ = std::fs::remove_dir_all(&self.directory);
        }
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port is found")
        .port()
}

/// The event of `functions/events/<name>.json`.
fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{} cannot be read: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

/// An API Gateway HTTP API (payload 2.0) event from a fixture, with what varies
/// replaced.
struct HttpEvent(Value);

impl HttpEvent {
    fn new(name: &str) -> HttpEvent {
        HttpEvent(event(name))
    }

    /// The route's path parameters replaced: `pathParameters`, `rawPath` and the
    /// request context's path, as API Gateway fills them in from the route key.
    fn parameters(mut self, parameters: &[(&str, &str)]) -> HttpEvent {
        let route_key = self.0["routeKey"]
            .as_str()
            .expect("the event has a route key");
        let (_method, mut path) = route_key
            .split_once(' ')
            .map(|(method, route)| (method, route.to_owned()))
            .expect("the route key is METHOD /path");
        for (name, value) in parameters {
            self.0["pathParameters"][*name] = json!(value);
            path = path.replace(&format!("{{{name}}}"), value);
        }
        self.path(&path)
    }

    /// `rawPath` and the request context's path replaced.
    fn path(mut self, path: &str) -> HttpEvent {
        self.0["rawPath"] = json!(path);
        self.0["requestContext"]["http"]["path"] = json!(path);
        self
    }

    /// The bearer token replaced, or removed.
    fn token(mut self, token: Option<&str>) -> HttpEvent {
        let headers = self.0["headers"]
            .as_object_mut()
            .expect("the event has headers");
        match token {
            Some(token) => {
                headers.insert("authorization".into(), json!(format!("Bearer {token}")));
            }
            None => {
                headers.remove("authorization");
            }
        }
        self
    }

    /// The body replaced by `body`, as text.
    fn body(mut self, body: &str) -> HttpEvent {
        self.0["body"] = json!(body);
        self
    }
}

/// What `lambda_http` answers the gateway: status, headers and the JSON body.
#[derive(Debug)]
struct HttpResponse {
    status: u16,
    /// By lowercase name; the values of a repeated header joined by ", ".
    headers: BTreeMap<String, String>,
    body: Value,
}

impl HttpResponse {
    fn parse(function: &str, response: Value) -> HttpResponse {
        let status = response["statusCode"]
            .as_u64()
            .unwrap_or_else(|| panic!("{function}'s response has no statusCode: {response}"));
        assert_ne!(
            response["isBase64Encoded"],
            json!(true),
            "{function}'s JSON body is base64: {response}"
        );
        // A header is in `headers`, or in `multiValueHeaders` as a list.
        let mut headers = BTreeMap::new();
        if let Some(single) = response["headers"].as_object() {
            for (name, value) in single {
                let value = value.as_str().unwrap_or_default().to_owned();
                headers.insert(name.to_lowercase(), value);
            }
        }
        if let Some(multiple) = response["multiValueHeaders"].as_object() {
            for (name, values) in multiple {
                let values: Vec<&str> = values
                    .as_array()
                    .map(|values| values.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                headers.insert(name.to_lowercase(), values.join(", "));
            }
        }
        let text = response["body"].as_str().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(text).unwrap_or_else(|error| {
                panic!("{function}'s body is not JSON ({error}): {response}")
            })
        };
        HttpResponse {
            status: status as u16,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Asserts the status and a JSON content type; returns the body.
    fn expect(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{what}: the content type is not JSON"
        );
        self.body
    }

    /// Asserts one of the contract's JSON errors: `{"details": <reason phrase>}`.
    fn expect_error(self, status: u16, details: &str, what: &str) {
        let body = self.expect(status, what);
        assert_eq!(
            body,
            json!({ "details": details }),
            "{what}: the error body"
        );
    }
}

/// An SQS event from the fixture `name`, its first record copied for each
/// (message id, body).
fn sqs_event(name: &str, messages: &[(&str, String)]) -> Value {
    let mut event = event(name);
    let template = event["Records"][0].clone();
    let records: Vec<Value> = messages
        .iter()
        .map(|(message_id, body)| {
            let mut record = template.clone();
            record["messageId"] = json!(message_id);
            record["body"] = json!(body);
            record
        })
        .collect();
    event["Records"] = json!(records);
    event
}

/// The bridge envelope of `payload` published to `topic`, received now.
fn envelope_body(topic: &str, payload: &Value) -> String {
    let received_at = chrono::Utc::now().timestamp_millis();
    envelope::encode(topic, payload.to_string().as_bytes(), received_at)
}

/// The message ids a topic function's response names as failed, in order, after
/// checking the response's exact shape.
fn failed_messages(response: &Value) -> Vec<String> {
    let object = response.as_object().expect("the response is an object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec!["batchItemFailures"],
        "the response's only key is batchItemFailures: {response}"
    );
    object["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures is a list")
        .iter()
        .map(|failure| {
            failure["itemIdentifier"]
                .as_str()
                .unwrap_or_else(|| panic!("a failure without itemIdentifier: {response}"))
                .to_owned()
        })
        .collect()
}

async fn count(pool: &PgPool, query: &'static str, sensor: Identifier) -> i64 {
    sqlx::query_scalar(query)
        .bind(sensor)
        .fetch_one(pool)
        .await
        .expect("the count is read")
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn route_functions_answer_gateway_events(pool: PgPool) {
    let url = database_url(&pool);
    let mut emulator = Emulator::start().await;
    emulator.start_function(
        &STATUS,
        &[
            ("DATABASE_URL", &url),
            ("ENVIRONMENT", "emulator"),
            ("COMMIT_SHA", "0123abc"),
            ("BRANCH_NAME", "main"),
        ],
    );
    for function in [
        &USERS,
        &NETWORKS,
        &SENSORS,
        &CONFIGURATIONS,
        &MEASUREMENTS,
        &LOGS,
        &INGEST_MEASUREMENTS,
        &INGEST_LOG_MESSAGES,
    ] {
        emulator.start_with_database(function, &url);
    }

    let status = emulator
        .request(&STATUS, &HttpEvent::new("status"))
        .await
        .expect(200, "GET /status");
    assert_eq!(
        (
            &status["environment"],
            &status["commit_sha"],
            &status["branch_name"]
        ),
        (&json!("emulator"), &json!("0123abc"), &json!("main")),
        "GET /status reports the deployment"
    );
    assert!(
        status["start_timestamp"].as_f64().is_some_and(|t| t > 0.0),
        "GET /status reports a start time: {status}"
    );

    // Sign up, log in.
    let credentials =
        json!({"user_name": "alice", "password": "correct horse battery"}).to_string();
    let session = emulator
        .request(&USERS, &HttpEvent::new("users-sign-up").body(&credentials))
        .await
        .expect(201, "POST /users");
    let user = session["user_identifier"].as_str().unwrap_or_default();
    assert!(
        Identifier::parse(user).is_ok(),
        "POST /users answers the user's identifier: {session}"
    );
    emulator
        .request(
            &USERS,
            &HttpEvent::new("users-sign-up").body("{\"user_name\": "),
        )
        .await
        .expect_error(400, "Bad Request", "POST /users with bad JSON");
    let login = emulator
        .request(&USERS, &HttpEvent::new("users-log-in").body(&credentials))
        .await
        .expect(201, "POST /authentication");
    assert_eq!(
        login["user_identifier"], session["user_identifier"],
        "logging in answers the same user"
    );
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "POST /authentication answers a 64-hex-digit token: {login}"
    );
    let token = Some(token.as_str());

    // Networks.
    emulator
        .request(&NETWORKS, &HttpEvent::new("networks-list").token(None))
        .await
        .expect_error(401, "Unauthorized", "GET /networks without a token");
    let created = emulator
        .request(&NETWORKS, &HttpEvent::new("networks-create").token(token))
        .await
        .expect(201, "POST /networks");
    let network = created["network_identifier"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let networks = emulator
        .request(&NETWORKS, &HttpEvent::new("networks-list").token(token))
        .await
        .expect(200, "GET /networks");
    assert_eq!(
        networks,
        json!([{"network_identifier": network, "network_name": "greenhouse"}]),
        "GET /networks lists the new network"
    );
    let unknown = Identifier::new().to_string();
    emulator
        .request(
            &NETWORKS,
            &HttpEvent::new("networks-read")
                .token(token)
                .parameters(&[("network_identifier", &unknown)]),
        )
        .await
        .expect_error(404, "Not Found", "GET /networks/{unknown}");

    // A sensor and its status.
    let created = emulator
        .request(
            &SENSORS,
            &HttpEvent::new("sensors-create")
                .token(token)
                .parameters(&[("network_identifier", &network)]),
        )
        .await
        .expect(201, "POST /networks/{network}/sensors");
    let sensor = created["sensor_identifier"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let sensor_path = [
        ("network_identifier", network.as_str()),
        ("sensor_identifier", sensor.as_str()),
    ];
    let status = emulator
        .request(
            &SENSORS,
            &HttpEvent::new("sensors-read")
                .token(token)
                .parameters(&sensor_path),
        )
        .await
        .expect(200, "GET /networks/{network}/sensors/{sensor}");
    assert_eq!(
        (
            &status["sensor_identifier"],
            &status["sensor_name"],
            &status["latest_revision"]
        ),
        (&json!(sensor), &json!("north-wall"), &Value::Null),
        "the new sensor's status"
    );

    // A configuration.
    let created = emulator
        .request(
            &CONFIGURATIONS,
            &HttpEvent::new("configurations-create")
                .token(token)
                .parameters(&sensor_path),
        )
        .await
        .expect(201, "POST .../configurations");
    let revision = created["revision"].as_i64();
    assert!(
        revision.is_some(),
        "POST .../configurations answers the revision: {created}"
    );
    let configurations = emulator
        .request(
            &CONFIGURATIONS,
            &HttpEvent::new("configurations-list")
                .token(token)
                .parameters(&sensor_path),
        )
        .await
        .expect(200, "GET .../configurations");
    assert_eq!(
        (
            configurations[0]["revision"].as_i64(),
            &configurations[0]["value"],
            configurations.as_array().map(Vec::len)
        ),
        (
            revision,
            &json!({"interval": 60, "unit": "celsius"}),
            Some(1)
        ),
        "GET .../configurations lists the configuration: {configurations}"
    );

    // Measurements and logs, once ingested.
    let topic = format!("measurements/{sensor}");
    let payload = json!({"measurements": [
        {"timestamp": 1_700_000_000.5, "value": {"temperature": 21.5}},
        {"timestamp": 1_700_000_060, "revision": 0, "value": {"temperature": 22}},
    ]});
    let batch = sqs_event(
        "ingest-measurements",
        &[("m1", envelope_body(&topic, &payload))],
    );
    let response = emulator.invoke_ok(&INGEST_MEASUREMENTS, &batch).await;
    assert!(
        failed_messages(&response).is_empty(),
        "the measurements are stored: {response}"
    );
    let topic = format!("log-messages/{sensor}");
    let payload = json!({"log_messages": [
        {"severity": "warning", "timestamp": 1_700_000_030, "subject": "battery low", "details": "3.1 V"},
    ]});
    let batch = sqs_event(
        "ingest-log-messages",
        &[("l1", envelope_body(&topic, &payload))],
    );
    let response = emulator.invoke_ok(&INGEST_LOG_MESSAGES, &batch).await;
    assert!(
        failed_messages(&response).is_empty(),
        "the log message is stored: {response}"
    );
    let measurements = emulator
        .request(
            &MEASUREMENTS,
            &HttpEvent::new("measurements-list")
                .token(token)
                .parameters(&sensor_path),
        )
        .await
        .expect(200, "GET .../measurements");
    assert_eq!(
        measurements,
        json!([
            {"creation_timestamp": 1_700_000_000.5, "revision": null, "value": {"temperature": 21.5}},
            {"creation_timestamp": 1_700_000_060.0, "revision": 0, "value": {"temperature": 22.0}},
        ]),
        "GET .../measurements pages the ingested measurements"
    );
    let logs = emulator
        .request(
            &LOGS,
            &HttpEvent::new("logs-list")
                .token(token)
                .parameters(&sensor_path),
        )
        .await
        .expect(200, "GET .../logs");
    assert_eq!(
        logs,
        json!([{
            "severity": "warning",
            "subject": "battery low",
            "details": "3.1 V",
            "revision": null,
            "creation_timestamp": 1_700_000_030.0,
        }]),
        "GET .../logs pages the ingested log message"
    );
}

#[tokio::test]
async fn the_fallback_answers_unknown_paths_and_methods_in_json() {
    let mut emulator = Emulator::start().await;
    // It needs no database.
    emulator.start_function(&FALLBACK, &[]);
    emulator
        .request(&FALLBACK, &HttpEvent::new("fallback-not-found"))
        .await
        .expect_error(404, "Not Found", "GET of an unknown path");
    let response = emulator
        .request(&FALLBACK, &HttpEvent::new("fallback-method-not-allowed"))
        .await;
    let allow: Vec<String> = response
        .header("allow")
        .unwrap_or_default()
        .split(',')
        .map(|method| method.trim().to_owned())
        .collect();
    response.expect_error(405, "Method Not Allowed", "DELETE /status");
    assert!(
        allow.iter().any(|method| method == "GET")
            && !allow.iter().any(|method| method == "DELETE"),
        "the 405 of DELETE /status allows GET, not DELETE: {allow:?}"
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn topic_functions_store_batches_of_envelopes(pool: PgPool) {
    let url = database_url(&pool);
    let mut emulator = Emulator::start().await;
    for function in [
        &INGEST_MEASUREMENTS,
        &INGEST_HEARTBEATS,
        &INGEST_LOG_MESSAGES,
    ] {
        emulator.start_with_database(function, &url);
    }
    let sensor = create_sensor(&pool).await;
    sqlx::query(
        "INSERT INTO configuration (sensor_identifier, revision, value) VALUES ($1, 0, '{}')",
    )
    .bind(sensor)
    .execute(&pool)
    .await
    .expect("a configuration is stored");

    let measurements = json!({"measurements": [{"timestamp": 100, "value": {"a": 1}}, {"timestamp": 101, "value": {"a": 2}}]});
    let batch = sqs_event(
        "ingest-measurements",
        &[
            (
                "m1",
                envelope_body(&format!("measurements/{sensor}"), &measurements),
            ),
            ("m2", "not an envelope".to_owned()),
        ],
    );
    let response = emulator.invoke_ok(&INGEST_MEASUREMENTS, &batch).await;
    assert_eq!(
        failed_messages(&response),
        Vec::<String>::new(),
        "no measurement message failed"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM measurement WHERE sensor_identifier = $1",
            sensor
        )
        .await,
        2,
        "both measurements are stored"
    );

    let heartbeats = json!({"heartbeats": [{"revision": 0, "timestamp": 102, "success": true}]});
    let batch = sqs_event(
        "ingest-heartbeats",
        &[(
            "h1",
            envelope_body(&format!("heartbeats/{sensor}"), &heartbeats),
        )],
    );
    let response = emulator.invoke_ok(&INGEST_HEARTBEATS, &batch).await;
    assert!(
        failed_messages(&response).is_empty(),
        "no heartbeat message failed"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM configuration WHERE sensor_identifier = $1 AND success AND extract(epoch FROM acknowledgement_timestamp) = 102",
            sensor
        )
        .await,
        1,
        "the heartbeat acknowledges revision 0"
    );

    let logs = json!({"log_messages": [{"severity": "error", "timestamp": 103, "subject": "sensor fault"}]});
    let batch = sqs_event(
        "ingest-log-messages",
        &[(
            "l1",
            envelope_body(&format!("log-messages/{sensor}"), &logs),
        )],
    );
    let response = emulator.invoke_ok(&INGEST_LOG_MESSAGES, &batch).await;
    assert!(
        failed_messages(&response).is_empty(),
        "no log message failed"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM log WHERE sensor_identifier = $1 AND subject = 'sensor fault'",
            sensor
        )
        .await,
        1,
        "the log message is stored"
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_transient_database_failure_fails_exactly_the_storable_messages(pool: PgPool) {
    let url = database_url(&pool);
    let mut emulator = Emulator::start().await;
    emulator.start_with_database(&INGEST_MEASUREMENTS, &url);
    let sensor = create_sensor(&pool).await;
    // Inserts into measurement fail with a serialization failure (a transient class)
    // until the fault ends.
    install_fault_injection(&pool).await;
    inject_fault(&pool, None).await;

    let topic = format!("measurements/{sensor}");
    let first = json!({"measurements": [{"timestamp": 200, "value": {"a": 1}}]});
    let second = json!({"measurements": [{"timestamp": 201, "value": {"a": 2}}, {"timestamp": 202, "value": {"a": 3}}]});
    let messages = [
        ("good-1", envelope_body(&topic, &first)),
        // Never storable: dropped, not failed.
        ("not-an-envelope", "{}".to_owned()),
        (
            "unknown-sensor",
            envelope_body(&format!("measurements/{}", Identifier::new()), &first),
        ),
        ("good-2", envelope_body(&topic, &second)),
    ];
    let response = emulator
        .invoke_ok(
            &INGEST_MEASUREMENTS,
            &sqs_event("ingest-measurements", &messages),
        )
        .await;
    assert_eq!(
        failed_messages(&response),
        vec!["good-1".to_owned(), "good-2".to_owned()],
        "exactly the storable messages failed"
    );
    let stored = "SELECT count(*) FROM measurement WHERE sensor_identifier = $1";
    assert_eq!(
        count(&pool, stored, sensor).await,
        0,
        "nothing is stored while the database refuses"
    );

    end_fault(&pool, None).await;
    let retried: Vec<(&str, String)> = messages
        .iter()
        .filter(|(id, _)| id.starts_with("good-"))
        .cloned()
        .collect();
    let batch = sqs_event("ingest-measurements", &retried);
    // Delivered twice, as SQS may: stored once all the same.
    for delivery in ["retry", "redelivery"] {
        let response = emulator.invoke_ok(&INGEST_MEASUREMENTS, &batch).await;
        assert!(
            failed_messages(&response).is_empty(),
            "the {delivery} of the failed messages succeeds: {response}"
        );
        assert_eq!(
            count(&pool, stored, sensor).await,
            3,
            "after the {delivery}, the three measurements are stored once"
        );
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn retain_logs_deletes_only_expired_logs_on_a_schedule(pool: PgPool) {
    let url = database_url(&pool);
    let mut emulator = Emulator::start().await;
    emulator.start_with_database(&RETAIN_LOGS, &url);
    let sensor = create_sensor(&pool).await;
    sqlx::query(
        r#"
        INSERT INTO log (sensor_identifier, creation_timestamp, fingerprint, severity, subject,
            receipt_timestamp, position)
        VALUES ($1, now(), '\x01', 'info', 'expired', now() - make_interval(days => $2 + 1), 0),
            ($1, now() - make_interval(days => $2 + 1), '\x02', 'info', 'kept', now(), 0)
        "#,
    )
    .bind(sensor)
    .bind(LOG_RETENTION_DAYS as i32)
    .execute(&pool)
    .await
    .expect("the logs are stored");

    emulator
        .invoke_ok(&RETAIN_LOGS, &event("retain-logs"))
        .await;
    let subjects: Vec<String> =
        sqlx::query_scalar("SELECT subject FROM log WHERE sensor_identifier = $1")
            .bind(sensor)
            .fetch_all(&pool)
            .await
            .expect("the logs are read");
    assert_eq!(
        subjects,
        vec!["kept".to_owned()],
        "the log received too long ago is deleted, the one received now kept, whatever their sensor's clock says"
    );
}

/// The publication time of the sensor's configuration `revision`, if published.
async fn publication(pool: &PgPool, sensor: Identifier, revision: Revision) -> Option<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM publication_timestamp)::float8 FROM configuration
         WHERE sensor_identifier = $1 AND revision = $2",
    )
    .bind(sensor)
    .bind(revision)
    .fetch_one(pool)
    .await
    .expect("the configuration is read")
}

/// A new configuration of the sensor, stored (and put in the outbox) as the REST API
/// does; returns its revision.
async fn store_configuration(pool: &PgPool, sensor: Identifier) -> Revision {
    let value = json!({"interval": 60});
    create_configuration(pool, sensor, value.as_object().expect("an object"))
        .await
        .expect("the configuration is stored")
        .expect("the sensor exists")
}

/// The publisher's settings: moto's IoT data plane and fake credentials.
fn publisher_settings<'a>(database_url: &'a str, endpoint: &'a str) -> [(&'a str, &'a str); 6] {
    [
        ("DATABASE_URL", database_url),
        ("IOT_DATA_ENDPOINT", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("ENVIRONMENT", "emulator"),
    ]
}

/// The embedded metric lines (CloudWatch EMF) in a function's output.
fn metric_lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("_aws").is_some())
        .collect()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn publish_configurations_sweeps_on_a_schedule_and_on_a_queue_message(pool: PgPool) {
    let moto = std::env::var("MOTO_URL")
        .expect("MOTO_URL names moto's server: run the tests with ./scripts/test");
    let url = database_url(&pool);
    let mut emulator = Emulator::start().await;
    emulator.start_function(&PUBLISH_CONFIGURATIONS, &publisher_settings(&url, &moto));
    let sensor = create_sensor(&pool).await;

    for fixture in [
        "publish-configurations-schedule",
        "publish-configurations-sqs",
    ] {
        let revision = store_configuration(&pool, sensor).await;
        assert_eq!(
            publication(&pool, sensor, revision).await,
            None,
            "revision {revision:?} is unpublished before the sweep"
        );
        let before = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        let answer = emulator
            .invoke_ok(&PUBLISH_CONFIGURATIONS, &event(fixture))
            .await;
        assert_eq!(
            answer,
            json!({"published": 1, "failed": 0}),
            "the sweep of {fixture} answers what it published"
        );
        let published = publication(&pool, sensor, revision).await;
        assert!(
            published.is_some_and(|time| time >= before),
            "the sweep of {fixture} published revision {revision:?} (publication time {published:?}, invoked at {before})"
        );
    }
    let metrics = metric_lines(&emulator.output(&PUBLISH_CONFIGURATIONS));
    assert_eq!(
        metrics.len(),
        2,
        "each sweep emits one metric line: {metrics:?}"
    );
    assert_eq!(
        (
            &metrics[1]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            &metrics[1]["Environment"],
            &metrics[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
        ),
        (
            &json!("Sensorium"),
            &json!("emulator"),
            &json!("OldestUnpublishedConfigurationAge")
        ),
        "the metric line is the oldest unpublished configuration's age: {metrics:?}"
    );
    assert!(
        metrics[1]["OldestUnpublishedConfigurationAge"].is_number(),
        "the metric line carries the age: {metrics:?}"
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_refused_publication_is_counted_and_left_for_the_next_sweep(pool: PgPool) {
    let url = database_url(&pool);
    let mut emulator = Emulator::start().await;
    // Nothing listens on port 1: every publication fails.
    emulator.start_function(
        &PUBLISH_CONFIGURATIONS,
        &publisher_settings(&url, "http://127.0.0.1:1"),
    );
    let sensor = create_sensor(&pool).await;
    let revision = store_configuration(&pool, sensor).await;
    let answer = emulator
        .invoke_ok(
            &PUBLISH_CONFIGURATIONS,
            &event("publish-configurations-schedule"),
        )
        .await;
    assert_eq!(
        answer,
        json!({"published": 0, "failed": 1}),
        "the sweep answers the failed publication"
    );
    assert_eq!(
        publication(&pool, sensor, revision).await,
        None,
        "the configuration stays unpublished"
    );
}

#[tokio::test]
async fn a_job_whose_database_is_down_answers_a_function_error() {
    let mut emulator = Emulator::start().await;
    // Nothing listens on port 1: the pool's connection attempts fail until its
    // acquire timeout.
    emulator.start_with_database(&RETAIN_LOGS, "postgres://postgres@127.0.0.1:1/none");
    let (status, answer) = emulator.invoke(&RETAIN_LOGS, &event("retain-logs")).await;
    assert_eq!(
        status, 500,
        "the emulator answers a handler error with 500: {answer}"
    );
    assert!(
        answer["errorType"].is_string(),
        "the answer is the runtime's diagnostic, with an error type: {answer}"
    );
    assert!(
        answer["errorMessage"]
            .as_str()
            .is_some_and(|message| message.contains("timed out")),
        "the diagnostic's message says the pool timed out: {answer}"
    );
}

#[sqlx::test(migrations = false)]
async fn migrate_applies_every_migration_once(pool: PgPool) {
    let url = database_url(&pool);
    let mut emulator = Emulator::start().await;
    emulator.start_with_database(&MIGRATE, &url);
    let versions: Vec<i64> = MIGRATOR.iter().map(|migration| migration.version).collect();
    let latest = versions.iter().max().copied();

    let answer = emulator.invoke_ok(&MIGRATE, &event("migrate")).await;
    assert_eq!(
        answer,
        json!({"applied": versions, "latest": latest}),
        "the first run applies every migration"
    );
    for table in ["measurement", "log", "configuration", "sensor", "network"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await
            .expect("the catalog is read");
        assert!(exists, "the table {table} exists after the migrations");
    }

    let answer = emulator.invoke_ok(&MIGRATE, &event("migrate")).await;
    assert_eq!(
        answer,
        json!({"applied": [], "latest": latest}),
        "the second run applies none"
    );
}

#[tokio::test]
async fn a_function_without_its_database_setting_reports_an_init_error() {
    let mut emulator = Emulator::start().await;
    // The invocation waits in the emulator for the function.
    let invocation = {
        let client = emulator.client.clone();
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{}/invocations",
            emulator.port, STATUS.name
        );
        let body = event("status").to_string();
        tokio::spawn(async move {
            let response = client
                .post(url)
                .body(body)
                .timeout(INVOCATION_TIMEOUT)
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
    };
    // The init error answers the invocation the emulator holds; the invocation may
    // reach it a little after the function exits, so the function runs until the
    // answer comes, a few times at most.
    let deadline = Instant::now() + INVOCATION_TIMEOUT;
    for _attempt in 0..10 {
        emulator.start_function(&STATUS, &[]);
        let process = emulator.functions.last_mut().expect("the function started");
        let remaining = deadline.saturating_duration_since(Instant::now());
        let exit = eventually(remaining, || std::future::ready(process.exit_status())).await;
        let exit = exit.unwrap_or_else(|| {
            panic!(
                "status without DATABASE_URL did not exit: {}",
                process.output()
            )
        });
        assert!(
            !exit.success(),
            "status without DATABASE_URL exits with a failure, not {exit}"
        );
        let answered = eventually(Duration::from_secs(2), || {
            std::future::ready(invocation.is_finished().then_some(()))
        })
        .await;
        if answered.is_some() {
            break;
        }
    }
    assert!(
        invocation.is_finished(),
        "the emulator got no init error: the invocation still waits"
    );
    let (status, text) = invocation
        .await
        .expect("the invocation task ran")
        .expect("the invocation was answered");
    let answer: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("the answer is not JSON ({error}): {text}"));
    assert_eq!(
        status, 200,
        "the emulator answers an init error with 200: {answer}"
    );
    assert!(
        answer["errorMessage"]
            .as_str()
            .is_some_and(|message| message.contains("DATABASE_URL")),
        "the diagnostic names the missing setting: {answer}"
    );
    assert!(
        answer["errorType"].is_string(),
        "the diagnostic has an error type: {answer}"
    );
}

#[test]
fn every_event_file_is_json_and_the_http_events_are_version_2() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&directory).expect("functions/events/ is read") {
        let path = entry.expect("an entry is read").path();
        if path
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            let event = event(&name);
            if event.get("routeKey").is_some() {
                assert_eq!(
                    event["version"],
                    json!("2.0"),
                    "{name} is a payload 2.0 event"
                );
                assert_eq!(
                    event["rawPath"], event["requestContext"]["http"]["path"],
                    "{name}'s rawPath is its request context's path"
                );
            }
            names.insert(name);
        }
    }
    for name in [
        "status",
        "users-sign-up",
        "ingest-measurements",
        "retain-logs",
        "publish-configurations-schedule",
        "publish-configurations-sqs",
        "migrate",
        "fallback-not-found",
    ] {
        assert!(names.contains(name), "functions/events/{name}.json exists");
    }
}
