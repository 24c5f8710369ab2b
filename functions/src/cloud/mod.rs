//! The cloud implementations of the edges in `sensorium_shared`: AWS IoT Core's data
//! plane carries configurations to sensors, SQS carries envelopes and outbox wake-ups,
//! and Secrets Manager holds the database's credentials. Every client honours the
//! SDK's standard settings (`AWS_REGION`, `AWS_ENDPOINT_URL` for an emulator, the
//! Lambda role's credentials).

mod database;
mod iot_data;
mod sqs;

use aws_config::SdkConfig;
use aws_smithy_http_client::tls;

pub use self::database::{DatabaseError, connect, connect_from_env};
pub use self::iot_data::IotDataPublisher;
pub use self::sqs::{SqsOutboxTrigger, SqsQueue};

/// The HTTPS client of the AWS SDK: rustls with ring, the SDK's default without
/// aws-lc-sys.
pub fn https_client() -> aws_sdk_iotdataplane::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The SDK's configuration from the environment, with [`https_client`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}
