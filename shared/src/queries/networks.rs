//! Networks, the permissions users have on them, and their overview.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::{Identifier, NetworkName, SensorName, Timestamp};
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

/// One sensor in the network overview: its measurement counts per 4-hour bucket, as
/// two parallel arrays sorted by time.
#[derive(Debug, serde::Serialize)]
pub struct SensorActivity {
    pub sensor_identifier: Identifier,
    pub sensor_name: SensorName,
    pub bucket_timestamps: Vec<Timestamp>,
    pub measurement_counts: Vec<i64>,
}

struct SensorActivityRow {
    sensor_identifier: Identifier,
    sensor_name: SensorName,
    bucket_timestamps: Vec<DateTime<Utc>>,
    measurement_counts: Vec<i64>,
}

/// Every sensor of the network by name, with the buckets of the aggregation window
/// that hold measurements (from the counts kept on ingest, not the measurements).
///
/// Each sensor's counts come from one range scan of the counts' index, which holds them
/// (an index-only scan), in the index's order, which the arrays keep: PostgreSQL 15
/// would sort them again for an `ORDER BY` inside `array_agg`, a third of the query's
/// time. The order is checked here all the same.
pub async fn read_network_activity(
    executor: impl PgExecutor<'_>,
    network_identifier: Identifier,
) -> Result<Vec<SensorActivity>, sqlx::Error> {
    let rows = sqlx::query_as!(
        SensorActivityRow,
        r#"
        SELECT
            sensor.identifier AS "sensor_identifier: _",
            sensor.name AS "sensor_name: _",
            activity.bucket_timestamps AS "bucket_timestamps!",
            activity.measurement_counts AS "measurement_counts!"
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
    Ok(rows.into_iter().map(SensorActivity::from).collect())
}

impl From<SensorActivityRow> for SensorActivity {
    fn from(row: SensorActivityRow) -> Self {
        let mut buckets: Vec<_> = row
            .bucket_timestamps
            .into_iter()
            .zip(row.measurement_counts)
            .collect();
        if !buckets.is_sorted_by_key(|(timestamp, _)| *timestamp) {
            buckets.sort_unstable_by_key(|(timestamp, _)| *timestamp);
        }
        let (bucket_timestamps, measurement_counts) = buckets
            .into_iter()
            .map(|(timestamp, count)| (Timestamp::from_datetime(timestamp), count))
            .unzip();
        Self {
            sensor_identifier: row.sensor_identifier,
            sensor_name: row.sensor_name,
            bucket_timestamps,
            measurement_counts,
        }
    }
}
