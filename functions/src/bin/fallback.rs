//! The `fallback` function: API Gateway's `$default` route. Answers what no other
//! route takes with the contract's JSON 404 (unknown path) or 405 (known path, other
//! method, with `Allow`).

use sensorium_functions::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_fallback().await
}
