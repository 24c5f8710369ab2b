//! Sessions: the hashes of the access tokens users were given, until they expire or
//! their user logs out. An expired session is never read as valid; a revoked one is
//! deleted.

use sqlx::PgExecutor;

use crate::domain::{AccessToken, Identifier, Timestamp};

/// Stores the hash of `access_token`, never the token itself, valid until
/// `expiration_timestamp`.
pub async fn create_session(
    executor: impl PgExecutor<'_>,
    access_token: &AccessToken,
    user_identifier: Identifier,
    expiration_timestamp: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        INSERT INTO session (access_token_hash, user_identifier, expiration_timestamp)
        VALUES ($1, $2, $3)
        "#,
        access_token.hash(),
        user_identifier.as_uuid(),
        expiration_timestamp.as_datetime(),
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// A valid session: whose it is and until when.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub user_identifier: Identifier,
    pub expiration_timestamp: Timestamp,
}

/// The session of `access_token`, unless it is unknown, expired or revoked.
pub async fn read_session(
    executor: impl PgExecutor<'_>,
    access_token: &AccessToken,
) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as!(
        Session,
        r#"
        SELECT user_identifier AS "user_identifier: _", expiration_timestamp AS "expiration_timestamp: _"
        FROM session
        WHERE access_token_hash = $1 AND expiration_timestamp > now()
        "#,
        access_token.hash(),
    )
    .fetch_optional(executor)
    .await
}

/// Ends the session of `access_token` (logout); false if it was not valid.
pub async fn delete_session(
    executor: impl PgExecutor<'_>,
    access_token: &AccessToken,
) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM session WHERE access_token_hash = $1 AND expiration_timestamp > now()",
        access_token.hash(),
    )
    .execute(executor)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

/// What decides whether a request on a network (and one of its sensors) may proceed,
/// read in one round trip; the caller applies the checks in the contract's order.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The owner of the token, `None` for an unknown, expired or revoked token.
    pub user_identifier: Option<Identifier>,
    /// When the token expires, `None` with the user.
    pub expiration_timestamp: Option<Timestamp>,
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
    sqlx::query_as!(
        Access,
        r#"
        SELECT
            session.user_identifier AS "user_identifier?: _",
            session.expiration_timestamp AS "expiration_timestamp?: _",
            network.identifier IS NOT NULL AS "network_exists!",
            sensor.identifier IS NOT NULL AS "sensor_exists!",
            permission.user_identifier IS NOT NULL AS "permitted!"
        FROM (VALUES (1)) AS always_one_row (one)
        LEFT JOIN session ON session.access_token_hash = $1
            AND session.expiration_timestamp > now()
        LEFT JOIN network ON network.identifier = $2
        LEFT JOIN sensor ON sensor.identifier = $3
            AND sensor.network_identifier = network.identifier
        LEFT JOIN permission ON permission.user_identifier = session.user_identifier
            AND permission.network_identifier = network.identifier
        "#,
        access_token.hash(),
        network_identifier.as_uuid(),
        sensor_identifier.map(|sensor| sensor.as_uuid()),
    )
    .fetch_one(executor)
    .await
}
