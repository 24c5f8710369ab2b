//! The cloud implementations of the edges in `sensorium_shared::publisher`: AWS IoT
//! Core's data plane carries configurations to sensors.

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::error::DisplayErrorContext;
use aws_sdk_iotdataplane::primitives::Blob;
use aws_smithy_http_client::tls;
use sensorium_shared::publisher::{BoxFuture, PublishError, Publisher};

/// Publishes through the IoT data plane's `Publish` (QoS 1, retained), which answers
/// once the broker accepted the message.
pub struct IotDataPublisher {
    client: Client,
}

/// The HTTPS client of the AWS SDK: rustls with ring, the SDK's default without
/// aws-lc-sys.
pub fn https_client() -> aws_sdk_iotdataplane::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

impl IotDataPublisher {
    /// Credentials and region from the environment (the Lambda role's), requests to
    /// the account's data endpoint (`https://<prefix>-ats.iot.<region>.amazonaws.com`).
    pub async fn from_env(endpoint: &str) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(https_client())
            .load()
            .await;
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
