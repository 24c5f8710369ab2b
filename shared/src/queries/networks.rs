//! Networks, the permissions users have on them, and their overview.

use std::ops::RangeInclusive;

use chrono::{TimeDelta, Utc};
use sqlx::PgExecutor;

use crate::arrays::{EpochMicros, Integers, Moments};
use crate::domain::{Identifier, NetworkName, SensorName};
use crate::limits::{AGGREGATION_WINDOW_DAYS, BUCKET_SECONDS};
use crate::queries::write_json;

/// Stores a new network; a taken name fails with a unique violation.
pub async fn create_network(
    executor: impl PgExecutor<'_>,
    network_identifier: Identifier,
    network_name: &NetworkName,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO network (identifier, name) VALUES ($1, $2)",
        network_identifier.as_uuid(),
        network_name.as_str(),
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Gives the user permission on the network.
pub async fn create_permission(
    executor: impl PgExecutor<'_>,
    user_identifier: Identifier,
    network_identifier: Identifier,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO permission (user_identifier, network_identifier) VALUES ($1, $2)",
        user_identifier.as_uuid(),
        network_identifier.as_uuid(),
    )
    .execute(executor)
    .await?;
    Ok(())
}

#[derive(Debug, serde::Serialize)]
pub struct Network {
    pub network_identifier: Identifier,
    pub network_name: NetworkName,
}

/// The networks the user has permission on, by name.
pub async fn read_networks(
    executor: impl PgExecutor<'_>,
    user_identifier: Identifier,
) -> Result<Vec<Network>, sqlx::Error> {
    sqlx::query_as!(
        Network,
        r#"
        SELECT
            network.identifier AS "network_identifier: _",
            network.name AS "network_name: _"
        FROM permission
        JOIN network ON network.identifier = permission.network_identifier
        WHERE permission.user_identifier = $1
        ORDER BY network.name
        "#,
        user_identifier.as_uuid(),
    )
    .fetch_all(executor)
    .await
}

/// One sensor in the network overview, as PostgreSQL gives it: its days of 4-hour
/// measurement counts, as parallel arrays (a day's start, and the count of each of its
/// six buckets), in the order of the counts' index.
struct SensorActivityRow {
    sensor_identifier: Identifier,
    sensor_name: SensorName,
    day_timestamps: Moments,
    count_00h: Integers,
    count_04h: Integers,
    count_08h: Integers,
    count_12h: Integers,
    count_16h: Integers,
    count_20h: Integers,
}

/// Every sensor of the network by name, with the buckets of the aggregation window
/// that hold measurements (from the counts kept on ingest, not the measurements), as
/// the JSON array of `{sensor_identifier, sensor_name, bucket_timestamps,
/// measurement_counts}` the REST API answers with.
///
/// The window ends now: buckets that start later (a sensor's clock ahead) are not of
/// the last 28 days, and bounding the days on both sides lets PostgreSQL skip the
/// partitions of the months ahead, which cost each sensor a scan of its own.
///
/// The counts are kept a row per sensor and day, its six buckets' counts in the key's
/// index (`migrations/`): each sensor's 29 days come from a range scan of the index of
/// each month they span, from the index alone, in the index's order, which the arrays
/// keep (PostgreSQL 15 would sort them again for an `ORDER BY` inside `array_agg`). The
/// order is checked here all the same.
///
/// The answer holds up to 168 buckets a sensor (28 days of 4 hours), 168,000 for 1,000
/// sensors: its timestamps are decoded as integers and the JSON is written here, which
/// cost a third of what chrono's timestamps and serde did.
pub async fn read_network_activity(
    executor: impl PgExecutor<'_>,
    network_identifier: Identifier,
) -> Result<String, sqlx::Error> {
    // The bucket that holds the window's start counts too.
    let window_end = Utc::now();
    let window_start =
        window_end - TimeDelta::days(AGGREGATION_WINDOW_DAYS) - TimeDelta::seconds(BUCKET_SECONDS);
    let rows = sqlx::query_as!(
        SensorActivityRow,
        r#"
        SELECT
            sensor.identifier AS "sensor_identifier: _",
            sensor.name AS "sensor_name: _",
            activity.day_timestamps AS "day_timestamps!: _",
            activity.count_00h AS "count_00h!: _",
            activity.count_04h AS "count_04h!: _",
            activity.count_08h AS "count_08h!: _",
            activity.count_12h AS "count_12h!: _",
            activity.count_16h AS "count_16h!: _",
            activity.count_20h AS "count_20h!: _"
        FROM sensor
        CROSS JOIN LATERAL (
            SELECT
                coalesce(array_agg(day.day_timestamp), '{}') AS day_timestamps,
                coalesce(array_agg(day.count_00h), '{}') AS count_00h,
                coalesce(array_agg(day.count_04h), '{}') AS count_04h,
                coalesce(array_agg(day.count_08h), '{}') AS count_08h,
                coalesce(array_agg(day.count_12h), '{}') AS count_12h,
                coalesce(array_agg(day.count_16h), '{}') AS count_16h,
                coalesce(array_agg(day.count_20h), '{}') AS count_20h
            FROM (
                SELECT day_timestamp, count_00h, count_04h, count_08h, count_12h,
                    count_16h, count_20h
                FROM measurement_count
                WHERE sensor_identifier = sensor.identifier
                    -- The days whose last bucket ends after the window's start,
                    -- and whose first starts before its end.
                    AND day_timestamp > $2::timestamptz - interval '20 hours'
                    AND day_timestamp <= $3
                ORDER BY day_timestamp
            ) AS day
        ) AS activity
        WHERE sensor.network_identifier = $1
        ORDER BY sensor.name
        "#,
        network_identifier.as_uuid(),
        window_start,
        window_end,
    )
    .fetch_all(executor)
    .await?;
    let window =
        EpochMicros(window_start.timestamp_micros())..=EpochMicros(window_end.timestamp_micros());
    let days: usize = rows.iter().map(|row| row.day_timestamps.0.len()).sum();
    let mut json = Vec::with_capacity(2 + rows.len() * 160 + days * 6 * 16);
    let mut buckets = Vec::new();
    json.push(b'[');
    for (index, row) in rows.into_iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        buckets.clear();
        row.buckets_within(&window, &mut buckets)?;
        write_sensor_activity(&mut json, &row, &buckets);
    }
    json.push(b']');
    String::from_utf8(json).map_err(|error| sqlx::Error::Decode(error.into()))
}

impl SensorActivityRow {
    /// Appends the sensor's buckets that start after the window's start, no later than
    /// its end, and hold any measurement to `buckets`, as (start, count), by time.
    fn buckets_within(
        &self,
        window: &RangeInclusive<EpochMicros>,
        buckets: &mut Vec<(EpochMicros, i64)>,
    ) -> Result<(), sqlx::Error> {
        let days = &self.day_timestamps.0;
        let counts = [
            &self.count_00h.0,
            &self.count_04h.0,
            &self.count_08h.0,
            &self.count_12h.0,
            &self.count_16h.0,
            &self.count_20h.0,
        ];
        if counts.iter().any(|counts| counts.len() != days.len()) {
            return Err(sqlx::Error::Decode(
                "the overview's arrays differ in length".into(),
            ));
        }
        let first = buckets.len();
        for (day, start_of_day) in days.iter().enumerate() {
            for (slot, counts) in counts.iter().enumerate() {
                let start = EpochMicros(start_of_day.0 + slot as i64 * BUCKET_MICROS);
                let count = counts[day];
                if count > 0 && start > *window.start() && start <= *window.end() {
                    buckets.push((start, count));
                }
            }
        }
        // A day's buckets come in order and lie within it: only days out of order can
        // put them out of order.
        if !days.is_sorted() {
            buckets[first..].sort_unstable_by_key(|(start, _)| *start);
        }
        Ok(())
    }
}

const BUCKET_MICROS: i64 = BUCKET_SECONDS * 1_000_000;

fn write_sensor_activity(
    json: &mut Vec<u8>,
    row: &SensorActivityRow,
    buckets: &[(EpochMicros, i64)],
) {
    json.extend_from_slice(br#"{"sensor_identifier":"#);
    write_json(json, &row.sensor_identifier);
    json.extend_from_slice(br#","sensor_name":"#);
    write_json(json, &row.sensor_name);
    json.extend_from_slice(br#","bucket_timestamps":["#);
    let mut integers = itoa::Buffer::new();
    for (index, (timestamp, _)) in buckets.iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        timestamp.write_seconds(json, &mut integers);
    }
    json.extend_from_slice(br#"],"measurement_counts":["#);
    for (index, (_, count)) in buckets.iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        json.extend_from_slice(integers.format(*count).as_bytes());
    }
    json.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000;

    fn row(days: &[i64], counts: [&[i64]; 6]) -> SensorActivityRow {
        let integers = |slot: usize| Integers(counts[slot].to_vec());
        SensorActivityRow {
            sensor_identifier: Identifier::new(),
            sensor_name: SensorName::parse("sensor").unwrap(),
            day_timestamps: Moments(days.iter().map(|day| EpochMicros(*day)).collect()),
            count_00h: integers(0),
            count_04h: integers(1),
            count_08h: integers(2),
            count_12h: integers(3),
            count_16h: integers(4),
            count_20h: integers(5),
        }
    }

    #[test]
    fn days_become_the_buckets_within_the_window_that_hold_measurements() {
        // Two days out of order; the window starts inside the first, at its 8:00 bucket
        // (excluded), and ends inside the second, at 16:00 (included).
        let sensor = row(
            &[11 * DAY, 10 * DAY],
            [&[7, 1], &[0, 2], &[0, 3], &[0, 0], &[5, 0], &[8, 6]],
        );
        let hours = |day: i64, hour: i64| EpochMicros(day * DAY + hour * 3600 * 1_000_000);
        let mut buckets = Vec::new();
        sensor
            .buckets_within(&(hours(10, 8)..=hours(11, 16)), &mut buckets)
            .unwrap();
        assert_eq!(
            buckets,
            [(hours(10, 20), 6), (hours(11, 0), 7), (hours(11, 16), 5)]
        );
    }

    #[test]
    fn arrays_of_different_lengths_are_refused() {
        let sensor = row(&[DAY], [&[1], &[1], &[1], &[], &[1], &[1]]);
        assert!(
            sensor
                .buckets_within(&(EpochMicros(0)..=EpochMicros(DAY)), &mut Vec::new())
                .is_err()
        );
    }
}
