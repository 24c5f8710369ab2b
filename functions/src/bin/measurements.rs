//! The `measurements` route function: the measurements of a sensor: pages and hourly averages.

use sensorium_functions::lambda;
use sensorium_functions::routes::RouteFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_routes(RouteFunction::Measurements).await
}
