//! `/networks/{network_identifier}/sensors`: list, create and rename sensors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sensorium_shared::domain::{Identifier, SensorName};
use sensorium_shared::queries::sensors::{self, Sensor, SensorStatus};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{authorize_network, authorize_sensor};
use crate::error::Error;
use crate::extract::{
    Authorization, JsonBody, NetworkPath, NoQuery, PathParameters, QueryParameters, SensorPath,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/networks/{network_identifier}/sensors",
            get(read_sensors).post(create_sensor),
        )
        .route(
            "/networks/{network_identifier}/sensors/{sensor_identifier}",
            get(read_sensor).put(update_sensor),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorNameBody {
    pub sensor_name: SensorName,
}

#[derive(Debug, Serialize)]
pub struct SensorIdentifierBody {
    pub sensor_identifier: Identifier,
}

pub async fn read_sensors(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<NetworkPath>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<Json<Vec<Sensor>>, Error> {
    let mut authorized = authorize_network(&state, &authorization, path.network_identifier).await?;
    Ok(Json(
        sensors::read_sensors(&mut *authorized.connection, path.network_identifier).await?,
    ))
}

/// The sensor's status: when it was last heard from, its configuration revisions,
/// when its credentials were issued.
pub async fn read_sensor(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<Json<SensorStatus>, Error> {
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    sensors::read_sensor(
        &mut *authorized.connection,
        path.sensor_identifier,
        path.network_identifier,
    )
    .await?
    .map(Json)
    // The sensor may have been deleted since it was authorized.
    .ok_or(Error::NotFound)
}

/// Creates a sensor in the network: 409 if the name is taken there.
pub async fn create_sensor(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<NetworkPath>,
    authorization: Authorization,
    JsonBody(body): JsonBody<SensorNameBody>,
) -> Result<(StatusCode, Json<SensorIdentifierBody>), Error> {
    let mut authorized = authorize_network(&state, &authorization, path.network_identifier).await?;
    let sensor_identifier = Identifier::new();
    sensors::create_sensor(
        &mut *authorized.connection,
        sensor_identifier,
        path.network_identifier,
        &body.sensor_name,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SensorIdentifierBody { sensor_identifier }),
    ))
}

/// Renames a sensor: 409 if another sensor of the network has the name.
pub async fn update_sensor(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    authorization: Authorization,
    JsonBody(body): JsonBody<SensorNameBody>,
) -> Result<Json<SensorIdentifierBody>, Error> {
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    let updated = sensors::update_sensor_name(
        &mut *authorized.connection,
        path.sensor_identifier,
        path.network_identifier,
        &body.sensor_name,
    )
    .await?;
    // The sensor may have been deleted since it was authorized.
    if !updated {
        return Err(Error::NotFound);
    }
    Ok(Json(SensorIdentifierBody {
        sensor_identifier: path.sensor_identifier,
    }))
}
