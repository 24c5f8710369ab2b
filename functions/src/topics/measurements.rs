//! The `measurements/+` function.

use sensorium_shared::domain::{Identifier, Timestamp};
use sensorium_shared::queries::measurements::{NewMeasurement, create_measurements};
use sqlx::PgPool;

use super::SensorTopic;
use super::elements::Measurement;

pub(super) struct Measurements;

impl SensorTopic for Measurements {
    const PREFIX: &'static str = "measurements";
    type Element = Measurement;
    type Row = NewMeasurement;

    fn row(
        element: Measurement,
        sensor_identifier: Identifier,
        receipt_timestamp: Timestamp,
        position: i32,
    ) -> NewMeasurement {
        NewMeasurement {
            sensor_identifier,
            timestamp: element.timestamp,
            revision: element.revision,
            value: element.value,
            receipt_timestamp,
            position,
        }
    }

    async fn store(pool: &PgPool, rows: &[NewMeasurement]) -> Result<u64, sqlx::Error> {
        create_measurements(pool, rows).await
    }
}
