//! The `sensors` route function: the sensors of a network: list, create, rename.

use sensorium_functions::lambda;
use sensorium_functions::routes::RouteFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_routes(RouteFunction::Sensors).await
}
