//! The REST API: one router per route function. The Lambda binary of a function
//! serves its router through `lambda_http`; the harness merges them all.

pub mod status;

use axum::Router;
use axum::http::StatusCode;

use crate::AppState;

/// The route table: method, path and the function that serves it. `infra/` and the
/// OpenAPI document must declare exactly these (checked by tests).
pub const ROUTES: &[(&str, &str, &str)] = &[("GET", "/status", "status")];

/// Every route function's router, by function name.
pub fn function_router(function: &str, state: AppState) -> Option<Router> {
    let router = match function {
        "status" => status::router(),
        _ => return None,
    };
    Some(finish(router, state))
}

/// All routes in one router, as the local harness serves them.
pub fn router(state: AppState) -> Router {
    finish(Router::new().merge(status::router()), state)
}

/// What every router shares: JSON 404 and 405 answers.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { sensorium_shared::error::error_response(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            sensorium_shared::error::error_response(StatusCode::METHOD_NOT_ALLOWED)
        })
        .with_state(state)
}
