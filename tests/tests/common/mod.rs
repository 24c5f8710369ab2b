//! What the end-to-end tests share: the harness spawned on port 0 against the fresh
//! database that `#[sqlx::test]` gives each test, and an HTTP client for it.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod mqtt;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Polls `check` until it returns `Some` or `timeout` passes; asynchronous effects
/// are awaited this way, never with a fixed sleep.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
