//! Measurement aggregates over any range: per attribute, buckets of any width from a
//! minute to 30 days, aligned to the epoch. Buckets of whole hours are summed from the
//! rollups (`measurement_day` for buckets of whole days, and `measurement_hour`; a
//! trigger keeps both on ingest) and the rows of the partial hours at the range's
//! edges; finer buckets from the rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::aggregation::AggregationRange;
use crate::domain::{Identifier, Timestamp};
use crate::numeric::ExactSum;

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
    /// The exact sum of the bucket's values: see [`read_measurement_aggregates`].
    sum: ExactSum,
    minimum: f64,
    maximum: f64,
    count: i64,
}

/// Per attribute, the buckets of `range` that hold any value, sorted by time.
///
/// No stored value may make this fail (the contract). Sums are numeric, exact: float8 would
/// overflow past 1.8e308 (1e308 twice in a bucket). Each bucket's sum comes back as it
/// is and is divided here ([`ExactSum`]): dividing in PostgreSQL cost it about as much
/// as the rest of the query, and its conversion to float8 fails where the average lies
/// below the smallest subnormal, which is 0 here.
pub async fn read_measurement_aggregates(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    range: AggregationRange,
) -> Result<BTreeMap<String, Vec<Bucket>>, sqlx::Error> {
    let interval = range.interval_seconds() as f64;
    let (sensor, from, to) = (sensor_identifier.as_uuid(), range.from(), range.to());
    let rows = if range.is_hourly() {
        // Buckets of whole hours: the daily rollup's days inside the range ($5 to $6),
        // the hourly rollup's other hours inside it ($7 to $5 and $6 to $8), and the
        // rows of the partial hours at its edges; each part a range scan of its key.
        // Where the interval is the rollup's own ($9 for days, $10 for hours), its rows
        // are the buckets, read as they are: summing them in groups of one cost
        // PostgreSQL three times what reading them does.
        let spans = range.rollup_spans();
        let ((hours_start, hours_end), (days_start, days_end)) = (spans.hours, spans.days);
        sqlx::query_as!(
            BucketRow,
            r#"
            WITH part (attribute, moment, minimum, maximum, count, sum) AS (
                SELECT attribute, bucket_timestamp, minimum, maximum, count, sum
                FROM measurement_day
                WHERE NOT $9 AND sensor_identifier = $1
                    AND bucket_timestamp >= $5 AND bucket_timestamp < $6
                UNION ALL
                SELECT attribute, bucket_timestamp, minimum, maximum, count, sum
                FROM measurement_hour
                WHERE NOT $10 AND sensor_identifier = $1
                    AND (bucket_timestamp >= $7 AND bucket_timestamp < $5
                        OR bucket_timestamp >= $6 AND bucket_timestamp < $8)
                UNION ALL
                SELECT data_point.key, measurement.creation_timestamp,
                    data_point.value::double precision, data_point.value::double precision,
                    1, data_point.value::numeric
                FROM measurement, json_each_text(measurement.value) AS data_point
                WHERE measurement.sensor_identifier = $1
                    AND (measurement.creation_timestamp >= $2
                            AND measurement.creation_timestamp < $7
                        OR measurement.creation_timestamp >= $8
                            AND measurement.creation_timestamp < $3)
            )
            SELECT
                attribute AS "attribute!",
                date_bin(make_interval(secs => $4), moment, timestamptz '1970-01-01 00:00:00+00')
                    AS "bucket_timestamp!",
                sum(sum) AS "sum!: ExactSum",
                min(minimum) AS "minimum!",
                max(maximum) AS "maximum!",
                sum(count)::bigint AS "count!"
            FROM part
            GROUP BY 1, 2
            UNION ALL
            SELECT attribute, bucket_timestamp, sum, minimum, maximum, count
            FROM measurement_day
            WHERE $9 AND sensor_identifier = $1
                AND bucket_timestamp >= $5 AND bucket_timestamp < $6
            UNION ALL
            SELECT attribute, bucket_timestamp, sum, minimum, maximum, count
            FROM measurement_hour
            WHERE $10 AND sensor_identifier = $1
                AND bucket_timestamp >= $7 AND bucket_timestamp < $8
            "#,
            sensor,
            from,
            to,
            interval,
            days_start,
            days_end,
            hours_start,
            hours_end,
            spans.day_rows_are_buckets,
            spans.hour_rows_are_buckets,
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
                sum(data_point.value::numeric) AS "sum!: ExactSum",
                min(data_point.value::double precision) AS "minimum!",
                max(data_point.value::double precision) AS "maximum!",
                count(*) AS "count!"
            FROM measurement, json_each_text(measurement.value) AS data_point
            WHERE measurement.sensor_identifier = $1
                AND measurement.creation_timestamp >= $2
                AND measurement.creation_timestamp < $3
            GROUP BY 1, 2
            "#,
            sensor,
            from,
            to,
            interval,
        )
        .fetch_all(executor)
        .await?
    };
    // In no order from PostgreSQL (sorting by text there cost more than here).
    let mut aggregates: BTreeMap<String, Vec<Bucket>> = BTreeMap::new();
    for row in rows {
        let average = row.sum.average(row.count).map_err(sqlx::Error::Decode)?;
        aggregates.entry(row.attribute).or_default().push(Bucket {
            bucket_timestamp: Timestamp::from_datetime(row.bucket_timestamp),
            average,
            minimum: row.minimum,
            maximum: row.maximum,
            count: row.count,
        });
    }
    for buckets in aggregates.values_mut() {
        buckets.sort_unstable_by_key(|bucket| bucket.bucket_timestamp);
    }
    Ok(aggregates)
}
