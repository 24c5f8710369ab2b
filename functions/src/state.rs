//! What route handlers are given: built once in a function's `main` (or by the
//! harness, or a test) and shared by every request.

use std::sync::Arc;

use chrono::{DateTime, Utc};
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
}

impl AppState {
    pub fn new(pool: PgPool, deployment: Deployment, outbox: Arc<dyn OutboxTrigger>) -> Self {
        Self {
            pool,
            deployment: Arc::new(deployment),
            start_timestamp: Utc::now(),
            outbox,
            access_cache: Arc::new(AccessCache::new(ACCESS_CACHE_TIME_TO_LIVE)),
        }
    }
}
