//! Networks, the permissions users have on them, and their overview.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, PgExecutor, Postgres};

use crate::domain::{Identifier, NetworkName, SensorName};
use crate::limits::{AGGREGATION_WINDOW_DAYS, BUCKET_SECONDS};

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

/// One sensor in the network overview, as PostgreSQL gives it: its measurement counts
/// per 4-hour bucket, as two parallel arrays, in the order of the counts' index.
struct SensorActivityRow {
    sensor_identifier: Identifier,
    sensor_name: SensorName,
    bucket_timestamps: Moments,
    measurement_counts: Counts,
}

/// Every sensor of the network by name, with the buckets of the aggregation window
/// that hold measurements (from the counts kept on ingest, not the measurements), as
/// the JSON array of `{sensor_identifier, sensor_name, bucket_timestamps,
/// measurement_counts}` the REST API answers with.
///
/// Each sensor's counts come from one range scan of the counts' index, which holds them
/// (an index-only scan), in the index's order, which the arrays keep: PostgreSQL 15
/// would sort them again for an `ORDER BY` inside `array_agg`, a third of the query's
/// time. The order is checked here all the same.
///
/// The answer holds up to 168 buckets a sensor (28 days of 4 hours), 168,000 for 1,000
/// sensors: its timestamps are decoded as integers and the JSON is written here, which
/// cost a third of what chrono's timestamps and serde did.
pub async fn read_network_activity(
    executor: impl PgExecutor<'_>,
    network_identifier: Identifier,
) -> Result<String, sqlx::Error> {
    let rows = sqlx::query_as!(
        SensorActivityRow,
        r#"
        SELECT
            sensor.identifier AS "sensor_identifier: _",
            sensor.name AS "sensor_name: _",
            activity.bucket_timestamps AS "bucket_timestamps!: _",
            activity.measurement_counts AS "measurement_counts!: _"
        FROM sensor
        CROSS JOIN LATERAL (
            SELECT
                coalesce(array_agg(bucket.bucket_timestamp), '{}') AS bucket_timestamps,
                coalesce(array_agg(bucket.measurement_count), '{}') AS measurement_counts
            FROM (
                SELECT bucket_timestamp, measurement_count
                FROM measurement_bucket
                WHERE sensor_identifier = sensor.identifier
                    -- The bucket that holds the window's start counts too.
                    AND bucket_timestamp > now() - make_interval(days => $2, secs => $3)
                ORDER BY bucket_timestamp
            ) AS bucket
        ) AS activity
        WHERE sensor.network_identifier = $1
        ORDER BY sensor.name
        "#,
        network_identifier.as_uuid(),
        AGGREGATION_WINDOW_DAYS as i32,
        BUCKET_SECONDS as f64,
    )
    .fetch_all(executor)
    .await?;
    let buckets: usize = rows.iter().map(|row| row.measurement_counts.0.len()).sum();
    let mut json = Vec::with_capacity(2 + rows.len() * 160 + buckets * 16);
    json.push(b'[');
    for (index, row) in rows.into_iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        write_sensor_activity(&mut json, row);
    }
    json.push(b']');
    String::from_utf8(json).map_err(|error| sqlx::Error::Decode(error.into()))
}

fn write_sensor_activity(json: &mut Vec<u8>, row: SensorActivityRow) {
    let mut buckets: Vec<_> = row
        .bucket_timestamps
        .0
        .into_iter()
        .zip(row.measurement_counts.0)
        .collect();
    if !buckets.is_sorted_by_key(|(timestamp, _)| *timestamp) {
        buckets.sort_unstable_by_key(|(timestamp, _)| *timestamp);
    }
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

fn write_json(json: &mut Vec<u8>, value: &impl serde::Serialize) {
    serde_json::to_writer(json, value).expect("identifiers and names serialize into a Vec");
}

/// A `timestamptz` as microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EpochMicros(i64);

/// PostgreSQL counts `timestamptz` from 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl EpochMicros {
    /// Writes the seconds as [`Timestamp`] serializes them (a JSON number, as serde
    /// writes an `f64`): whole seconds, as every bucket's start is, as an integer and
    /// `.0`.
    fn write_seconds(self, json: &mut Vec<u8>, integers: &mut itoa::Buffer) {
        if self.0 % 1_000_000 == 0 {
            json.extend_from_slice(integers.format(self.0 / 1_000_000).as_bytes());
            json.extend_from_slice(b".0");
        } else {
            write_json(json, &(self.0 as f64 / 1e6));
        }
    }
}

/// A `timestamptz[]` of microseconds since the Unix epoch, and [`Counts`], an
/// `int8[]`: decoded in one pass over PostgreSQL's binary array, instead of through
/// sqlx's decoding of each element and chrono (a quarter of the overview's time).
#[derive(Debug)]
struct Moments(Vec<EpochMicros>);

#[derive(Debug)]
struct Counts(Vec<i64>);

impl sqlx::Type<Postgres> for Moments {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as PgHasArrayType>::array_type_info()
    }
}

impl sqlx::Type<Postgres> for Counts {
    fn type_info() -> PgTypeInfo {
        <i64 as PgHasArrayType>::array_type_info()
    }
}

impl<'r> Decode<'r, Postgres> for Moments {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let elements = decode_eight_byte_array(value)?;
        elements
            .into_iter()
            .map(|since_2000| {
                since_2000
                    .checked_add(POSTGRES_EPOCH_MICROS)
                    .map(EpochMicros)
                    .ok_or_else(|| "timestamp out of range".into())
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl<'r> Decode<'r, Postgres> for Counts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_eight_byte_array(value).map(Self)
    }
}

/// The elements of a one-dimensional array without nulls whose elements are 8-byte
/// big-endian integers (`int8`, `timestamptz`), in PostgreSQL's binary form
/// (`array_send`): dimensions, a null flag and the element type, each dimension's
/// length and lower bound, then each element's length and bytes.
fn decode_eight_byte_array(value: PgValueRef<'_>) -> Result<Vec<i64>, BoxDynError> {
    if value.format() != PgValueFormat::Binary {
        return Err("an array in text form".into());
    }
    let bytes = value.as_bytes()?;
    let integer = |offset: usize| -> Result<i32, BoxDynError> {
        let word = bytes
            .get(offset..offset + 4)
            .ok_or("an array shorter than its header says")?;
        Ok(i32::from_be_bytes(word.try_into()?))
    };
    let (dimensions, has_nulls) = (integer(0)?, integer(4)?);
    if dimensions == 0 {
        return Ok(Vec::new());
    }
    if dimensions != 1 || has_nulls != 0 {
        return Err("an array of more than one dimension, or with nulls".into());
    }
    let length = usize::try_from(integer(12)?)?;
    let elements = bytes.get(20..).ok_or("an array without elements")?;
    if elements.len() != length * 12 {
        return Err("an array of other than 8-byte elements".into());
    }
    elements
        .chunks_exact(12)
        .map(|element| {
            let (size, number) = element.split_at(4);
            if size != 8i32.to_be_bytes() {
                return Err("an array element of other than 8 bytes".into());
            }
            Ok(i64::from_be_bytes(number.try_into()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    #[test]
    fn bucket_seconds_are_written_as_timestamps_serialize() {
        let mut integers = itoa::Buffer::new();
        for micros in [
            0,
            1_000_000,
            1_764_460_800_000_000,
            2_147_483_647_000_000,
            1_683_645_000_123_456,
            1_500_000,
        ] {
            let mut written = Vec::new();
            EpochMicros(micros).write_seconds(&mut written, &mut integers);
            let timestamp =
                Timestamp::from_datetime(DateTime::from_timestamp_micros(micros).unwrap());
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&timestamp).unwrap(),
                "{micros}"
            );
        }
    }
}
