//! Measurement aggregates over any range: per attribute, buckets of any width from a
//! minute to 30 days, aligned to the epoch. Buckets of whole hours are summed from the
//! rollups (`measurement_day` for buckets of whole days, and `measurement_hour`; a
//! trigger keeps both on ingest) and the rows of the partial hours at the range's
//! edges; finer buckets from the rows.

use std::collections::BTreeMap;

use sqlx::PgExecutor;
use sqlx::error::BoxDynError;

use crate::aggregation::AggregationRange;
use crate::arrays::{EpochMicros, Floats, Integers, Moments, Sums};
use crate::domain::Identifier;
use crate::queries::write_json;

/// The statistics of one attribute over one bucket.
#[derive(Debug)]
struct Bucket {
    bucket_timestamp: EpochMicros,
    average: f64,
    minimum: f64,
    maximum: f64,
    count: i64,
}

/// One attribute's buckets as PostgreSQL gives them: parallel arrays, in no order.
struct AttributeRow {
    attribute: String,
    bucket_timestamps: Moments,
    /// The exact sum of each bucket's values: see [`read_measurement_aggregates`].
    sums: Sums,
    minimums: Floats,
    maximums: Floats,
    counts: Integers,
}

/// Per attribute, the buckets of `range` that hold any value, sorted by time, as the
/// JSON object the REST API answers with: attributes in order, each an array of
/// `{bucket_timestamp, average, minimum, maximum, count}`.
///
/// No stored value may make this fail (the contract). Sums are numeric, exact: float8 would
/// overflow past 1.8e308 (1e308 twice in a bucket). Each bucket's sum comes back as it
/// is and is divided here ([`crate::numeric::ExactSum`]): dividing in PostgreSQL cost it about as much
/// as the rest of the query, and its conversion to float8 fails where the average lies
/// below the smallest subnormal, which is 0 here.
///
/// The buckets come as one row an attribute of arrays ([`crate::arrays`]), not a row a
/// bucket: a year of hours is 8,760 buckets an attribute, and each row cost PostgreSQL
/// and sqlx more than an element of an array does.
pub async fn read_measurement_aggregates(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    range: AggregationRange,
) -> Result<String, sqlx::Error> {
    let interval = range.interval_seconds() as f64;
    let (sensor, from, to) = (sensor_identifier.as_uuid(), range.from(), range.to());
    // Each statement gives its buckets (attribute, bucket_timestamp, sum, minimum,
    // maximum, count), which this gathers into one row of arrays an attribute.
    macro_rules! by_attribute {
        ($buckets:literal, $($argument:expr),+ $(,)?) => {
            sqlx::query_as!(
                AttributeRow,
                r#"
                SELECT
                    attribute AS "attribute!",
                    array_agg(bucket_timestamp) AS "bucket_timestamps!: Moments",
                    array_agg(sum) AS "sums!: Sums",
                    array_agg(minimum) AS "minimums!: Floats",
                    array_agg(maximum) AS "maximums!: Floats",
                    array_agg(count) AS "counts!: Integers"
                FROM ("# + $buckets + r#") AS bucket
                GROUP BY attribute
                "#,
                $($argument),+
            )
            .fetch_all(executor)
            .await?
        };
    }
    let rows = if range.is_hourly() {
        // Buckets of whole hours: the daily rollup's days inside the range ($5 to $6),
        // the hourly rollup's other hours inside it ($7 to $5 and $6 to $8), and the
        // rows of the partial hours at its edges; each part a range scan of its key.
        // Where the interval is the rollup's own ($9 for days, $10 for hours), its rows
        // are the buckets, read as they are: summing them in groups of one cost
        // PostgreSQL three times what reading them does.
        let spans = range.rollup_spans();
        let ((hours_start, hours_end), (days_start, days_end)) = (spans.hours, spans.days);
        by_attribute!(
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
                attribute,
                date_bin(make_interval(secs => $4), moment,
                    timestamptz '1970-01-01 00:00:00+00') AS bucket_timestamp,
                sum(sum) AS sum,
                min(minimum) AS minimum,
                max(maximum) AS maximum,
                sum(count)::bigint AS count
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
    } else {
        // Buckets finer than an hour, from the rows.
        by_attribute!(
            r#"
            SELECT
                data_point.key AS attribute,
                date_bin(make_interval(secs => $4), measurement.creation_timestamp,
                    timestamptz '1970-01-01 00:00:00+00') AS bucket_timestamp,
                sum(data_point.value::numeric) AS sum,
                min(data_point.value::double precision) AS minimum,
                max(data_point.value::double precision) AS maximum,
                count(*) AS count
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
    };
    // In no order from PostgreSQL (sorting there cost more than here).
    let attributes = rows
        .into_iter()
        .map(|row| {
            Ok((
                row.attribute,
                buckets(
                    row.bucket_timestamps,
                    row.sums,
                    row.minimums,
                    row.maximums,
                    row.counts,
                )?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>, sqlx::Error>>()?;
    Ok(write_aggregates(&attributes))
}

/// Bytes of JSON a bucket takes, about: the answer's buffer is allocated once.
const BUCKET_JSON_BYTES: usize = 112;

/// The answer's JSON, written directly: for the 2,700 buckets of a 28-day hourly
/// aggregate, serde's path spent about a fifth of the harness's CPU in growing its
/// buffer, escaping the field names and formatting the bucket starts as floats.
fn write_aggregates(attributes: &BTreeMap<String, Vec<Bucket>>) -> String {
    let buckets: usize = attributes.values().map(Vec::len).sum();
    let mut json = Vec::with_capacity(2 + buckets * BUCKET_JSON_BYTES);
    let mut integers = itoa::Buffer::new();
    json.push(b'{');
    for (index, (attribute, buckets)) in attributes.iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        write_json(&mut json, attribute);
        json.extend_from_slice(b":[");
        for (index, bucket) in buckets.iter().enumerate() {
            if index > 0 {
                json.push(b',');
            }
            json.extend_from_slice(br#"{"bucket_timestamp":"#);
            bucket
                .bucket_timestamp
                .write_seconds(&mut json, &mut integers);
            json.extend_from_slice(br#","average":"#);
            write_json(&mut json, &bucket.average);
            json.extend_from_slice(br#","minimum":"#);
            write_json(&mut json, &bucket.minimum);
            json.extend_from_slice(br#","maximum":"#);
            write_json(&mut json, &bucket.maximum);
            json.extend_from_slice(br#","count":"#);
            json.extend_from_slice(integers.format(bucket.count).as_bytes());
            json.push(b'}');
        }
        json.push(b']');
    }
    json.push(b'}');
    String::from_utf8(json).expect("JSON written from strings and numbers is UTF-8")
}

/// One attribute's buckets, sorted by time, from the parallel arrays of its row.
fn buckets(
    Moments(timestamps): Moments,
    Sums(sums): Sums,
    Floats(minimums): Floats,
    Floats(maximums): Floats,
    Integers(counts): Integers,
) -> Result<Vec<Bucket>, sqlx::Error> {
    let length = timestamps.len();
    if [sums.len(), minimums.len(), maximums.len(), counts.len()] != [length; 4] {
        return Err(sqlx::Error::Decode(
            "arrays of a bucket's statistics of unequal lengths".into(),
        ));
    }
    let mut buckets = (0..length)
        .map(|index| {
            Ok(Bucket {
                bucket_timestamp: timestamps[index],
                average: sums[index].average(counts[index])?,
                minimum: minimums[index],
                maximum: maximums[index],
                count: counts[index],
            })
        })
        .collect::<Result<Vec<_>, BoxDynError>>()
        .map_err(sqlx::Error::Decode)?;
    buckets.sort_unstable_by_key(|bucket| bucket.bucket_timestamp);
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_are_written_as_serde_writes_them() {
        let bucket = |seconds: i64, average: f64, count: i64| Bucket {
            bucket_timestamp: EpochMicros(seconds * 1_000_000),
            average,
            minimum: -1e300,
            maximum: 0.1,
            count,
        };
        let attributes = BTreeMap::from([
            (
                "humidity".to_owned(),
                vec![bucket(3_600, 2.5, 2), bucket(7_200, 1e-7, 1)],
            ),
            ("say \"hi\"".to_owned(), vec![bucket(0, -0.0, 3)]),
        ]);
        // The text the derived Serialize of the buckets wrote before: fields in this
        // order, numbers in serde's form (bucket starts as floats).
        let expected = concat!(
            r#"{"humidity":["#,
            r#"{"bucket_timestamp":3600.0,"average":2.5,"minimum":-1e+300,"maximum":0.1,"count":2},"#,
            r#"{"bucket_timestamp":7200.0,"average":1e-7,"minimum":-1e+300,"maximum":0.1,"count":1}],"#,
            r#""say \"hi\"":["#,
            r#"{"bucket_timestamp":0.0,"average":-0.0,"minimum":-1e+300,"maximum":0.1,"count":3}]}"#,
        );
        let written = write_aggregates(&attributes);
        assert_eq!(written, expected);
        let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(parsed["say \"hi\""][0]["count"], 3);
        assert_eq!(write_aggregates(&BTreeMap::new()), "{}");
    }
}
