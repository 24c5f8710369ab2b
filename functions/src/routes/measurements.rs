//! `/networks/{network_identifier}/sensors/{sensor_identifier}/measurements`: pages
//! of a sensor's measurements, or their statistics per bucket of time.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sensorium_shared::aggregation::AggregationRange;
use sensorium_shared::domain::Timestamp;
use sensorium_shared::pages::{Direction, PageRequest};
use sensorium_shared::queries::aggregates;
use sensorium_shared::queries::measurements::{self, CountDays};
use serde::Deserialize;

use crate::AppState;
use crate::auth::authorize_sensor;
use crate::error::Error;
use crate::extract::{Authorization, PathParameters, QueryParameters, SensorPath};
use crate::routes::JsonText;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/networks/{network_identifier}/sensors/{sensor_identifier}/measurements",
        get(read_measurements),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementsQuery {
    pub direction: Option<Direction>,
    pub creation_timestamp: Option<Timestamp>,
    #[serde(default)]
    pub aggregate: bool,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub interval: Option<i64>,
}

/// A page of measurements (cursor `creation_timestamp`), or with `aggregate=true`
/// per attribute the statistics of each bucket of `interval` seconds from `from` to
/// `to` (by default the hours of the last 28 days).
pub async fn read_measurements(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(query): QueryParameters<MeasurementsQuery>,
    authorization: Authorization,
) -> Result<Response, Error> {
    // Paging parameters mean nothing to the aggregation: refuse rather than ignore.
    if query.aggregate && (query.direction.is_some() || query.creation_timestamp.is_some()) {
        return Err(Error::bad_request(
            "aggregate=true takes no direction or creation_timestamp",
        ));
    }
    if !query.aggregate && (query.from.is_some() || query.to.is_some() || query.interval.is_some())
    {
        return Err(Error::bad_request(
            "from, to and interval go with aggregate=true",
        ));
    }
    let range = if query.aggregate {
        let range = AggregationRange::parse(query.from, query.to, query.interval, Timestamp::now());
        Some(range.map_err(Error::bad_request)?)
    } else {
        None
    };
    let mut authorized = authorize_sensor(&state, &authorization, &path).await?;
    if let Some(range) = range {
        let aggregates = aggregates::read_measurement_aggregates(
            &mut *authorized.connection,
            path.sensor_identifier,
            range,
        )
        .await?;
        return Ok(JsonText::from(aggregates).into_response());
    }
    let page = PageRequest {
        direction: query.direction.unwrap_or_default(),
        cursor: query.creation_timestamp,
    };
    let sensor = path.sensor_identifier;
    // Only a page without a cursor needs them.
    let count_days = match page.cursor {
        Some(_) => CountDays::default(),
        None => {
            state
                .count_days
                .get_or_read(&mut authorized.connection, sensor)
                .await?
        }
    };
    let page =
        measurements::read_measurement_page(&mut authorized.connection, sensor, page, count_days)
            .await?;
    Ok(JsonText::from(page).into_response())
}
