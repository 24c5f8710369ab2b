//! Sessions: the hashes of the access tokens users were given.

use sqlx::PgExecutor;

use crate::domain::{AccessToken, Identifier};

/// Stores the hash of `access_token`, never the token itself.
pub async fn create_session(
    executor: impl PgExecutor<'_>,
    access_token: &AccessToken,
    user_identifier: Identifier,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO session (access_token_hash, user_identifier) VALUES ($1, $2)")
        .bind(access_token.hash())
        .bind(user_identifier)
        .execute(executor)
        .await?;
    Ok(())
}

/// The user that was given `access_token`, if any.
pub async fn read_session_user(
    executor: impl PgExecutor<'_>,
    access_token: &AccessToken,
) -> Result<Option<Identifier>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_identifier FROM session WHERE access_token_hash = $1")
        .bind(access_token.hash())
        .fetch_optional(executor)
        .await
}

/// What decides whether a request on a network (and one of its sensors) may proceed,
/// read in one round trip; the caller applies the checks in the contract's order.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Access {
    /// The owner of the token, `None` for an unknown token.
    pub user_identifier: Option<Identifier>,
    pub network_exists: bool,
    /// Whether the sensor exists in that network; false when no sensor was asked for.
    pub sensor_exists: bool,
    /// Whether the token's user has permission on the network.
    pub permitted: bool,
}

/// Reads the [`Access`] of the bearer of `access_token` to `network_identifier` and,
/// if given, its sensor `sensor_identifier`.
pub async fn read_access(
    executor: impl PgExecutor<'_>,
    access_token: &AccessToken,
    network_identifier: Identifier,
    sensor_identifier: Option<Identifier>,
) -> Result<Access, sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT
            session.user_identifier,
            network.identifier IS NOT NULL AS network_exists,
            sensor.identifier IS NOT NULL AS sensor_exists,
            permission.user_identifier IS NOT NULL AS permitted
        FROM (VALUES (1)) AS always_one_row (one)
        LEFT JOIN session ON session.access_token_hash = $1
        LEFT JOIN network ON network.identifier = $2
        LEFT JOIN sensor ON sensor.identifier = $3
            AND sensor.network_identifier = network.identifier
        LEFT JOIN permission ON permission.user_identifier = session.user_identifier
            AND permission.network_identifier = network.identifier
        "#,
    )
    .bind(access_token.hash())
    .bind(network_identifier)
    .bind(sensor_identifier)
    .fetch_one(executor)
    .await
}
