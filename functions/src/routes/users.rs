//! `POST /users` and `POST /authentication`: accounts and their access tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use sensorium_shared::Error;
use sensorium_shared::domain::{AccessToken, Identifier, Password, UserName};
use sensorium_shared::passwords;
use sensorium_shared::queries::{sessions, users};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::extract::JsonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", post(create_user))
        .route("/authentication", post(create_session))
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
}

/// Creates the user with a first session: 409 if the name is taken.
pub async fn create_user(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Session>), Error> {
    let password_hash = passwords::hash_password(credentials.password).await?;
    let user_identifier = Identifier::new();
    let access_token = AccessToken::generate();
    let mut transaction = state.pool.begin().await?;
    users::create_user(
        &mut *transaction,
        user_identifier,
        &credentials.user_name,
        &password_hash,
    )
    .await?;
    sessions::create_session(&mut *transaction, &access_token, user_identifier).await?;
    transaction.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            user_identifier,
            access_token,
        }),
    ))
}

/// Logs in: a new token at every call; 404 for an unknown user, 401 for a wrong password.
pub async fn create_session(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Session>), Error> {
    let user = users::read_user_credentials(&state.pool, &credentials.user_name)
        .await?
        .ok_or(Error::NotFound)?;
    if !passwords::verify_password(credentials.password, user.password_hash).await? {
        return Err(Error::Unauthorized);
    }
    let access_token = AccessToken::generate();
    sessions::create_session(&state.pool, &access_token, user.user_identifier).await?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            user_identifier: user.user_identifier,
            access_token,
        }),
    ))
}
