//! Authentication (a bearer token of a valid session: known, not expired, not
//! revoked) and authorization (permission on a network), checked in the contract's
//! order: 401, then 404, then 403.

use sensorium_shared::domain::{AccessToken, Identifier, Timestamp};
use sensorium_shared::queries::sessions::{self, Access};
use sqlx::Postgres;
use sqlx::pool::PoolConnection;

use crate::AppState;
use crate::error::Error;
use crate::extract::{Authorization, SensorPath};

impl Authorization {
    /// The token of an `Authorization: Bearer <token>` header; anything else is 401.
    pub fn access_token(&self) -> Result<AccessToken, Error> {
        let value = self.0.as_ref().ok_or(Error::Unauthorized)?;
        let value = value.to_str().map_err(|_| Error::Unauthorized)?;
        let (scheme, token) = value.split_once(' ').ok_or(Error::Unauthorized)?;
        // Authentication schemes are case-insensitive (RFC 9110, section 11.1).
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::Unauthorized);
        }
        AccessToken::parse(token).map_err(|_| Error::Unauthorized)
    }
}

/// A request that passed the checks: its user, and the pool connection the checks
/// used, for the rest of the request. Every query on its own pool checkout would cost
/// a round trip more: the pool pings a connection when it is given back.
pub struct Authorized {
    pub user_identifier: Identifier,
    pub connection: PoolConnection<Postgres>,
}

/// The user the request's token was given to.
pub async fn authenticate(
    state: &AppState,
    authorization: &Authorization,
) -> Result<Authorized, Error> {
    let access_token = authorization.access_token()?;
    let key = (access_token.hash(), None, None);
    let mut connection = state.pool.acquire().await?;
    if let Some(user_identifier) = state.access_cache.get(&key) {
        return Ok(Authorized {
            user_identifier,
            connection,
        });
    }
    let session = sessions::read_session(&mut *connection, &access_token)
        .await?
        .ok_or(Error::Unauthorized)?;
    state
        .access_cache
        .insert(key, session.user_identifier, session.expiration_timestamp);
    Ok(Authorized {
        user_identifier: session.user_identifier,
        connection,
    })
}

/// Ends the session of the request's token (logout): 401 if it is not valid. Its
/// decisions leave this process's access cache at once; other processes' caches
/// forget them within their time to live.
pub async fn revoke(state: &AppState, authorization: &Authorization) -> Result<(), Error> {
    let access_token = authorization.access_token()?;
    let revoked = sessions::delete_session(&state.pool, &access_token).await?;
    state.access_cache.remove_token(&access_token.hash());
    if revoked {
        Ok(())
    } else {
        Err(Error::Unauthorized)
    }
}

/// The user of the request, who has permission on the existing network.
pub async fn authorize_network(
    state: &AppState,
    authorization: &Authorization,
    network_identifier: Identifier,
) -> Result<Authorized, Error> {
    authorize(state, authorization, network_identifier, None).await
}

/// The user of the request, who has permission on the existing network, which holds
/// the sensor.
pub async fn authorize_sensor(
    state: &AppState,
    authorization: &Authorization,
    path: &SensorPath,
) -> Result<Authorized, Error> {
    authorize(
        state,
        authorization,
        path.network_identifier,
        Some(path.sensor_identifier),
    )
    .await
}

async fn authorize(
    state: &AppState,
    authorization: &Authorization,
    network_identifier: Identifier,
    sensor_identifier: Option<Identifier>,
) -> Result<Authorized, Error> {
    let access_token = authorization.access_token()?;
    let key = (
        access_token.hash(),
        Some(network_identifier),
        sensor_identifier,
    );
    let mut connection = state.pool.acquire().await?;
    if let Some(user_identifier) = state.access_cache.get(&key) {
        return Ok(Authorized {
            user_identifier,
            connection,
        });
    }
    let access = sessions::read_access(
        &mut *connection,
        &access_token,
        network_identifier,
        sensor_identifier,
    )
    .await?;
    let (user_identifier, expiration_timestamp) = check(access, sensor_identifier.is_some())?;
    state
        .access_cache
        .insert(key, user_identifier, expiration_timestamp);
    Ok(Authorized {
        user_identifier,
        connection,
    })
}

/// The user of a token that passed the checks, and when the token expires.
fn check(access: Access, needs_sensor: bool) -> Result<(Identifier, Timestamp), Error> {
    let user_identifier = access.user_identifier.ok_or(Error::Unauthorized)?;
    let expiration_timestamp = access.expiration_timestamp.ok_or(Error::Unauthorized)?;
    if !access.network_exists || (needs_sensor && !access.sensor_exists) {
        return Err(Error::NotFound);
    }
    if !access.permitted {
        return Err(Error::Forbidden);
    }
    Ok((user_identifier, expiration_timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn authorization(value: &str) -> Authorization {
        Authorization(Some(HeaderValue::from_str(value).unwrap()))
    }

    #[test]
    fn only_bearer_headers_with_well_formed_tokens_are_accepted() {
        let token = "0123456789abcdef".repeat(4);
        for value in [format!("Bearer {token}"), format!("bearer {token}")] {
            assert!(authorization(&value).access_token().is_ok(), "{value}");
        }
        for value in [
            token.clone(),
            format!("Basic {token}"),
            format!("Bearer  {token}"),
            format!("Bearer {}", token.to_uppercase()),
            format!("Bearer {token}0"),
            "Bearer".to_string(),
            String::new(),
        ] {
            assert!(authorization(&value).access_token().is_err(), "{value:?}");
        }
        assert!(Authorization(None).access_token().is_err());
    }

    #[test]
    fn checks_go_unauthorized_then_not_found_then_forbidden() {
        let identifier = Identifier::new();
        let user = Some(identifier);
        let expiration = Timestamp::now();
        let status = |user_identifier: Option<Identifier>,
                      network_exists,
                      sensor_exists,
                      permitted,
                      needs_sensor| {
            let access = Access {
                user_identifier,
                expiration_timestamp: user_identifier.map(|_| expiration),
                network_exists,
                sensor_exists,
                permitted,
            };
            check(access, needs_sensor).map_err(|error| error.status().as_u16())
        };
        assert_eq!(status(None, false, false, false, true), Err(401));
        assert_eq!(status(user, false, false, false, false), Err(404));
        assert_eq!(status(user, true, false, false, true), Err(404));
        assert_eq!(status(user, true, false, false, false), Err(403));
        assert_eq!(
            status(user, true, true, true, true),
            Ok((identifier, expiration))
        );
    }
}
