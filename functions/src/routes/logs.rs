//! `/networks/{network_identifier}/sensors/{sensor_identifier}/logs`: pages of a
//! sensor's log messages, and its warnings and errors grouped by subject.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use sensorium_shared::domain::Timestamp;
use sensorium_shared::pages::{Direction, PageRequest};
use sensorium_shared::queries::logs::{self, LogAggregate, LogMessage};
use serde::Deserialize;

use crate::AppState;
use crate::auth::authorize_sensor;
use crate::error::Error;
use crate::extract::{Authorization, NoQuery, PathParameters, QueryParameters, SensorPath};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/networks/{network_identifier}/sensors/{sensor_identifier}/logs",
            get(read_log_messages),
        )
        .route(
            "/networks/{network_identifier}/sensors/{sensor_identifier}/logs/aggregates",
            get(read_log_aggregates),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    #[serde(default)]
    pub direction: Direction,
    pub creation_timestamp: Option<Timestamp>,
}

/// A page of log messages, cursor `creation_timestamp`.
pub async fn read_log_messages(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(query): QueryParameters<LogsQuery>,
    authorization: Authorization,
) -> Result<Json<Vec<LogMessage>>, Error> {
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    let page = PageRequest {
        direction: query.direction,
        cursor: query.creation_timestamp,
    };
    Ok(Json(
        logs::read_log_messages(&mut *authorized.connection, path.sensor_identifier, page).await?,
    ))
}

/// Warnings and errors grouped by severity and subject.
pub async fn read_log_aggregates(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<Json<Vec<LogAggregate>>, Error> {
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    Ok(Json(
        logs::read_log_aggregates(&mut *authorized.connection, path.sensor_identifier).await?,
    ))
}
