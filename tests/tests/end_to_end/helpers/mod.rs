//! What the end-to-end tests share: the harness spawned on port 0 against the fresh
//! database that `#[sqlx::test]` gives each test and an HTTP client for it (here); the
//! broker and a sensor's MQTT client (`mqtt`); users, networks and sensors made
//! through the API, and data stored as ingestion stores it (`scene`); cursor pages
//! (`pages`).

pub mod mqtt;
pub mod pages;
pub mod scene;

use std::net::SocketAddr;
use std::sync::Arc;

use sensorium_functions::AppState;
use sensorium_shared::credentials::{CredentialsProvider, NoCredentials};
use sensorium_shared::publisher::{OutboxTrigger, ScheduledOnly};
use sensorium_shared::settings::Deployment;
use serde_json::Value;
use sqlx::PgPool;

pub struct TestApp {
    pub address: SocketAddr,
    pub pool: PgPool,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with_outbox(pool, Arc::new(ScheduledOnly)).await
    }

    pub async fn spawn_with_outbox(pool: PgPool, outbox: Arc<dyn OutboxTrigger>) -> Self {
        Self::spawn_with(pool, outbox, Arc::new(NoCredentials)).await
    }

    /// The harness's HTTP server with the outbox and the sensors' credentials provider.
    pub async fn spawn_with(
        pool: PgPool,
        outbox: Arc<dyn OutboxTrigger>,
        credentials: Arc<dyn CredentialsProvider>,
    ) -> Self {
        let state = AppState {
            outbox,
            ..Self::state(pool)
        };
        Self::spawn_state(state.with_credentials(credentials)).await
    }

    /// The harness's HTTP server with `state`: another instance when given the pool of
    /// one running already.
    pub async fn spawn_state(state: AppState) -> Self {
        let pool = state.pool.clone();
        let address = sensorium_harness::server::spawn_http("127.0.0.1:0".parse().unwrap(), state)
            .await
            .expect("the harness binds a free port");
        Self {
            address,
            pool,
            client: reqwest::Client::new(),
        }
    }

    /// The state [`TestApp::spawn`] serves, for a test to change before
    /// [`TestApp::spawn_state`].
    pub fn state(pool: PgPool) -> AppState {
        let deployment = Deployment {
            environment: "test".into(),
            commit_sha: "0123abc".into(),
            branch_name: "main".into(),
        };
        AppState::new(pool, deployment, Arc::new(ScheduledOnly))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Sends a request and returns the status and the JSON body (`Value::Null` if none).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the harness answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .cloned();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            // Every body the API sends is JSON, and says so.
            assert_eq!(
                content_type.as_ref().map(|value| value.as_bytes()),
                Some(&b"application/json"[..]),
                "{path}: the content type of a JSON body"
            );
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        (status, body)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, path, token, None)
            .await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PUT, path, token, Some(body))
            .await
    }
}

/// The answer of a refused request: `status` and `{"details": <its reason phrase>}`,
/// the phrases spelled out as the contract spells them.
pub fn error(status: u16) -> (u16, Value) {
    let details = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        501 => "Not Implemented",
        _ => panic!("the API answers no error with status {status}"),
    };
    (status, serde_json::json!({ "details": details }))
}

/// The result of `query`, a count.
pub async fn count(pool: &PgPool, query: &'static str) -> i64 {
    sqlx::query_scalar(query).fetch_one(pool).await.unwrap()
}

/// The URL of the database `#[sqlx::test]` made for this test, for a process of its own.
pub async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut url: url::Url = std::env::var("DATABASE_URL").unwrap().parse().unwrap();
    url.set_path(&name);
    url.to_string()
}
