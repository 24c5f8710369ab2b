//! AWS IoT Core's data plane carries configurations to sensors.

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::error::DisplayErrorContext;
use aws_sdk_iotdataplane::primitives::Blob;
use sensorium_shared::publisher::{BoxFuture, PublishError, Publisher};

/// Publishes through the IoT data plane's `Publish` (QoS 1, retained), which answers
/// once the broker accepted the message.
pub struct IotDataPublisher {
    client: Client,
}

impl IotDataPublisher {
    /// Credentials and region from the environment (the Lambda role's), requests to
    /// the account's data endpoint (`https://<prefix>-ats.iot.<region>.amazonaws.com`).
    pub async fn from_env(endpoint: &str) -> Self {
        let shared = super::sdk_config().await;
        let config = aws_sdk_iotdataplane::config::Builder::from(&shared)
            .endpoint_url(endpoint)
            .build();
        Self::new(Client::from_conf(config))
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// Keeps the SDK's error with its whole context (service code, HTTP status).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct IotDataError(String);

impl Publisher for IotDataPublisher {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            self.client
                .publish()
                .topic(topic)
                .qos(1)
                .retain(true)
                .payload(Blob::new(payload))
                .send()
                .await
                .map(|_| ())
                .map_err(|error| {
                    PublishError(Box::new(IotDataError(
                        DisplayErrorContext(&error).to_string(),
                    )))
                })
        })
    }
}
