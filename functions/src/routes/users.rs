//! `POST /users`, `POST /authentication` and `DELETE /authentication`: accounts and
//! their access tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::TimeDelta;
use sensorium_shared::domain::{AccessToken, Identifier, Password, Timestamp, UserName};
use sensorium_shared::limits::{LOGIN_FAILURE_LIMIT, LOGIN_FAILURE_WINDOW_SECONDS};
use sensorium_shared::passwords;
use sensorium_shared::queries::{sessions, users};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error};
use crate::extract::{Authorization, JsonBody, NoQuery, QueryParameters};
use crate::{AppState, auth};

pub fn router() -> Router<AppState> {
    Router::new().route("/users", post(create_user)).route(
        "/authentication",
        post(create_session).delete(delete_session),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub user_name: UserName,
    pub password: Password,
}

#[derive(Debug, Serialize)]
pub struct Session {
    pub user_identifier: Identifier,
    pub access_token: AccessToken,
    pub expiration_timestamp: Timestamp,
}

/// When a token issued now expires.
fn expiration_timestamp(state: &AppState) -> Timestamp {
    Timestamp::from_datetime(Timestamp::now().as_datetime() + state.token_lifetime)
}

/// Creates the user with a first session: 409 if the name is taken.
pub async fn create_user(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Session>), Error> {
    let password_hash = passwords::hash_password(credentials.password)
        .await
        .context("hashing the password")?;
    let user_identifier = Identifier::new();
    let access_token = AccessToken::generate();
    let expiration_timestamp = expiration_timestamp(&state);
    let mut transaction = state.pool.begin().await.context("beginning")?;
    users::create_user(
        &mut *transaction,
        user_identifier,
        &credentials.user_name,
        &password_hash,
    )
    .await
    .context("storing the user")?;
    sessions::create_session(
        &mut *transaction,
        &access_token,
        user_identifier,
        expiration_timestamp,
    )
    .await
    .context("storing the session")?;
    transaction.commit().await.context("committing")?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            user_identifier,
            access_token,
            expiration_timestamp,
        }),
    ))
}

/// Logs in: a new token at every call; 404 for an unknown user, 429 while the user
/// name has had too many wrong passwords lately (whatever this password), 401 for a
/// wrong password.
pub async fn create_session(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Session>), Error> {
    let window = TimeDelta::seconds(LOGIN_FAILURE_WINDOW_SECONDS);
    let user_name = &credentials.user_name;
    let attempt = users::create_login_attempt(&state.pool, user_name, LOGIN_FAILURE_LIMIT, window)
        .await
        .context("recording the login attempt")?;
    let Some(attempt) = attempt else {
        let retry_after =
            users::read_login_retry_after(&state.pool, user_name, LOGIN_FAILURE_LIMIT, window)
                .await
                .context("reading when to retry")?
                .ok_or(Error::NotFound)?;
        return Err(Error::TooManyRequests {
            retry_after_seconds: retry_after.unsigned_abs(),
        });
    };
    // No connection is held while hashing: a flood of logins must not take the pool
    // from the routes that need no hash.
    let verified = passwords::verify_password(credentials.password, attempt.password_hash).await;
    if let Ok(false) = verified {
        return Err(Error::Unauthorized);
    }
    // Only a wrong password is a failure: an attempt refused by a full hashing queue
    // (or failed otherwise) checked nothing, and must not lock the user out.
    let mut connection = state.pool.acquire().await.context("connecting")?;
    users::forgive_login_attempt(
        &mut *connection,
        attempt.user_identifier,
        attempt.attempt_timestamp,
    )
    .await
    .context("forgiving the login attempt")?;
    verified.context("verifying the password")?;
    let access_token = AccessToken::generate();
    let expiration_timestamp = expiration_timestamp(&state);
    sessions::create_session(
        &mut *connection,
        &access_token,
        attempt.user_identifier,
        expiration_timestamp,
    )
    .await
    .context("storing the session")?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            user_identifier: attempt.user_identifier,
            access_token,
            expiration_timestamp,
        }),
    ))
}

/// Logs out: the request's token stops working. 401 if it did not work already.
pub async fn delete_session(
    State(state): State<AppState>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<StatusCode, Error> {
    auth::revoke(&state, &authorization).await?;
    Ok(StatusCode::NO_CONTENT)
}
