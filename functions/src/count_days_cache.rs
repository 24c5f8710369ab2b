//! Each sensor's [`CountDays`] (where its pages without a cursor start looking), kept for
//! a while, so that a first or newest page costs one query instead of two.
//!
//! The days are only a guess for the page's read (see
//! [`measurements::read_measurement_page`]): days out of date cost at most a second
//! read of the page, never a wrong page. So nothing needs to invalidate them, and a
//! client that polls a sensor's newest page, as a dashboard does, reads them once a
//! minute.

use std::time::Duration;

use sensorium_shared::domain::Identifier;
use sensorium_shared::queries::measurements::{self, CountDays};
use sqlx::PgConnection;

use crate::expiring::ExpiringMap;

/// How long a sensor's days are used: a day of a sensor that measures gets its first
/// measurement once a day, so a minute-old copy is nearly always right.
const TIME_TO_LIVE: Duration = Duration::from_secs(60);
/// Most sensors kept.
const CAPACITY: usize = 10_000;

pub struct CountDaysCache(ExpiringMap<Identifier, CountDays>);

impl CountDaysCache {
    pub fn new() -> Self {
        Self(ExpiringMap::new(TIME_TO_LIVE, CAPACITY))
    }

    /// The sensor's days as kept, or read now and kept.
    pub async fn get_or_read(
        &self,
        connection: &mut PgConnection,
        sensor_identifier: Identifier,
    ) -> Result<CountDays, sqlx::Error> {
        if let Some(count_days) = self.0.get(&sensor_identifier) {
            return Ok(count_days);
        }
        let count_days = measurements::read_count_days(connection, sensor_identifier).await?;
        self.0.insert(sensor_identifier, count_days);
        Ok(count_days)
    }
}

impl Default for CountDaysCache {
    fn default() -> Self {
        Self::new()
    }
}
