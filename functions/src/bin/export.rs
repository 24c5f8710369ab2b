//! The `export` function: streamed exports of a sensor's measurements and logs, behind
//! its function URL with response streaming.

use sensorium_functions::lambda;
use sensorium_functions::routes::RouteFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_routes_streamed(RouteFunction::Export).await
}
