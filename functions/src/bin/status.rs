//! The `status` route function: `GET /status`.

use sensorium_functions::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_routes("status").await
}
