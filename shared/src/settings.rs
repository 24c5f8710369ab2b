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

/// `DATABASE_URL`, required by the harness and the tools.
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

/// `TOKEN_LIFETIME_DAYS`: how long an access token works after it was issued, a
/// whole number of days from 1 to 3650; 30 unless set (docs/rest.md, "Access tokens").
pub fn token_lifetime() -> Result<chrono::TimeDelta, SettingsError> {
    let days = match optional("TOKEN_LIFETIME_DAYS") {
        None => crate::limits::DEFAULT_TOKEN_LIFETIME_DAYS,
        Some(value) => value
            .parse()
            .ok()
            .filter(|days| (1..=3650).contains(days))
            .ok_or_else(|| SettingsError::Invalid {
                name: "TOKEN_LIFETIME_DAYS",
                reason: "expected a whole number of days from 1 to 3650".into(),
            })?,
    };
    Ok(chrono::TimeDelta::days(days))
}

/// `MEASUREMENT_RETENTION_DAYS`: measurements older than this many days (by their
/// creation time, in whole months: see `jobs::retain_measurements`) are dropped; unset,
/// measurements are kept (API.md). A whole number from 1 to 36500.
pub fn measurement_retention() -> Result<Option<chrono::TimeDelta>, SettingsError> {
    let Some(value) = optional("MEASUREMENT_RETENTION_DAYS") else {
        return Ok(None);
    };
    let days: i64 = value
        .parse()
        .ok()
        .filter(|days| (1..=36500).contains(days))
        .ok_or_else(|| SettingsError::Invalid {
            name: "MEASUREMENT_RETENTION_DAYS",
            reason: "expected a whole number of days from 1 to 36500".into(),
        })?;
    Ok(Some(chrono::TimeDelta::days(days)))
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
/// publisher sends configurations: the host name as `aws iot describe-endpoint
/// --endpoint-type iot:Data-ATS` prints it, or a URL (`https://host`, or `http://` for
/// an emulator). A bare host is given `https://`, which the SDK requires.
pub fn iot_data_endpoint() -> Result<String, SettingsError> {
    let value = optional("IOT_DATA_ENDPOINT").ok_or(SettingsError::Missing("IOT_DATA_ENDPOINT"))?;
    endpoint_url(&value).ok_or_else(|| SettingsError::Invalid {
        name: "IOT_DATA_ENDPOINT",
        reason:
            "expected a host name such as abc123-ats.iot.eu-west-1.amazonaws.com, or https://host"
                .into(),
    })
}

/// `value` as an endpoint URL: a bare host (with an optional port) gets `https://`.
fn endpoint_url(value: &str) -> Option<String> {
    let value = value.trim().trim_end_matches('/');
    let url = if value.contains("://") {
        value.to_owned()
    } else {
        format!("https://{value}")
    };
    let parsed = url::Url::parse(&url).ok()?;
    let plain = matches!(parsed.scheme(), "https" | "http")
        && parsed.host_str().is_some_and(|host| !host.is_empty())
        && parsed.path() == "/"
        && parsed.query().is_none()
        && parsed.username().is_empty();
    plain.then_some(url)
}

/// How a function reaches PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// `DATABASE_URL`: a connection URL, as locally.
    Url(String),
    /// `DATABASE_SECRET_ARN`: a Secrets Manager secret in the JSON shape RDS gives its
    /// secrets (username, password, host, port, dbname), read at start-up, with the
    /// host replaced by `DATABASE_HOST` (the RDS Proxy endpoint) when that is set, and
    /// TLS as `DATABASE_SSL_MODE` says (`verify-full` unless set), and the database
    /// `DATABASE_NAME` names (else the secret's `dbname`, else `postgres`). RDS's
    /// managed master-user secrets hold only the user name and password.
    Secret {
        arn: String,
        host: Option<String>,
        name: Option<String>,
        ssl_mode: String,
    },
}

/// `DATABASE_URL`, or else `DATABASE_SECRET_ARN` with `DATABASE_HOST` and
/// `DATABASE_SSL_MODE`; one of the two is required by every function.
pub fn database_source() -> Result<DatabaseSource, SettingsError> {
    if let Some(url) = optional("DATABASE_URL") {
        return Ok(DatabaseSource::Url(url));
    }
    let arn = optional("DATABASE_SECRET_ARN").ok_or(SettingsError::Missing(
        "DATABASE_URL (or DATABASE_SECRET_ARN)",
    ))?;
    let ssl_mode = optional("DATABASE_SSL_MODE").unwrap_or_else(|| "verify-full".into());
    if !matches!(
        ssl_mode.as_str(),
        "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
    ) {
        return Err(SettingsError::Invalid {
            name: "DATABASE_SSL_MODE",
            reason: "expected disable, allow, prefer, require, verify-ca or verify-full".into(),
        });
    }
    Ok(DatabaseSource::Secret {
        arn,
        host: optional("DATABASE_HOST"),
        name: optional("DATABASE_NAME"),
        ssl_mode,
    })
}

/// `PUBLISH_QUEUE_URL`: the FIFO queue the configurations function asks for an outbox
/// sweep on, so that a new configuration goes out within seconds in the cloud.
/// Without it the publisher's schedule alone sweeps.
pub fn publish_queue_url() -> Option<String> {
    optional("PUBLISH_QUEUE_URL")
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

#[cfg(test)]
mod tests {
    use super::endpoint_url;

    #[test]
    fn a_bare_endpoint_host_gets_https() {
        assert_eq!(
            endpoint_url("a1b2c3-ats.iot.eu-west-1.amazonaws.com").as_deref(),
            Some("https://a1b2c3-ats.iot.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            endpoint_url(" a1b2c3-ats.iot.eu-west-1.amazonaws.com\n").as_deref(),
            Some("https://a1b2c3-ats.iot.eu-west-1.amazonaws.com")
        );
    }

    #[test]
    fn an_endpoint_url_is_kept() {
        assert_eq!(
            endpoint_url("https://a1b2c3-ats.iot.eu-west-1.amazonaws.com/").as_deref(),
            Some("https://a1b2c3-ats.iot.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:5000").as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn an_endpoint_that_is_not_a_host_is_refused() {
        for value in [
            "",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "not a host",
        ] {
            assert_eq!(endpoint_url(value), None, "{value:?}");
        }
    }
}
