//! The `heartbeats/+` topic: sensors acknowledging configuration revisions.

use sensorium_shared::domain::{Identifier, Revision, Timestamp};
use sensorium_shared::queries::outbox::{NewHeartbeat, update_acknowledgements};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::PgPool;

use super::SensorTopic;
use super::payload::{Element, deserialize};

/// A heartbeat: the sensor's acknowledgement of a configuration revision.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub revision: Revision,
    pub timestamp: Timestamp,
    pub success: bool,
}

impl Element for Heartbeat {
    const KEY: &'static str = "heartbeats";

    fn parse(element: &RawValue) -> Result<Self, String> {
        deserialize(element)
    }
}

pub(super) struct Heartbeats;

impl SensorTopic for Heartbeats {
    const PREFIX: &'static str = "heartbeats";
    type Element = Heartbeat;
    type Row = NewHeartbeat;

    fn row(
        element: Heartbeat,
        sensor_identifier: Identifier,
        receipt_timestamp: Timestamp,
        _position: i32,
    ) -> NewHeartbeat {
        NewHeartbeat {
            sensor_identifier,
            revision: element.revision,
            timestamp: element.timestamp,
            success: element.success,
            receipt_timestamp,
        }
    }

    async fn store(pool: &PgPool, rows: &[NewHeartbeat]) -> Result<u64, sqlx::Error> {
        update_acknowledgements(pool, rows).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::topics::payload::tests::accepted;

    #[test]
    fn heartbeats_need_revision_timestamp_and_success() {
        assert!(accepted::<Heartbeat>(
            json!({"revision": 0, "timestamp": 1.25, "success": false})
        ));
        let refused = [
            json!({"timestamp": 1, "success": true}),
            json!({"revision": null, "timestamp": 1, "success": true}),
            json!({"revision": 0, "success": true}),
            json!({"revision": 0, "timestamp": 1}),
            json!({"revision": 0, "timestamp": 1, "success": 1}),
            json!({"revision": 0, "timestamp": 1, "success": true, "extra": 1}),
        ];
        for element in refused {
            assert!(!accepted::<Heartbeat>(element.clone()), "{element}");
        }
    }
}
