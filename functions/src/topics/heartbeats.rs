//! The `heartbeats/+` function: sensors acknowledging configuration revisions.

use sensorium_shared::domain::{Identifier, Timestamp};
use sensorium_shared::queries::outbox::{NewHeartbeat, update_acknowledgements};
use sqlx::PgPool;

use super::SensorTopic;
use super::elements::Heartbeat;

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
