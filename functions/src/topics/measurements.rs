//! The `measurements/+` topic: its element, how a message's elements become rows,
//! and the statement that stores them.

use std::collections::BTreeMap;

use sensorium_shared::domain::{Attribute, Identifier, Revision, Timestamp};
use sensorium_shared::limits::MAXIMUM_ATTRIBUTE_COUNT;
use sensorium_shared::queries::measurements::{NewMeasurement, create_measurements};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::PgPool;

use super::SensorTopic;
use super::payload::{Element, deserialize, unique_keys};

/// A measurement: `timestamp`, optional `revision`, and 1 to 1024 finite numbers, each
/// attribute once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    pub timestamp: Timestamp,
    #[serde(default)]
    pub revision: Option<Revision>,
    // JSON numbers are finite (serde_json refuses 1e400), and `f64` refuses strings,
    // booleans and null.
    #[serde(deserialize_with = "unique_keys")]
    pub value: BTreeMap<Attribute, f64>,
}

impl Element for Measurement {
    const KEY: &'static str = "measurements";

    fn parse(element: &RawValue) -> Result<Self, String> {
        let measurement: Self = deserialize(element)?;
        if (1..=MAXIMUM_ATTRIBUTE_COUNT).contains(&measurement.value.len()) {
            Ok(measurement)
        } else {
            Err(format!(
                "value holds {} attributes, not 1 to {MAXIMUM_ATTRIBUTE_COUNT}",
                measurement.value.len()
            ))
        }
    }
}

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::topics::payload::tests::accepted;

    #[test]
    fn measurements_need_a_timestamp_and_1_to_1024_finite_numbers() {
        let good = json!({"timestamp": 1.5, "value": {"temperature": 20.5, "co2": 400}});
        assert!(accepted::<Measurement>(good));
        assert!(accepted::<Measurement>(
            json!({"timestamp": 1, "revision": null, "value": {"a": 1}})
        ));
        assert!(accepted::<Measurement>(
            json!({"timestamp": 1, "revision": 3, "value": {"a": -1e300}})
        ));
        let most: serde_json::Map<_, _> = (0..1024).map(|i| (format!("a{i}"), json!(i))).collect();
        assert!(accepted::<Measurement>(
            json!({"timestamp": 1, "value": most})
        ));
        let too_many: serde_json::Map<_, _> =
            (0..1025).map(|i| (format!("a{i}"), json!(i))).collect();
        let refused = [
            json!({"timestamp": 1, "value": too_many}),
            json!({"value": {"a": 1}}),
            json!({"timestamp": 1}),
            json!({"timestamp": 1, "value": {}}),
            json!({"timestamp": 1, "value": {"a": "1"}}),
            json!({"timestamp": 1, "value": {"a": null}}),
            json!({"timestamp": 1, "value": {"A": 1}}),
            json!({"timestamp": 1, "value": {"a__b": 1}}),
            json!({"timestamp": 1, "value": [1]}),
            json!({"timestamp": -1, "value": {"a": 1}}),
            json!({"timestamp": 2147483648_u64, "value": {"a": 1}}),
            json!({"timestamp": "1", "value": {"a": 1}}),
            json!({"timestamp": 1, "revision": -1, "value": {"a": 1}}),
            json!({"timestamp": 1, "revision": 1.5, "value": {"a": 1}}),
            json!({"timestamp": 1, "value": {"a": 1}, "unit": "C"}),
            json!("measurement"),
        ];
        for element in refused {
            assert!(!accepted::<Measurement>(element.clone()), "{element}");
        }
    }
}
