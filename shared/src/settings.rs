//! Settings from the environment (`.env.example` lists them all). Read once in a
//! function's `main`; handlers get them through their state.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// What `GET /status` reports about the running deployment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployment {
    pub environment: String,
    pub commit_sha: String,
    pub branch_name: String,
}

impl Deployment {
    pub fn from_env() -> Self {
        Self {
            environment: optional("ENVIRONMENT").unwrap_or_else(|| "development".into()),
            commit_sha: optional("COMMIT_SHA").unwrap_or_else(|| "unknown".into()),
            branch_name: optional("BRANCH_NAME").unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// `DATABASE_URL`, required by every function.
pub fn database_url() -> Result<String, SettingsError> {
    optional("DATABASE_URL").ok_or(SettingsError::Missing("DATABASE_URL"))
}

/// `DATABASE_MAX_CONNECTIONS`: pool size; small by default, as each Lambda instance
/// holds its own pool and RDS allows a few hundred connections in all.
pub fn database_max_connections(default: u32) -> Result<u32, SettingsError> {
    match optional("DATABASE_MAX_CONNECTIONS") {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| SettingsError::Invalid {
            name: "DATABASE_MAX_CONNECTIONS",
            reason: "not a positive integer".into(),
        }),
    }
}

/// `MQTT_URL`: `mqtt://[user:password@]host:port`, `mqtts://` for TLS.
pub fn mqtt_url() -> Result<url::Url, SettingsError> {
    let value = optional("MQTT_URL").ok_or(SettingsError::Missing("MQTT_URL"))?;
    let url = url::Url::parse(&value).map_err(|error| SettingsError::Invalid {
        name: "MQTT_URL",
        reason: error.to_string(),
    })?;
    match url.scheme() {
        "mqtt" | "mqtts" if url.host_str().is_some() => Ok(url),
        _ => Err(SettingsError::Invalid {
            name: "MQTT_URL",
            reason: "expected mqtt://host:port or mqtts://host:port".into(),
        }),
    }
}

/// `HTTP_ADDRESS`, where the local harness listens; `127.0.0.1:8421` by default.
pub fn http_address() -> Result<SocketAddr, SettingsError> {
    optional("HTTP_ADDRESS")
        .unwrap_or_else(|| "127.0.0.1:8421".into())
        .parse()
        .map_err(|_| SettingsError::Invalid {
            name: "HTTP_ADDRESS",
            reason: "expected host:port, e.g. 127.0.0.1:8421".into(),
        })
}

/// `MQTT_CLIENT_ID`: the bridge's fixed client id, which keeps its broker session.
pub fn mqtt_client_id() -> String {
    optional("MQTT_CLIENT_ID").unwrap_or_else(|| "sensorium-bridge".into())
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// `IOT_DATA_ENDPOINT`: the account's AWS IoT data endpoint, where the cloud
/// publisher sends configurations (`aws iot describe-endpoint --endpoint-type
/// iot:Data-ATS`, with `https://` before it).
pub fn iot_data_endpoint() -> Result<String, SettingsError> {
    optional("IOT_DATA_ENDPOINT").ok_or(SettingsError::Missing("IOT_DATA_ENDPOINT"))
}

/// Who issues sensors' broker credentials (`CREDENTIALS_PROVIDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsProviderKind {
    /// Mosquitto's dynamic-security plugin, administered through `MQTT_URL`'s user.
    Mosquitto,
    /// AWS IoT Core things and certificates (the cloud's `credentials` function).
    AwsIot,
    /// A plain broker: the credentials routes answer 501.
    None,
}

/// `CREDENTIALS_PROVIDER`: `mosquitto`, `aws-iot` or `none` (the default).
pub fn credentials_provider() -> Result<CredentialsProviderKind, SettingsError> {
    match optional("CREDENTIALS_PROVIDER").as_deref() {
        None | Some("none") => Ok(CredentialsProviderKind::None),
        Some("mosquitto") => Ok(CredentialsProviderKind::Mosquitto),
        Some("aws-iot") => Ok(CredentialsProviderKind::AwsIot),
        Some(_) => Err(SettingsError::Invalid {
            name: "CREDENTIALS_PROVIDER",
            reason: "expected mosquitto, aws-iot or none".into(),
        }),
    }
}
