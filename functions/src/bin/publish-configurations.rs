//! The scheduled configuration publisher: sweeps the outbox and publishes through
//! the AWS IoT data plane (`IOT_DATA_ENDPOINT`).

use std::sync::Arc;

use sensorium_functions::cloud::IotDataPublisher;
use sensorium_functions::jobs::publish_configurations;
use sensorium_functions::lambda;
use sensorium_shared::settings;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let publisher = Arc::new(IotDataPublisher::from_env(&settings::iot_data_endpoint()?).await);
    lambda::serve_scheduled(move |pool| {
        let publisher = Arc::clone(&publisher);
        async move {
            publish_configurations::run(&pool, publisher.as_ref())
                .await
                .map(|_| ())
        }
    })
    .await
}
