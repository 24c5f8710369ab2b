//! The Sensorium functions. Each binary in `src/bin` is one Lambda function with a
//! short `main`; the handlers live here so that tests and the local harness call
//! exactly what the Lambdas call.

pub mod access_cache;
pub mod auth;
pub mod cloud;
pub mod coalesce;
pub mod count_days_cache;
pub mod error;
pub mod expiring;
pub mod extract;
pub mod jobs;
pub mod lambda;
pub mod routes;
pub mod state;
pub mod topics;

pub use state::AppState;
