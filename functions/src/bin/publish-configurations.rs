//! The configuration publisher: sweeps the outbox and publishes through the AWS IoT
//! data plane (`IOT_DATA_ENDPOINT`). Any event runs one sweep: the schedule's and the
//! configurations function's wake-ups both arrive through its FIFO queue, so sweeps
//! never overlap. Reports the age of the oldest unpublished configuration as a metric.

use std::sync::Arc;

use sensorium_functions::cloud::IotDataPublisher;
use sensorium_functions::jobs::publish_configurations;
use sensorium_functions::lambda;
use sensorium_shared::database::Role;
use sensorium_shared::settings::{self, Deployment};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let endpoint = lambda::init(settings::iot_data_endpoint()).await?;
    let publisher = Arc::new(IotDataPublisher::from_env(&endpoint).await);
    let environment = Deployment::from_env().environment;
    lambda::serve_job(Role::Publisher, move |pool| {
        let publisher = Arc::clone(&publisher);
        let environment = environment.clone();
        async move {
            let swept = publish_configurations::run(&pool, publisher.as_ref()).await;
            publish_configurations::report_oldest_unpublished(&pool, &environment).await;
            swept
        }
    })
    .await
}
