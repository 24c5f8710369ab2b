//! Networks, the permissions users have on them, and their overview.

use sqlx::PgExecutor;

use crate::arrays::{Integers, Moments};
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
    measurement_counts: Integers,
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
