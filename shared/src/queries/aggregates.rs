//! Measurement aggregates over any range: per attribute, buckets of any width from a
//! minute to 30 days, aligned to the epoch. Buckets of whole hours are summed from the
//! hourly rollup (`measurement_hour`, kept by a trigger on ingest) and the rows of the
//! partial hours at the range's edges; finer buckets from the rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::aggregation::AggregationRange;
use crate::domain::{Identifier, Timestamp};

/// The statistics of one attribute over one bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bucket {
    pub bucket_timestamp: Timestamp,
    pub average: f64,
    pub minimum: f64,
    pub maximum: f64,
    pub count: i64,
}

struct BucketRow {
    attribute: String,
    bucket_timestamp: DateTime<Utc>,
    /// The exact average as numeric text: see [`read_measurement_aggregates`].
    average: String,
    minimum: f64,
    maximum: f64,
    count: i64,
}

/// Per attribute, the buckets of `range` that hold any value, sorted by time.
///
/// No stored value may make this fail (the contract). Sums are numeric, exact: float8 would
/// overflow past 1.8e308 (1e308 twice in a bucket). The average comes back as text,
/// parsed here: converting it to float8 in PostgreSQL fails where it lies below the
/// smallest subnormal, which Rust rounds to 0.
pub async fn read_measurement_aggregates(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    range: AggregationRange,
) -> Result<BTreeMap<String, Vec<Bucket>>, sqlx::Error> {
    let interval = range.interval_seconds() as f64;
    let (sensor, from, to) = (sensor_identifier.as_uuid(), range.from(), range.to());
    let rows = if range.is_hourly() {
        // Buckets of whole hours: the rollup's hours inside the range ($5 to $6), and the
        // rows of the partial hours at its edges, each part a range scan of its key.
        let (whole_hours_start, whole_hours_end) = range.whole_hours();
        sqlx::query_as!(
            BucketRow,
            r#"
            WITH part (attribute, moment, minimum, maximum, count, sum) AS (
                SELECT attribute, bucket_timestamp, minimum, maximum, count, sum
                FROM measurement_hour
                WHERE sensor_identifier = $1 AND bucket_timestamp >= $5
                    AND bucket_timestamp < $6
                UNION ALL
                SELECT data_point.key, measurement.creation_timestamp,
                    data_point.value::double precision, data_point.value::double precision,
                    1, data_point.value::numeric
                FROM measurement, json_each_text(measurement.value) AS data_point
                WHERE measurement.sensor_identifier = $1
                    AND measurement.creation_timestamp >= $2
                    AND measurement.creation_timestamp < $5
                UNION ALL
                SELECT data_point.key, measurement.creation_timestamp,
                    data_point.value::double precision, data_point.value::double precision,
                    1, data_point.value::numeric
                FROM measurement, json_each_text(measurement.value) AS data_point
                WHERE measurement.sensor_identifier = $1
                    AND measurement.creation_timestamp >= $6
                    AND measurement.creation_timestamp < $3
            )
            SELECT
                attribute AS "attribute!",
                date_bin(make_interval(secs => $4), moment, timestamptz '1970-01-01 00:00:00+00')
                    AS "bucket_timestamp!",
                (sum(sum) / sum(count))::text AS "average!",
                min(minimum) AS "minimum!",
                max(maximum) AS "maximum!",
                sum(count)::bigint AS "count!"
            FROM part
            GROUP BY 1, 2
            ORDER BY 1, 2
            "#,
            sensor,
            from,
            to,
            interval,
            whole_hours_start,
            whole_hours_end,
        )
        .fetch_all(executor)
        .await?
    } else {
        // Buckets finer than an hour, from the rows.
        sqlx::query_as!(
            BucketRow,
            r#"
            SELECT
                data_point.key AS "attribute!",
                date_bin(make_interval(secs => $4), measurement.creation_timestamp,
                    timestamptz '1970-01-01 00:00:00+00') AS "bucket_timestamp!",
                avg(data_point.value::numeric)::text AS "average!",
                min(data_point.value::double precision) AS "minimum!",
                max(data_point.value::double precision) AS "maximum!",
                count(*) AS "count!"
            FROM measurement, json_each_text(measurement.value) AS data_point
            WHERE measurement.sensor_identifier = $1
                AND measurement.creation_timestamp >= $2
                AND measurement.creation_timestamp < $3
            GROUP BY 1, 2
            ORDER BY 1, 2
            "#,
            sensor,
            from,
            to,
            interval,
        )
        .fetch_all(executor)
        .await?
    };
    let mut aggregates: BTreeMap<String, Vec<Bucket>> = BTreeMap::new();
    for row in rows {
        let average = row
            .average
            .parse()
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        aggregates.entry(row.attribute).or_default().push(Bucket {
            bucket_timestamp: Timestamp::from_datetime(row.bucket_timestamp),
            average,
            minimum: row.minimum,
            maximum: row.maximum,
            count: row.count,
        });
    }
    Ok(aggregates)
}
