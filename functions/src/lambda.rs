//! What the `main` of every Lambda binary does: telemetry, settings from the
//! environment, the pool and the adapters built once, then the runtime loop.

use std::sync::Arc;

use sensorium_shared::publisher::ScheduledOnly;
use sensorium_shared::settings::{self, Deployment};
use sensorium_shared::{database, telemetry};

use crate::{AppState, routes};

/// Connections per Lambda instance: one request at a time runs in each, and RDS
/// allows a few hundred connections across all instances.
const LAMBDA_POOL_SIZE: u32 = 2;

/// Runs the route function `function` under `lambda_http`.
pub async fn serve_routes(function: &str) -> Result<(), lambda_http::Error> {
    telemetry::init();
    let pool = database::connect(
        &settings::database_url()?,
        settings::database_max_connections(LAMBDA_POOL_SIZE)?,
    )?;
    // In the cloud the publisher function sweeps the outbox on its schedule.
    let state = AppState::new(pool, Deployment::from_env(), Arc::new(ScheduledOnly));
    let router = routes::function_router(function, state)
        .ok_or_else(|| format!("no route function is named {function}"))?;
    lambda_http::run(router).await
}
