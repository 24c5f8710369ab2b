//! Each sensor's [`CountDays`] (where its pages without a cursor start looking), kept for
//! a while, so that a first or newest page costs one query instead of two.
//!
//! The days are only a guess for the page's read (see
//! [`measurements::read_measurement_page`]): days out of date cost at most a second
//! read of the page, never a wrong page. So nothing needs to invalidate them, and a
//! client that polls a sensor's newest page, as a dashboard does, reads them once a
//! minute.
//!
//! [`measurements::read_measurement_page`]: sensorium_shared::queries::measurements::read_measurement_page

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sensorium_shared::domain::Identifier;
use sensorium_shared::queries::measurements::CountDays;

/// How long a sensor's days are used: a day of a sensor that measures gets its first
/// measurement once a day, so a minute-old copy is nearly always right.
pub const COUNT_DAYS_TIME_TO_LIVE: Duration = Duration::from_secs(60);
/// Most sensors kept; beyond, the expired ones go, and if none has expired, all.
const CAPACITY: usize = 10_000;

pub struct CountDaysCache {
    time_to_live: Duration,
    /// Each sensor's days and when they were read.
    days: Mutex<HashMap<Identifier, (CountDays, Instant)>>,
}

impl CountDaysCache {
    pub fn new(time_to_live: Duration) -> Self {
        Self {
            time_to_live,
            days: Mutex::new(HashMap::new()),
        }
    }

    /// The sensor's days, if read within the time to live.
    pub fn get(&self, sensor_identifier: Identifier) -> Option<CountDays> {
        let days = self.lock();
        days.get(&sensor_identifier)
            .filter(|(_, read)| read.elapsed() < self.time_to_live)
            .map(|(days, _)| *days)
    }

    /// Remembers the sensor's days, read just now.
    pub fn insert(&self, sensor_identifier: Identifier, count_days: CountDays) {
        let mut days = self.lock();
        if days.len() >= CAPACITY {
            days.retain(|_, (_, read)| read.elapsed() < self.time_to_live);
            if days.len() >= CAPACITY {
                days.clear();
            }
        }
        days.insert(sensor_identifier, (count_days, Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Identifier, (CountDays, Instant)>> {
        self.days
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn some_days() -> CountDays {
        CountDays {
            first: Some(Utc::now()),
            last: Some(Utc::now()),
        }
    }

    #[test]
    fn days_are_kept_per_sensor_for_their_time_to_live() {
        let cache = CountDaysCache::new(Duration::from_secs(60));
        let (sensor, days) = (Identifier::new(), some_days());
        assert_eq!(cache.get(sensor), None);
        cache.insert(sensor, days);
        assert_eq!(cache.get(sensor), Some(days));
        assert_eq!(cache.get(Identifier::new()), None);
    }

    #[test]
    fn expired_days_are_not_used() {
        let cache = CountDaysCache::new(Duration::from_millis(20));
        let sensor = Identifier::new();
        cache.insert(sensor, some_days());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get(sensor), None);
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = CountDaysCache::new(Duration::from_secs(60));
        for _ in 0..CAPACITY + 1 {
            cache.insert(Identifier::new(), CountDays::default());
        }
        let length = cache.days.lock().unwrap().len();
        assert!((1..=CAPACITY).contains(&length), "{length}");
    }
}
