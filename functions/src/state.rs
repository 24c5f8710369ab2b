//! What route handlers are given: built once in a function's `main` (or by the
//! harness, or a test) and shared by every request.

use std::sync::Arc;

use axum::body::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use sensorium_shared::credentials::{CredentialsProvider, NoCredentials};
use sensorium_shared::domain::Identifier;
use sensorium_shared::limits::DEFAULT_TOKEN_LIFETIME_DAYS;
use sensorium_shared::publisher::OutboxTrigger;
use sensorium_shared::queries::networks;
use sensorium_shared::settings::Deployment;
use sqlx::PgPool;

use crate::access_cache::{ACCESS_CACHE_TIME_TO_LIVE, AccessCache};
use crate::coalesce::Coalescer;
use crate::count_days_cache::CountDaysCache;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub deployment: Arc<Deployment>,
    /// When this process started, reported by `GET /status`.
    pub start_timestamp: DateTime<Utc>,
    pub outbox: Arc<dyn OutboxTrigger>,
    /// Recent decisions of `crate::auth` that let requests through.
    pub access_cache: Arc<AccessCache>,
    /// Where sensors' pages without a cursor start looking, read lately.
    pub count_days: Arc<CountDaysCache>,
    /// Issues and revokes sensors' broker credentials; [`NoCredentials`] unless set.
    pub credentials: Arc<dyn CredentialsProvider>,
    /// How long the access tokens issued here work; 30 days unless set.
    pub token_lifetime: TimeDelta,
    /// Network overviews (their JSON), one query at a time a network for all the
    /// requests that wait for it together.
    pub network_activity: Arc<Coalescer<Identifier, Bytes, sqlx::Error>>,
}

impl AppState {
    pub fn new(pool: PgPool, deployment: Deployment, outbox: Arc<dyn OutboxTrigger>) -> Self {
        let network_activity = {
            let pool = pool.clone();
            Coalescer::new(move |network| {
                let pool = pool.clone();
                async move {
                    let overview = networks::read_network_activity(&pool, network).await?;
                    Ok(Bytes::from(overview))
                }
            })
        };
        Self {
            pool,
            deployment: Arc::new(deployment),
            start_timestamp: Utc::now(),
            outbox,
            access_cache: Arc::new(AccessCache::new(ACCESS_CACHE_TIME_TO_LIVE)),
            count_days: Arc::new(CountDaysCache::new()),
            credentials: Arc::new(NoCredentials),
            token_lifetime: TimeDelta::days(DEFAULT_TOKEN_LIFETIME_DAYS),
            network_activity,
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
