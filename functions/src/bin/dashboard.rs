//! The `dashboard` function: `GET /` (a redirect) and the dashboard's files under
//! `/dashboard/`, embedded in the binary.

use sensorium_functions::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_dashboard().await
}
