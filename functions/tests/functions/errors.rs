//! Errors PostgreSQL really raises, mapped to the REST API's statuses and judged for
//! retrying: only data errors are final, everything else of the server may pass.

use sensorium_functions::error::Error;
use sensorium_shared::error::{is_caused_by_data, is_transient};
use sqlx::{Connection, PgConnection, PgPool};

/// The error `statements` fail with, run on a connection of their own: what they set
/// or leave open (a timeout, an aborted transaction) ends with it.
async fn error_of(pool: &PgPool, statements: &'static str) -> sqlx::Error {
    let mut connection = PgConnection::connect_with(&pool.connect_options())
        .await
        .unwrap();
    let error = sqlx::raw_sql(statements)
        .execute(&mut connection)
        .await
        .expect_err("the statements fail");
    connection.close().await.unwrap();
    error
}

#[sqlx::test(migrations = false)]
async fn errors_not_caused_by_data_are_transient_and_answer_503(pool: PgPool) {
    sqlx::raw_sql("CREATE TABLE thing (name text PRIMARY KEY CHECK (name <> ''))")
        .execute(&pool)
        .await
        .unwrap();
    let cases = [
        // A pooled connection left on a read-only node after a failover.
        (
            "25006",
            "BEGIN READ ONLY; INSERT INTO thing VALUES ('a'); COMMIT;",
        ),
        ("57014", "SET statement_timeout = 1; SELECT pg_sleep(1)"),
        // A table missing during a deploy.
        ("42P01", "SELECT FROM missing_table"),
        ("42703", "SELECT missing_column FROM thing"),
    ];
    let mut errors = Vec::new();
    for (sqlstate, statements) in cases {
        errors.push((sqlstate, error_of(&pool, statements).await));
    }
    // A lock timeout, waiting for a lock another connection holds.
    let mut holder = pool.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE thing")
        .execute(&mut *holder)
        .await
        .unwrap();
    let lock_timeout = error_of(&pool, "SET lock_timeout = 10; LOCK TABLE thing").await;
    errors.push(("55P03", lock_timeout));
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut *holder)
        .await
        .unwrap();
    for (sqlstate, error) in errors {
        let code = error.as_database_error().and_then(|error| error.code());
        assert_eq!(code.as_deref(), Some(sqlstate), "{error}");
        assert!(is_transient(&error), "{sqlstate}");
        assert!(!is_caused_by_data(&error), "{sqlstate}");
        assert_eq!(Error::from(error).status().as_u16(), 503, "{sqlstate}");
    }
    let protocol = sqlx::Error::Protocol("unexpected message".into());
    assert!(is_transient(&protocol));
    assert_eq!(Error::from(protocol).status().as_u16(), 503);
}

#[sqlx::test(migrations = false)]
async fn data_errors_are_final(pool: PgPool) {
    sqlx::raw_sql("CREATE TABLE thing (name text PRIMARY KEY CHECK (name <> ''))")
        .execute(&pool)
        .await
        .unwrap();
    let cases = [
        ("22012", "SELECT 1 / 0", 500),
        ("22003", "SELECT 1e308::float8 * 10", 500),
        ("22P05", "SELECT '\"\\u0000\"'::jsonb", 500),
        ("23514", "INSERT INTO thing VALUES ('')", 500),
        ("23505", "INSERT INTO thing VALUES ('a'), ('a')", 409),
    ];
    for (sqlstate, statement, status) in cases {
        let error = error_of(&pool, statement).await;
        let code = error.as_database_error().and_then(|error| error.code());
        assert_eq!(code.as_deref(), Some(sqlstate), "{error}");
        assert!(is_caused_by_data(&error), "{sqlstate}");
        assert!(!is_transient(&error), "{sqlstate}");
        assert_eq!(Error::from(error).status().as_u16(), status, "{sqlstate}");
    }
}
