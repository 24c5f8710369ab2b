//! The schema applies cleanly to an empty PostgreSQL, and applying it again changes
//! nothing.

use sensorium_shared::database::MIGRATOR;
use sqlx::PgPool;

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
         ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn applying_the_migrations_twice_is_a_no_op(pool: PgPool) {
    MIGRATOR.run(&pool).await.unwrap();
    let first = tables(&pool).await;
    assert_eq!(
        first,
        [
            "configuration",
            "log",
            "measurement",
            "measurement_bucket",
            "network",
            "permission",
            "sensor",
            "session",
            "user"
        ]
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(tables(&pool).await, first);
    let applied_again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied_again, applied);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn deleting_a_network_removes_its_sensors_and_their_data(pool: PgPool) {
    let network = uuid::Uuid::new_v4();
    let sensor = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO network (identifier, name) VALUES ($1, 'n')")
        .bind(network)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO sensor (identifier, name, network_identifier) VALUES ($1, 's', $2)")
        .bind(sensor)
        .bind(network)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO configuration (sensor_identifier, revision, value) VALUES ($1, 0, '{}')",
    )
    .bind(sensor)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM network WHERE identifier = $1")
        .bind(network)
        .execute(&pool)
        .await
        .unwrap();
    let remaining: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM sensor) + (SELECT count(*) FROM configuration)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(remaining, 0);
}
