//! The REST API: one router per route function. The Lambda binary of a function
//! serves its router through `lambda_http`; the harness merges them all.

pub mod configurations;
pub mod credentials;
pub mod export;
pub mod logs;
pub mod measurements;
pub mod networks;
pub mod sensors;
pub mod status;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use sensorium_shared::limits::MAXIMUM_BODY_SIZE;

use crate::AppState;

/// The route table: method, path and the function that serves it. `infra/` and the
/// OpenAPI document must declare exactly these (checked by tests).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/status", "status"),
    ("POST", "/users", "users"),
    ("POST", "/authentication", "users"),
    ("DELETE", "/authentication", "users"),
    ("POST", "/networks", "networks"),
    ("GET", "/networks", "networks"),
    ("GET", "/networks/{network_identifier}", "networks"),
    ("GET", "/networks/{network_identifier}/sensors", "sensors"),
    ("POST", "/networks/{network_identifier}/sensors", "sensors"),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}",
        "sensors",
    ),
    (
        "PUT",
        "/networks/{network_identifier}/sensors/{sensor_identifier}",
        "sensors",
    ),
    (
        "POST",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/credentials",
        "credentials",
    ),
    (
        "DELETE",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/credentials",
        "credentials",
    ),
    (
        "POST",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/configurations",
        "configurations",
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/configurations",
        "configurations",
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/measurements",
        "measurements",
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/logs",
        "logs",
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/logs/aggregates",
        "logs",
    ),
];

/// Every route function's router, by function name.
pub fn function_router(function: &str, state: AppState) -> Option<Router> {
    let router = match function {
        "status" => status::router(),
        "users" => users::router(),
        "networks" => networks::router(),
        "sensors" => sensors::router(),
        "configurations" => configurations::router(),
        "credentials" => credentials::router(),
        "measurements" => measurements::router(),
        "logs" => logs::router(),
        "export" => export::router(),
        _ => return None,
    };
    Some(finish(router, state))
}

/// All routes in one router, as the local harness serves them.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .merge(status::router())
        .merge(users::router())
        .merge(networks::router())
        .merge(sensors::router())
        .merge(configurations::router())
        .merge(credentials::router())
        .merge(measurements::router())
        .merge(logs::router())
        .merge(export::router());
    finish(router, state)
}

/// The `$default` route's router: every path of [`ROUTES`] with its methods, none of
/// them served (API Gateway sends those to their functions), so that what reaches it
/// gets the contract's JSON 405, with `Allow`, on a known path and 404 elsewhere.
pub fn fallback_router() -> Router {
    let mut paths: Vec<(&str, MethodRouter)> = Vec::new();
    for &(method, path, _) in ROUTES {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("ROUTES has no {other} route"),
        };
        let not_served =
            || async { sensorium_shared::error::error_response(StatusCode::NOT_FOUND) };
        match paths.iter_mut().find(|(known, _)| *known == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).on(filter, not_served),
            None => paths.push((path, axum::routing::on(filter, not_served))),
        }
    }
    let router = paths
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        });
    router
        .fallback(|| async { sensorium_shared::error::error_response(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            sensorium_shared::error::error_response(StatusCode::METHOD_NOT_ALLOWED)
        })
}

/// What every router shares: the body size limit and JSON 404 and 405 answers.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { sensorium_shared::error::error_response(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            sensorium_shared::error::error_response(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(DefaultBodyLimit::max(MAXIMUM_BODY_SIZE))
        .with_state(state)
}

/// A JSON document already encoded: answered as it is.
pub struct JsonText(pub String);

impl IntoResponse for JsonText {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}
