//! The database of a function in the cloud: its credentials come from Secrets Manager
//! (the secret RDS and RDS Proxy share), never from a plaintext environment variable.

use std::str::FromStr;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use sensorium_shared::database::{self, Role};
use sensorium_shared::settings::{self, DatabaseSource, SettingsError};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("DATABASE_URL is not a PostgreSQL URL")]
    Url(#[source] sqlx::Error),
    #[error("reading the database secret {arn} failed: {reason}")]
    Secret { arn: String, reason: String },
}

/// The JSON of an RDS secret; RDS's managed master-user secrets hold only the first two.
#[derive(Deserialize)]
struct RdsSecret {
    username: String,
    password: String,
    host: Option<String>,
    /// A number in the secrets RDS writes, a string in some written by hand.
    port: Option<serde_json::Value>,
    dbname: Option<String>,
}

/// The pool `DATABASE_URL` or `DATABASE_SECRET_ARN` describes (see
/// [`settings::database_source`]), connecting lazily.
pub async fn connect_from_env(max_connections: u32, role: Role) -> Result<PgPool, DatabaseError> {
    let source = settings::database_source()?;
    let sdk_config = match source {
        DatabaseSource::Url(_) => None,
        DatabaseSource::Secret { .. } => Some(super::sdk_config().await),
    };
    connect(source, sdk_config.as_ref(), max_connections, role).await
}

/// The pool of `source`, connecting lazily; a secret is read with `sdk_config`'s
/// region, credentials and endpoint.
pub async fn connect(
    source: DatabaseSource,
    sdk_config: Option<&SdkConfig>,
    max_connections: u32,
    role: Role,
) -> Result<PgPool, DatabaseError> {
    let options = match source {
        DatabaseSource::Url(url) => PgConnectOptions::from_str(&url).map_err(DatabaseError::Url)?,
        DatabaseSource::Secret {
            arn,
            host,
            name,
            ssl_mode,
        } => {
            let sdk_config = sdk_config.ok_or_else(|| DatabaseError::Secret {
                arn: arn.clone(),
                reason: "no AWS configuration to read it with".into(),
            })?;
            let secret = read_secret(sdk_config, &arn).await?;
            secret_options(secret, host, name, &ssl_mode).map_err(|reason| {
                DatabaseError::Secret {
                    arn: arn.clone(),
                    reason,
                }
            })?
        }
    };
    Ok(database::connect_as(options, max_connections, role))
}

async fn read_secret(sdk_config: &SdkConfig, arn: &str) -> Result<RdsSecret, DatabaseError> {
    let failed = |reason: String| DatabaseError::Secret {
        arn: arn.to_owned(),
        reason,
    };
    let client = aws_sdk_secretsmanager::Client::new(sdk_config);
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|error| failed(DisplayErrorContext(&error).to_string()))?;
    let text = output
        .secret_string()
        .ok_or_else(|| failed("the secret has no string value".into()))?;
    // The error names the field, never the secret's text.
    serde_json::from_str(text).map_err(|error| {
        failed(format!(
            "not RDS's JSON (username, password, host, port, dbname): {error}"
        ))
    })
}

fn secret_options(
    secret: RdsSecret,
    host: Option<String>,
    name: Option<String>,
    ssl_mode: &str,
) -> Result<PgConnectOptions, String> {
    let host = host
        .or(secret.host)
        .ok_or("neither DATABASE_HOST nor the secret names a host")?;
    let port = match secret.port {
        None => 5432,
        Some(serde_json::Value::Number(number)) => number
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or("the secret's port is not a port number")?,
        Some(serde_json::Value::String(text)) => text
            .parse()
            .map_err(|_| "the secret's port is not a port number")?,
        Some(_) => return Err("the secret's port is not a port number".into()),
    };
    let ssl_mode = PgSslMode::from_str(ssl_mode).map_err(|error| error.to_string())?;
    Ok(PgConnectOptions::new_without_pgpass()
        .host(&host)
        .port(port)
        .username(&secret.username)
        .password(&secret.password)
        .database(name.or(secret.dbname).as_deref().unwrap_or("postgres"))
        .ssl_mode(ssl_mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: serde_json::Value) -> RdsSecret {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_proxy_host_replaces_the_secrets_host() {
        let options = secret_options(
            secret(serde_json::json!({
                "username": "sensorium", "password": "p", "host": "db.internal",
                "port": 5433, "dbname": "fleet", "engine": "postgres"
            })),
            Some("proxy.internal".into()),
            None,
            "verify-full",
        )
        .unwrap();
        assert_eq!(options.get_host(), "proxy.internal");
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_username(), "sensorium");
        assert_eq!(options.get_database(), Some("fleet"));
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[test]
    fn a_managed_master_user_secret_needs_a_host() {
        let managed = || secret(serde_json::json!({"username": "u", "password": "p"}));
        assert!(secret_options(managed(), None, None, "verify-full").is_err());
        let options = secret_options(
            managed(),
            Some("proxy".into()),
            Some("fleet".into()),
            "require",
        )
        .unwrap();
        assert_eq!(options.get_port(), 5432);
        assert_eq!(options.get_database(), Some("fleet"));
    }

    #[test]
    fn a_port_written_as_text_is_read() {
        let options = secret_options(
            secret(serde_json::json!({"username": "u", "password": "p", "port": "6432"})),
            Some("proxy".into()),
            None,
            "verify-full",
        )
        .unwrap();
        assert_eq!(options.get_port(), 6432);
    }
}
