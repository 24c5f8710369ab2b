//! `harness seed`, the example data of `./scripts/develop`: its account has a
//! published password, so it goes only into the private database that script starts,
//! never into a database that `DATABASE_URL` merely names.

use std::process::{Command, Output};

use crate::helpers::database_url;
use crate::helpers::mqtt::broker_url;
use sqlx::PgPool;

async fn seed(pool: &PgPool, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("seed")
        .args(arguments)
        .env("DATABASE_URL", database_url(pool).await)
        .env("MQTT_URL", broker_url().as_str())
        .env("CREDENTIALS_PROVIDER", "none")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the harness runs")
}

async fn users(pool: &PgPool) -> i64 {
    sqlx::query_scalar(r#"SELECT count(*) FROM "user""#)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn seeding_a_database_not_declared_private_is_refused(pool: PgPool) {
    let output = seed(&pool, &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--private-database"), "{stderr}");
    assert_eq!(users(&pool).await, 0);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn seeding_the_private_database_loads_the_example_account(pool: PgPool) {
    let output = seed(&pool, &["--private-database"]).await;
    assert!(output.status.success(), "{output:?}");
    let name: String = sqlx::query_scalar(r#"SELECT name FROM "user""#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "demo");
}
