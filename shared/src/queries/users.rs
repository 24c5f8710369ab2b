//! Users and their password hashes.

use sqlx::PgExecutor;

use crate::domain::{Identifier, UserName};

/// Stores a new user; a taken name fails with a unique violation.
pub async fn create_user(
    executor: impl PgExecutor<'_>,
    user_identifier: Identifier,
    user_name: &UserName,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(r#"INSERT INTO "user" (identifier, name, password_hash) VALUES ($1, $2, $3)"#)
        .bind(user_identifier)
        .bind(user_name)
        .bind(password_hash)
        .execute(executor)
        .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
pub struct UserCredentials {
    pub user_identifier: Identifier,
    pub password_hash: String,
}

/// The identifier and password hash of the user named `user_name`, if there is one.
pub async fn read_user_credentials(
    executor: impl PgExecutor<'_>,
    user_name: &UserName,
) -> Result<Option<UserCredentials>, sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT identifier AS user_identifier, password_hash
        FROM "user"
        WHERE name = $1
        "#,
    )
    .bind(user_name)
    .fetch_optional(executor)
    .await
}
