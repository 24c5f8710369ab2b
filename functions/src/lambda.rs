//! What the `main` of every Lambda binary does: telemetry, settings from the
//! environment, the pool and the adapters built once, then the runtime loop.

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::LambdaEvent;
use sensorium_shared::database::Role;
use sensorium_shared::publisher::{OutboxTrigger, ScheduledOnly};
use sensorium_shared::settings::{self, Deployment};
use sensorium_shared::telemetry;
use sqlx::PgPool;

use crate::cloud::{self, SqsOutboxTrigger, SqsQueue};
use crate::routes::RouteFunction;
use crate::topics::Topic;
use crate::{AppState, routes};

/// Connections per Lambda instance: one request at a time runs in each, and RDS
/// allows a few hundred connections across all instances.
const LAMBDA_POOL_SIZE: u32 = 2;

/// `result`, with an error reported to the runtime API as the function's init error
/// before it is returned: Lambda then fails the pending invocation with it and logs it,
/// instead of seeing a process that exited unexplained (and retrying it).
pub async fn init<T, E>(result: Result<T, E>) -> Result<T, lambda_runtime::Error>
where
    E: Into<lambda_runtime::Error>,
{
    let error = match result {
        Ok(value) => return Ok(value),
        Err(error) => error.into(),
    };
    tracing::error!(error = %error, "the function could not start");
    if let Err(reporting) = report_init_error(&error.to_string()).await {
        tracing::error!(error = %reporting, "reporting the init error to the runtime API failed");
    }
    Err(error)
}

async fn report_init_error(message: &str) -> Result<(), lambda_runtime::Error> {
    use lambda_runtime_api_client::body::Body;
    let client = lambda_runtime_api_client::Client::builder().build()?;
    let body = serde_json::json!({"errorType": "Runtime.InitError", "errorMessage": message});
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?;
    client.call(request).await?;
    Ok(())
}

/// What every function does first: telemetry, then the pool from the environment
/// (`DATABASE_URL`, or the secret `DATABASE_SECRET_ARN` names), connecting lazily.
/// Its statements may run as long as `role` allows.
/// A setting that is missing or wrong is reported as the init error ([`init`]).
pub async fn start(role: Role) -> Result<PgPool, lambda_runtime::Error> {
    telemetry::init();
    let max_connections = init(settings::database_max_connections(LAMBDA_POOL_SIZE)).await?;
    init(cloud::connect_from_env(max_connections, role).await).await
}

/// Runs the route function `function` under `lambda_http`.
pub async fn serve_routes(function: RouteFunction) -> Result<(), lambda_http::Error> {
    serve_routes_with(function, |state| async { Ok(state) }).await
}

/// [`serve_routes`] with the state completed by `complete` (adapters a single
/// function needs, such as the credentials provider) once telemetry is up.
pub async fn serve_routes_with<F, Fut>(
    function: RouteFunction,
    complete: F,
) -> Result<(), lambda_http::Error>
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = Result<AppState, lambda_http::Error>>,
{
    let state = route_state().await?;
    let state = init(complete(state).await).await?;
    lambda_http::run(routes::function_router(function, state)).await
}

/// Runs the route function `function` behind a function URL with response streaming:
/// its answers reach the client as they are written, beyond API Gateway's 6 MB.
pub async fn serve_routes_streamed(function: RouteFunction) -> Result<(), lambda_http::Error> {
    let state = route_state().await?;
    lambda_http::run_with_streaming_response(routes::function_router(function, state)).await
}

/// What every route function starts with: the pool, the token lifetime, and the outbox
/// trigger. In the cloud the publisher function sweeps the outbox on its schedule, and
/// when a message on its queue (`PUBLISH_QUEUE_URL`, set where configurations are
/// created) asks for a sweep.
async fn route_state() -> Result<AppState, lambda_http::Error> {
    let pool = start(Role::Route).await?;
    let token_lifetime = init(settings::token_lifetime()).await?;
    let outbox: Arc<dyn OutboxTrigger> = match settings::publish_queue_url() {
        Some(url) => Arc::new(SqsOutboxTrigger::new(
            SqsQueue::client_from_env().await,
            url,
        )),
        None => Arc::new(ScheduledOnly),
    };
    Ok(AppState::new(pool, Deployment::from_env(), outbox).with_token_lifetime(token_lifetime))
}

/// Runs the `$default` route's function: the contract's JSON 404 and 405 for what
/// API Gateway routes nowhere else. It needs no database.
pub async fn serve_fallback() -> Result<(), lambda_http::Error> {
    telemetry::init();
    lambda_http::run(routes::fallback_router()).await
}

/// Runs the `dashboard` function: the dashboard's embedded files. It needs no database.
pub async fn serve_dashboard() -> Result<(), lambda_http::Error> {
    telemetry::init();
    lambda_http::run(routes::dashboard::router::<()>()).await
}

/// Runs the topic function of `topic` on the SQS batches of its queue.
pub async fn serve_topic(topic: Topic) -> Result<(), lambda_runtime::Error> {
    let pool = start(Role::Topic).await?;
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
pub async fn serve_job<F, Fut, T, E>(role: Role, job: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(PgPool) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: serde::Serialize,
    E: Into<lambda_runtime::Error>,
{
    let pool = start(role).await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        |_: LambdaEvent<serde_json::Value>| {
            let run = job(pool.clone());
            async move { run.await.map_err(Into::into) }
        },
    ))
    .await
}
