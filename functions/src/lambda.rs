//! What the `main` of every Lambda binary does: telemetry, settings from the
//! environment, the pool and the adapters built once, then the runtime loop.

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::LambdaEvent;
use sensorium_shared::publisher::{OutboxTrigger, ScheduledOnly};
use sensorium_shared::settings::{self, Deployment};
use sensorium_shared::telemetry;
use sqlx::PgPool;

use crate::cloud::{self, SqsOutboxTrigger, SqsQueue};
use crate::topics::Topic;
use crate::{AppState, routes};

/// Connections per Lambda instance: one request at a time runs in each, and RDS
/// allows a few hundred connections across all instances.
const LAMBDA_POOL_SIZE: u32 = 2;

/// What every function does first: telemetry, then the pool from the environment
/// (`DATABASE_URL`, or the secret `DATABASE_SECRET_ARN` names), connecting lazily.
pub async fn start() -> Result<PgPool, lambda_runtime::Error> {
    telemetry::init();
    let max_connections = settings::database_max_connections(LAMBDA_POOL_SIZE)?;
    Ok(cloud::connect_from_env(max_connections).await?)
}

/// Runs the route function `function` under `lambda_http`.
pub async fn serve_routes(function: &str) -> Result<(), lambda_http::Error> {
    serve_routes_with(function, |state| async { Ok(state) }).await
}

/// [`serve_routes`] with the state completed by `complete` (adapters a single
/// function needs, such as the credentials provider) once telemetry is up.
pub async fn serve_routes_with<F, Fut>(
    function: &str,
    complete: F,
) -> Result<(), lambda_http::Error>
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = Result<AppState, lambda_http::Error>>,
{
    let pool = start().await?;
    let token_lifetime = settings::token_lifetime()?;
    // In the cloud the publisher function sweeps the outbox on its schedule, and when
    // a message on its queue asks for a sweep.
    let outbox: Arc<dyn OutboxTrigger> = match settings::publish_queue_url() {
        Some(url) => Arc::new(SqsOutboxTrigger::new(
            SqsQueue::client_from_env().await,
            url,
        )),
        None => Arc::new(ScheduledOnly),
    };
    let state =
        AppState::new(pool, Deployment::from_env(), outbox).with_token_lifetime(token_lifetime);
    let state = complete(state).await?;
    let router = routes::function_router(function, state)
        .ok_or_else(|| format!("no route function is named {function}"))?;
    lambda_http::run(router).await
}

/// Runs the `$default` route's function: the contract's JSON 404 and 405 for what
/// API Gateway routes nowhere else. It needs no database.
pub async fn serve_fallback() -> Result<(), lambda_http::Error> {
    telemetry::init();
    lambda_http::run(routes::fallback_router()).await
}

/// Runs the topic function of `topic` on the SQS batches of its queue.
pub async fn serve_topic(topic: Topic) -> Result<(), lambda_runtime::Error> {
    let pool = start().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: LambdaEvent<SqsEvent>| {
            let pool = pool.clone();
            async move { Ok::<_, lambda_runtime::Error>(topic.handle(&pool, event).await) }
        },
    ))
    .await
}

/// Runs a job function: each event (a schedule's, a queue's batch, a direct
/// invocation; whatever its content) runs `job` once and answers what it returns.
/// A failed job fails the invocation, so a queue's batch comes back.
pub async fn serve_job<F, Fut, T, E>(job: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(PgPool) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: serde::Serialize,
    E: Into<lambda_runtime::Error>,
{
    let pool = start().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        |_: LambdaEvent<serde_json::Value>| {
            let run = job(pool.clone());
            async move { run.await.map_err(Into::into) }
        },
    ))
    .await
}
