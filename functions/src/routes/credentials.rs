//! `/networks/{network_identifier}/sensors/{sensor_identifier}/credentials`: a sensor's
//! own broker credentials, issued and revoked through the deployment's
//! [`CredentialsProvider`](sensorium_shared::credentials::CredentialsProvider).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use sensorium_shared::credentials::{Credentials, CredentialsError};
use sensorium_shared::domain::Timestamp;
use sensorium_shared::queries::sensors;
use sqlx::Acquire;

use crate::AppState;
use crate::auth::authorize_sensor;
use crate::error::{Context, Error};
use crate::extract::{Authorization, NoQuery, PathParameters, QueryParameters, SensorPath};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/networks/{network_identifier}/sensors/{sensor_identifier}/credentials",
        post(create_credentials).delete(delete_credentials),
    )
}

/// Issues new credentials, shown only in this answer; the sensor's earlier ones stop
/// working at once.
pub async fn create_credentials(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<(StatusCode, Json<Credentials>), Error> {
    let sensor = path.sensor_identifier;
    let credentials = change_credentials(
        &state,
        &authorization,
        &path,
        || state.credentials.issue(sensor),
        Some(Timestamp::now()),
    )
    .await
    .context("issuing the credentials")?;
    Ok((StatusCode::CREATED, Json(credentials)))
}

/// Revokes the sensor's credentials and closes its connection.
pub async fn delete_credentials(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<StatusCode, Error> {
    let sensor = path.sensor_identifier;
    change_credentials(
        &state,
        &authorization,
        &path,
        || state.credentials.revoke(sensor),
        None,
    )
    .await
    .context("revoking the credentials")?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes the broker `change` the sensor's credentials, then records when its current
/// ones were issued (`issued`; `None` once revoked). One request at a time per sensor,
/// from the broker's change to the recorded timestamp, so that both say the same.
async fn change_credentials<T, F, Fut>(
    state: &AppState,
    authorization: &Authorization,
    path: &SensorPath,
    change: F,
    issued: Option<Timestamp>,
) -> Result<T, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, CredentialsError>>,
{
    let mut authorized = authorize_sensor(state, authorization, path).await?;
    let mut transaction = authorized.connection.begin().await.context("beginning")?;
    if !sensors::lock_sensor_credentials(&mut *transaction, path.sensor_identifier)
        .await
        .context("locking the sensor")?
    {
        return Err(Error::NotFound);
    }
    let changed = change().await.context("asking the broker")?;
    sensors::update_credentials_timestamp(&mut *transaction, path.sensor_identifier, issued)
        .await
        .context("recording the change")?;
    transaction.commit().await.context("committing")?;
    Ok(changed)
}
