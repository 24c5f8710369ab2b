//! The `credentials` route function: issues and revokes sensors' certificates on AWS
//! IoT Core. The only function that links aws-sdk-iot.

use std::sync::Arc;

use sensorium_functions::lambda;
use sensorium_functions::routes::RouteFunction;
use sensorium_iot::IotCredentials;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::serve_routes_with(RouteFunction::Credentials, |state| async {
        let provider = IotCredentials::from_env().await?;
        Ok(state.with_credentials(Arc::new(provider)))
    })
    .await
}
