//! The pools: statement timeouts by role, their planner settings, and connections the server closed while
//! they sat idle replaced before a query meets them.

use std::time::Duration;

use sensorium_shared::database::{self, PING_WHEN_IDLE_FOR, Role};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn each_role_has_its_statement_timeout(pool: PgPool) {
    for role in [Role::Route, Role::Topic, Role::Publisher, Role::Maintenance] {
        let ours = database::connect_as((*pool.connect_options()).clone(), 1, role);
        let timeout: String = sqlx::query_scalar(
            "SELECT (setting::bigint * 1000 / 1000)::text FROM pg_settings WHERE name = 'statement_timeout'",
        )
        .fetch_one(&ours)
        .await
        .unwrap();
        assert_eq!(
            timeout,
            role.statement_timeout().as_millis().to_string(),
            "{role:?}"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn every_pool_plans_once_and_never_compiles_queries(pool: PgPool) {
    for role in [Role::Route, Role::Topic, Role::Publisher, Role::Maintenance] {
        let ours = database::connect_as((*pool.connect_options()).clone(), 1, role);
        let settings: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting FROM pg_settings WHERE name IN ('jit', 'plan_cache_mode')
             ORDER BY name",
        )
        .fetch_all(&ours)
        .await
        .unwrap();
        assert_eq!(
            settings,
            [
                ("jit".to_owned(), "off".to_owned()),
                (
                    "plan_cache_mode".to_owned(),
                    "force_generic_plan".to_owned()
                )
            ],
            "{role:?}"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn a_statement_over_its_timeout_is_cancelled(pool: PgPool) {
    // The route role's 8 s would make a slow test; the same option, shorter.
    let options = (*pool.connect_options())
        .clone()
        .options([("statement_timeout", "100ms")]);
    let ours = database::connect_with(options, 1);
    let error = sqlx::query("SELECT pg_sleep(5)")
        .execute(&ours)
        .await
        .unwrap_err();
    assert_eq!(
        error
            .as_database_error()
            .and_then(|error| error.code())
            .as_deref(),
        Some("57014"),
        "{error}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_connection_the_server_closed_while_idle_is_replaced_unseen(pool: PgPool) {
    let ours = database::connect_to((*pool.connect_options()).clone(), 1);
    let first: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&ours)
        .await
        .unwrap();
    // What a restart or failover of the database does to every idle connection.
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(terminated);
    // Time must pass for the connection to count as idle; nothing to poll for.
    tokio::time::sleep(PING_WHEN_IDLE_FOR + Duration::from_millis(100)).await;
    let second: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&ours)
        .await
        .expect("the first query after the connection died succeeds");
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_route_fails_fast_while_the_database_is_down() {
    // Nothing listens on port 1: every connection attempt is refused.
    let pool = database::connect("postgres://nobody@127.0.0.1:1/none", 2).unwrap();
    let started = std::time::Instant::now();
    let error = sqlx::query("SELECT 1").execute(&pool).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(error, sqlx::Error::PoolTimedOut), "{error}");
    // sqlx retries a refused connection until the acquire timeout: under a second for
    // routes (5 s before), so a REST client gets its 503 promptly. The margin is for a
    // busy machine.
    assert!(Role::Route.acquire_timeout() < Duration::from_secs(1));
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}
