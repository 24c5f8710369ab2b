//! What route handlers are given: built once in a function's `main` (or by the
//! harness, or a test) and shared by every request.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use sensorium_shared::credentials::{CredentialsProvider, NoCredentials};
use sensorium_shared::limits::DEFAULT_TOKEN_LIFETIME_DAYS;
use sensorium_shared::publisher::OutboxTrigger;
use sensorium_shared::settings::Deployment;
use sqlx::PgPool;

use crate::access_cache::{ACCESS_CACHE_TIME_TO_LIVE, AccessCache};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub deployment: Arc<Deployment>,
    /// When this process started, reported by `GET /status`.
    pub start_timestamp: DateTime<Utc>,
    pub outbox: Arc<dyn OutboxTrigger>,
    /// Recent decisions of `crate::auth` that let requests through.
    pub access_cache: Arc<AccessCache>,
    /// Issues and revokes sensors' broker credentials; [`NoCredentials`] unless set.
    pub credentials: Arc<dyn CredentialsProvider>,
    /// How long the access tokens issued here work; 30 days unless set.
    pub token_lifetime: TimeDelta,
}

impl AppState {
    pub fn new(pool: PgPool, deployment: Deployment, outbox: Arc<dyn OutboxTrigger>) -> Self {
        Self {
            pool,
            deployment: Arc::new(deployment),
            start_timestamp: Utc::now(),
            outbox,
            access_cache: Arc::new(AccessCache::new(ACCESS_CACHE_TIME_TO_LIVE)),
            credentials: Arc::new(NoCredentials),
            token_lifetime: TimeDelta::days(DEFAULT_TOKEN_LIFETIME_DAYS),
        }
    }

    /// The state issuing access tokens that work for `lifetime`.
    pub fn with_token_lifetime(mut self, lifetime: TimeDelta) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// The state with `provider` issuing sensors' broker credentials.
    pub fn with_credentials(mut self, provider: Arc<dyn CredentialsProvider>) -> Self {
        self.credentials = provider;
        self
    }
}
