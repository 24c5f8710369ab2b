//! The cloud edge that gives each sensor its own broker identity: Mosquitto's
//! dynamic-security plugin in the local harness (and on any self-hosted Mosquitto ≥ 2.0),
//! AWS IoT Core's things and certificates in the cloud, or none on a plain broker.
//! Route handlers see only this trait; which implementation runs is a deployment
//! setting (`CREDENTIALS_PROVIDER`).

use serde::Serialize;

use crate::domain::Identifier;
use crate::publisher::BoxFuture;

/// What a sensor needs to connect to the broker, shown once: the server keeps only the
/// provider's own record (a password hash in the broker, a certificate in IoT Core).
/// `Debug` leaves the password and the private key out.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// For a Mosquitto managed by the server: user name and client id are the sensor
    /// identifier.
    Password {
        client_identifier: String,
        user_name: String,
        password: String,
    },
    /// For AWS IoT Core: an X.509 certificate of a thing named by the sensor identifier.
    Certificate {
        client_identifier: String,
        certificate_identifier: String,
        certificate_pem: String,
        private_key_pem: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password {
                client_identifier,
                user_name,
                ..
            } => formatter
                .debug_struct("Password")
                .field("client_identifier", client_identifier)
                .field("user_name", user_name)
                .finish_non_exhaustive(),
            Self::Certificate {
                client_identifier,
                certificate_identifier,
                ..
            } => formatter
                .debug_struct("Certificate")
                .field("client_identifier", client_identifier)
                .field("certificate_identifier", certificate_identifier)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The deployment's broker does not manage credentials (provider "none").
    #[error("this deployment's broker does not manage sensor credentials")]
    Unsupported,
    /// The broker or the cloud service refused or did not answer; nothing was issued.
    #[error("the credentials provider failed")]
    Provider(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CredentialsError {
    pub fn provider(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Provider(cause.into())
    }
}

/// Issues and revokes a sensor's broker credentials. The broker then lets a sensor
/// with credentials publish only to its own [`SensorTopics::published`] and subscribe
/// only to its own [`SensorTopics::configurations`].
pub trait CredentialsProvider: Send + Sync {
    /// New credentials for the sensor; any it had stop working at once.
    fn issue(&self, sensor: Identifier) -> BoxFuture<'_, Result<Credentials, CredentialsError>>;

    /// The sensor's credentials stop working and its open connection is closed. A
    /// sensor without credentials is not an error.
    fn revoke(&self, sensor: Identifier) -> BoxFuture<'_, Result<(), CredentialsError>>;
}

/// A plain broker: nothing to issue.
pub struct NoCredentials;

impl CredentialsProvider for NoCredentials {
    fn issue(&self, _: Identifier) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async { Err(CredentialsError::Unsupported) })
    }

    fn revoke(&self, _: Identifier) -> BoxFuture<'_, Result<(), CredentialsError>> {
        Box::pin(async { Err(CredentialsError::Unsupported) })
    }
}

/// The topics of one sensor, as the broker's access rules name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorTopics {
    /// Where the sensor may publish: its heartbeats, measurements and log messages.
    pub published: [String; 3],
    /// The one topic it may subscribe to.
    pub configurations: String,
}

impl SensorTopics {
    pub fn of(sensor: Identifier) -> Self {
        Self {
            published: [
                format!("heartbeats/{sensor}"),
                format!("measurements/{sensor}"),
                format!("log-messages/{sensor}"),
            ],
            configurations: format!("configurations/{sensor}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_tagged_by_kind_as_the_contract_shows_them() {
        let password = Credentials::Password {
            client_identifier: "c".into(),
            user_name: "u".into(),
            password: "p".into(),
        };
        assert_eq!(
            serde_json::to_value(&password).unwrap(),
            serde_json::json!({"kind": "password", "client_identifier": "c", "user_name": "u", "password": "p"})
        );
        let certificate = Credentials::Certificate {
            client_identifier: "c".into(),
            certificate_identifier: "i".into(),
            certificate_pem: "cert".into(),
            private_key_pem: "key".into(),
        };
        assert_eq!(
            serde_json::to_value(&certificate).unwrap()["kind"],
            "certificate"
        );
    }

    #[test]
    fn a_sensor_publishes_to_its_three_topics_and_reads_its_configurations() {
        let sensor = Identifier::new();
        let topics = SensorTopics::of(sensor);
        assert_eq!(
            topics.published,
            [
                format!("heartbeats/{sensor}"),
                format!("measurements/{sensor}"),
                format!("log-messages/{sensor}"),
            ]
        );
        assert_eq!(topics.configurations, format!("configurations/{sensor}"));
    }
}
