//! The `networks` route function: `POST /networks`, `GET /networks` and `GET /networks/{network_identifier}`.

use sensorium_functions::lambda;
use sensorium_functions::routes::RouteFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_routes(RouteFunction::Networks).await
}
