//! Users and their password hashes.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgExecutor;

use crate::domain::{Identifier, UserName};

/// Stores a new user; a taken name fails with a unique violation.
pub async fn create_user(
    executor: impl PgExecutor<'_>,
    user_identifier: Identifier,
    user_name: &UserName,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO "user" (identifier, name, password_hash) VALUES ($1, $2, $3)"#,
        user_identifier.as_uuid(),
        user_name.as_str(),
        password_hash,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// A login attempt let through the throttle: the user, their password hash, and the
/// time the attempt was recorded under among the user's failures.
#[derive(Debug)]
pub struct LoginAttempt {
    pub user_identifier: Identifier,
    pub password_hash: String,
    pub attempt_timestamp: DateTime<Utc>,
}

/// Records a login attempt of the user named `user_name` as a failure, unless the user
/// has `limit` failures within `window` already: then, or if there is no such user,
/// `None`. Counting the attempt before its password is checked makes concurrent
/// guesses count too; [`forgive_login_attempt`] takes it back once the password
/// matched. Attempts older than the window are dropped on the way, so the array holds
/// at most `limit` times.
pub async fn create_login_attempt(
    executor: impl PgExecutor<'_>,
    user_name: &UserName,
    limit: i32,
    window: TimeDelta,
) -> Result<Option<LoginAttempt>, sqlx::Error> {
    // The conditions read the row's own column, so a concurrent attempt on the same
    // user is seen: PostgreSQL re-evaluates them on the row version it waited for.
    sqlx::query_as!(
        LoginAttempt,
        r#"
        UPDATE "user"
        SET login_failure_timestamps = ARRAY(
                SELECT attempt FROM unnest(login_failure_timestamps) AS attempt
                WHERE attempt > now() - make_interval(secs => $3)
                ORDER BY attempt
            ) || clock_timestamp()
        WHERE name = $1
            AND (
                SELECT count(*) FROM unnest(login_failure_timestamps) AS attempt
                WHERE attempt > now() - make_interval(secs => $3)
            ) < $2
        RETURNING
            identifier AS "user_identifier: _",
            password_hash,
            login_failure_timestamps[cardinality(login_failure_timestamps)]
                AS "attempt_timestamp!"
        "#,
        user_name.as_str(),
        i64::from(limit),
        window.as_seconds_f64(),
    )
    .fetch_optional(executor)
    .await
}

/// Why [`create_login_attempt`] let nothing through: `None` when there is no user named
/// `user_name`, else the seconds until the user's failures within `window` drop below
/// `limit` (at least 1).
pub async fn read_login_retry_after(
    executor: impl PgExecutor<'_>,
    user_name: &UserName,
    limit: i32,
    window: TimeDelta,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT greatest(1, ceil(extract(epoch FROM (
            SELECT attempt FROM unnest(login_failure_timestamps) AS attempt
            WHERE attempt > now() - make_interval(secs => $3)
            ORDER BY attempt DESC
            OFFSET $2::bigint - 1 LIMIT 1
        ) + make_interval(secs => $3) - now())))::bigint AS "retry_after_seconds!"
        FROM "user"
        WHERE name = $1
        "#,
        user_name.as_str(),
        i64::from(limit),
        window.as_seconds_f64(),
    )
    .fetch_optional(executor)
    .await
}

/// Takes back a login attempt whose password matched: it was no failure.
pub async fn forgive_login_attempt(
    executor: impl PgExecutor<'_>,
    user_identifier: Identifier,
    attempt_timestamp: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        UPDATE "user"
        SET login_failure_timestamps = array_remove(login_failure_timestamps, $2)
        WHERE identifier = $1
        "#,
        user_identifier.as_uuid(),
        attempt_timestamp,
    )
    .execute(executor)
    .await?;
    Ok(())
}
