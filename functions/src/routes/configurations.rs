//! `/networks/{network_identifier}/sensors/{sensor_identifier}/configurations`:
//! create configurations (published to the sensor by the outbox) and page through them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sensorium_shared::domain::Revision;
use sensorium_shared::limits::MAXIMUM_CONFIGURATION_SIZE;
use sensorium_shared::pages::{Direction, PageRequest};
use sensorium_shared::queries::configurations::{self, Configuration};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::authorize_sensor;
use crate::error::Error;
use crate::extract::{Authorization, JsonBody, PathParameters, QueryParameters, SensorPath};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/networks/{network_identifier}/sensors/{sensor_identifier}/configurations",
        get(read_configurations).post(create_configuration),
    )
}

#[derive(Debug, Serialize)]
pub struct CreatedConfiguration {
    pub revision: Revision,
}

/// Stores the configuration under the sensor's next revision and wakes the outbox,
/// which publishes it; the answer does not wait for the broker.
pub async fn create_configuration(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    authorization: Authorization,
    // Any JSON object; arrays, strings, numbers, booleans and null do not deserialize.
    JsonBody(value): JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> Result<(StatusCode, Json<CreatedConfiguration>), Error> {
    // What is stored is what is published: compact JSON, whatever the request's spacing.
    let size = serde_json::to_vec(&value).map_err(Error::internal)?.len();
    if size > MAXIMUM_CONFIGURATION_SIZE {
        return Err(Error::PayloadTooLarge);
    }
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    let revision = configurations::create_configuration(
        &mut *authorized.connection,
        path.sensor_identifier,
        &value,
    )
    .await?
    // The sensor may have been deleted since it was authorized.
    .ok_or(Error::NotFound)?;
    state.outbox.wake().await;
    Ok((StatusCode::CREATED, Json(CreatedConfiguration { revision })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigurationsQuery {
    #[serde(default)]
    pub direction: Direction,
    pub revision: Option<Revision>,
}

/// A page of the sensor's configurations, cursor `revision`.
pub async fn read_configurations(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(query): QueryParameters<ConfigurationsQuery>,
    authorization: Authorization,
) -> Result<Json<Vec<Configuration>>, Error> {
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    let page = PageRequest {
        direction: query.direction,
        cursor: query.revision,
    };
    Ok(Json(
        configurations::read_configurations(
            &mut *authorized.connection,
            path.sensor_identifier,
            page,
        )
        .await?,
    ))
}
