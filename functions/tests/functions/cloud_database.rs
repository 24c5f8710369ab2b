//! A function's database from a Secrets Manager secret (moto's server, `MOTO_URL`),
//! as the cloud template configures it: the secret's credentials, the proxy's host.

use std::str::FromStr;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
use sensorium_functions::cloud::{self, DatabaseError, https_client};
use sensorium_shared::database::Role;
use sensorium_shared::settings::DatabaseSource;
use sqlx::postgres::PgConnectOptions;

fn moto() -> SdkConfig {
    let url = std::env::var("MOTO_URL")
        .expect("MOTO_URL names moto's server; ./scripts/test starts one and sets it");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "moto",
        )))
        .endpoint_url(url)
        .http_client(https_client())
        .build()
}

/// A secret shaped as RDS writes them, for the database of `DATABASE_URL`, but naming
/// another host: the function must connect to `DATABASE_HOST` (the proxy).
async fn create_secret(config: &SdkConfig, host: &str) -> String {
    let url = std::env::var("DATABASE_URL").expect("./scripts/test sets DATABASE_URL");
    let options = PgConnectOptions::from_str(&url).unwrap();
    let secret = serde_json::json!({
        "username": options.get_username(),
        "password": url::Url::parse(&url).unwrap().password().unwrap_or(""),
        "engine": "postgres",
        "host": host,
        "port": options.get_port(),
        "dbname": options.get_database().unwrap_or("postgres"),
    });
    let client = aws_sdk_secretsmanager::Client::new(config);
    let created = client
        .create_secret()
        .name(format!("sensorium-test-{}", uuid::Uuid::new_v4()))
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
    created.arn.unwrap()
}

#[tokio::test]
async fn a_function_connects_with_the_secrets_credentials_through_the_proxy_host() {
    let config = moto();
    let arn = create_secret(&config, "database.invalid").await;
    let source = DatabaseSource::Secret {
        arn,
        host: Some("127.0.0.1".into()),
        name: None,
        // The private test server has no TLS; the template sets verify-full.
        ssl_mode: "disable".into(),
    };
    let pool = cloud::connect(source, Some(&config), 1, Role::Route)
        .await
        .unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_missing_secret_is_named_in_the_error() {
    let source = DatabaseSource::Secret {
        arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent".into(),
        host: Some("127.0.0.1".into()),
        name: None,
        ssl_mode: "verify-full".into(),
    };
    let error = cloud::connect(source, Some(&moto()), 1, Role::Route)
        .await
        .unwrap_err();
    assert!(matches!(error, DatabaseError::Secret { .. }), "{error}");
    assert!(error.to_string().contains("secret:absent"), "{error}");
}
