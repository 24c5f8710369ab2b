//! The `measurements/+` topic function: SQS batches of bridge envelopes.

use sensorium_functions::lambda;
use sensorium_functions::topics::Topic;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve_topic(Topic::Measurements).await
}
