//! `/networks/{network_identifier}/sensors/{sensor_identifier}/credentials`: a sensor's
//! own broker credentials, issued and revoked through the deployment's
//! [`CredentialsProvider`](sensorium_shared::credentials::CredentialsProvider).

use crate::error::{Context, Error};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use sensorium_shared::credentials::Credentials;
use sensorium_shared::domain::Timestamp;
use sensorium_shared::queries::sensors;
use sqlx::Acquire;

use crate::AppState;
use crate::auth::authorize_sensor;
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
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    // One request at a time per sensor, from the broker's change to the recorded
    // timestamp, so that both say the same.
    let mut transaction = authorized.connection.begin().await.context("beginning")?;
    if !sensors::lock_sensor_credentials(&mut *transaction, path.sensor_identifier)
        .await
        .context("locking the sensor")?
    {
        return Err(Error::NotFound);
    }
    let credentials = state
        .credentials
        .issue(path.sensor_identifier)
        .await
        .context("issuing the credentials")?;
    sensors::update_credentials_timestamp(
        &mut *transaction,
        path.sensor_identifier,
        Some(Timestamp::now()),
    )
    .await
    .context("recording the credentials")?;
    transaction.commit().await.context("committing")?;
    Ok((StatusCode::CREATED, Json(credentials)))
}

/// Revokes the sensor's credentials and closes its connection.
pub async fn delete_credentials(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<StatusCode, Error> {
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    let mut transaction = authorized.connection.begin().await.context("beginning")?;
    if !sensors::lock_sensor_credentials(&mut *transaction, path.sensor_identifier)
        .await
        .context("locking the sensor")?
    {
        return Err(Error::NotFound);
    }
    state
        .credentials
        .revoke(path.sensor_identifier)
        .await
        .context("revoking the credentials")?;
    sensors::update_credentials_timestamp(&mut *transaction, path.sensor_identifier, None)
        .await
        .context("recording the revocation")?;
    transaction.commit().await.context("committing")?;
    Ok(StatusCode::NO_CONTENT)
}
