//! The `users` route function: `POST /users` and `POST /authentication`.

use sensorium_functions::lambda;
use sensorium_functions::routes::RouteFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_routes(RouteFunction::Users).await
}
