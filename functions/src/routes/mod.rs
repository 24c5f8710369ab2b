//! The REST API: one router per route function. The Lambda binary of a function
//! serves its router through `lambda_http`; the harness merges them all.

pub mod configurations;
pub mod credentials;
pub mod dashboard;
pub mod export;
pub mod logs;
pub mod measurements;
pub mod networks;
pub mod sensors;
pub mod status;
pub mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use sensorium_shared::limits::MAXIMUM_BODY_SIZE;

use crate::AppState;

/// The route functions: each is one Lambda binary (`src/bin/<name>.rs`) serving the
/// routes of one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteFunction {
    Status,
    Users,
    Networks,
    Sensors,
    Configurations,
    Credentials,
    Measurements,
    Logs,
    /// The exports, streamed through a function URL rather than API Gateway (see
    /// [`export::EXPORT_ROUTES`]), so not in [`ROUTES`].
    Export,
}

impl RouteFunction {
    pub const ALL: [Self; 9] = [
        Self::Status,
        Self::Users,
        Self::Networks,
        Self::Sensors,
        Self::Configurations,
        Self::Credentials,
        Self::Measurements,
        Self::Logs,
        Self::Export,
    ];

    /// The function's name: its binary's, and its resource's in `infra/` in camel case.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Users => "users",
            Self::Networks => "networks",
            Self::Sensors => "sensors",
            Self::Configurations => "configurations",
            Self::Credentials => "credentials",
            Self::Measurements => "measurements",
            Self::Logs => "logs",
            Self::Export => "export",
        }
    }

    /// The function's routes, without the state and what [`finish`] adds.
    fn routes(self) -> Router<AppState> {
        match self {
            Self::Status => status::router(),
            Self::Users => users::router(),
            Self::Networks => networks::router(),
            Self::Sensors => sensors::router(),
            Self::Configurations => configurations::router(),
            Self::Credentials => credentials::router(),
            Self::Measurements => measurements::router(),
            Self::Logs => logs::router(),
            Self::Export => export::router(),
        }
    }
}

/// The route table: method, path and the function that serves it. `infra/` and the
/// OpenAPI document must declare exactly these (checked by tests).
pub const ROUTES: &[(&str, &str, RouteFunction)] = &[
    ("GET", "/status", RouteFunction::Status),
    ("POST", "/users", RouteFunction::Users),
    ("POST", "/authentication", RouteFunction::Users),
    ("DELETE", "/authentication", RouteFunction::Users),
    ("POST", "/networks", RouteFunction::Networks),
    ("GET", "/networks", RouteFunction::Networks),
    (
        "GET",
        "/networks/{network_identifier}",
        RouteFunction::Networks,
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors",
        RouteFunction::Sensors,
    ),
    (
        "POST",
        "/networks/{network_identifier}/sensors",
        RouteFunction::Sensors,
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}",
        RouteFunction::Sensors,
    ),
    (
        "PUT",
        "/networks/{network_identifier}/sensors/{sensor_identifier}",
        RouteFunction::Sensors,
    ),
    (
        "POST",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/credentials",
        RouteFunction::Credentials,
    ),
    (
        "DELETE",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/credentials",
        RouteFunction::Credentials,
    ),
    (
        "POST",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/configurations",
        RouteFunction::Configurations,
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/configurations",
        RouteFunction::Configurations,
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/measurements",
        RouteFunction::Measurements,
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/logs",
        RouteFunction::Logs,
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/logs/aggregates",
        RouteFunction::Logs,
    ),
];

/// The router of one route function, as its Lambda binary serves it.
pub fn function_router(function: RouteFunction, state: AppState) -> Router {
    finish(function.routes(), state)
}

/// All routes in one router, as the local harness serves them.
pub fn router(state: AppState) -> Router {
    let router = RouteFunction::ALL
        .into_iter()
        .fold(Router::new(), |router, function| {
            router.merge(function.routes())
        })
        .merge(dashboard::router());
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
        let not_served = || async { crate::error::error_response(StatusCode::NOT_FOUND) };
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
        .fallback(|| async { crate::error::error_response(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            crate::error::error_response(StatusCode::METHOD_NOT_ALLOWED)
        })
}

/// What every router shares: the body size limit and JSON 404 and 405 answers.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { crate::error::error_response(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            crate::error::error_response(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(DefaultBodyLimit::max(MAXIMUM_BODY_SIZE))
        .with_state(state)
}

/// A JSON document already encoded: answered as it is.
pub struct JsonText(pub Bytes);

impl From<String> for JsonText {
    fn from(json: String) -> Self {
        Self(json.into())
    }
}

impl IntoResponse for JsonText {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}
