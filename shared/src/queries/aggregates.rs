//! Measurement aggregates over any range: per attribute, buckets of any width from a
//! minute to 30 days, aligned to the epoch. Buckets of whole hours are summed from the
//! rollups (`measurement_day` for buckets of whole days, and `measurement_hour`, a row
//! a day of 24 hours; a trigger keeps both on ingest) and the measurements of the partial
//! hours at the range's edges; finer buckets from the measurements. A range that may
//! reach a packed month (one that starts before [`never_packed_since`]) reads the
//! measurements with `measurements_in`, whether stored as rows or packed; any other, the
//! rows alone, by statements that do not name the packed days, as before months were
//! packed: each execution starts up every partition its statement names.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use sqlx::PgExecutor;

use crate::aggregation::AggregationRange;
use crate::arrays::{EpochMicros, Floats, Integers, Moments, Sums};
use crate::domain::Identifier;
use crate::queries::partitions::never_packed_since;
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
    let reaches_packed = from < never_packed_since(Utc::now());
    // Each statement gives its buckets (attribute, bucket_timestamp, sum, minimum,
    // maximum, count), which this gathers into one row of arrays an attribute. The
    // statement may come in parts, literals joined by `+`.
    macro_rules! by_attribute {
        ($buckets:literal $(+ $more:literal)*, $($argument:expr),+ $(,)?) => {
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
                FROM ("# + $buckets $(+ $more)* + r#") AS bucket
                GROUP BY attribute
                "#,
                $($argument),+
            )
            .fetch_all(executor)
            .await?
        };
    }
    let rows = if range.is_hourly() {
        let spans = range.rollup_spans();
        if spans.hour_rows_are_buckets {
            return read_hourly_buckets(executor, sensor_identifier, range, spans.hours)
                .await
                .map(|attributes| write_aggregates(&attributes));
        }
        // Buckets of whole hours, wider than one: the daily rollup's days inside the
        // range ($5 to $6), the hourly rollup's other hours inside it ($7 to $5 and $6
        // to $8), and the rows of the partial hours at its edges; each part a range
        // scan of its key. Where the buckets are days ($9), the daily rollup's rows are
        // the buckets, read as they are: summing them in groups of one cost PostgreSQL
        // three times what reading them does.
        let ((hours_start, hours_end), (days_start, days_end)) = (spans.hours, spans.days);
        // The measurements of the partial hours, `$2` to `$7` and `$8` to `$3`.
        macro_rules! whole_hours {
            ($measurements:tt) => {
                by_attribute!(
                    r#"
                    WITH part (attribute, moment, minimum, maximum, count, sum) AS (
                        SELECT attribute, bucket_timestamp, minimum, maximum, count, sum
                        FROM measurement_day
                        WHERE NOT $9 AND sensor_identifier = $1
                            AND bucket_timestamp >= $5 AND bucket_timestamp < $6
                        UNION ALL
                        SELECT attribute, moment, minimum, maximum, count, sum
                        FROM (
                            SELECT hours.attribute,
                                hours.day_timestamp + (hour.position - 1) * interval '1 hour' AS moment,
                                hour.minimum, hour.maximum, hour.count, hour.sum
                            FROM measurement_hour AS hours,
                                unnest(hours.minimums, hours.maximums, hours.counts, hours.sums)
                                    WITH ORDINALITY AS hour (minimum, maximum, count, sum, position)
                            WHERE hours.sensor_identifier = $1
                                -- The days that overlap either span of hours.
                                AND (hours.day_timestamp > $7::timestamptz - interval '1 day'
                                        AND hours.day_timestamp < $5
                                    OR hours.day_timestamp > $6::timestamptz - interval '1 day'
                                        AND hours.day_timestamp < $8)
                                AND hour.count > 0
                        ) AS hour
                        WHERE moment >= $7 AND moment < $5 OR moment >= $6 AND moment < $8
                        UNION ALL
                        SELECT data_point.key, measurement.creation_timestamp,
                            data_point.value::double precision, data_point.value::double precision,
                            1, data_point.value::numeric
                        FROM "# + $measurements + r#" AS measurement,
                            json_each_text(measurement.value) AS data_point
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
                )
            };
        }
        if reaches_packed {
            whole_hours!(
                "(SELECT * FROM measurements_in($1, $2, $7)
                UNION ALL SELECT * FROM measurements_in($1, $8, $3))"
            )
        } else {
            whole_hours!(
                "(SELECT * FROM measurement WHERE sensor_identifier = $1
                AND (creation_timestamp >= $2 AND creation_timestamp < $7
                    OR creation_timestamp >= $8 AND creation_timestamp < $3))"
            )
        }
    } else {
        // Buckets finer than an hour, from the measurements from `$2` to `$3`.
        macro_rules! finer_than_hours {
            ($measurements:tt) => {
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
                    FROM "# + $measurements + r#" AS measurement,
                        json_each_text(measurement.value) AS data_point
                    GROUP BY 1, 2
                    "#,
                    sensor,
                    from,
                    to,
                    interval,
                )
            };
        }
        if reaches_packed {
            finer_than_hours!("measurements_in($1, $2, $3)")
        } else {
            finer_than_hours!(
                "(SELECT * FROM measurement WHERE sensor_identifier = $1
                AND creation_timestamp >= $2 AND creation_timestamp < $3)"
            )
        }
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

/// Microseconds in an hour.
const HOUR_MICROS: i64 = 3_600_000_000;

/// One attribute's consecutive hours from `start`, as PostgreSQL gives them: parallel
/// arrays, element `i` the hour that starts `i` hours after `start`.
struct HoursRow {
    attribute: String,
    start: DateTime<Utc>,
    /// Whether the row is a day of the hourly rollup (24 hours, of which those outside
    /// the range's whole hours are not buckets of the answer), rather than one partial
    /// hour at the range's edge, summed from the rows.
    rollup_day: bool,
    sums: Sums,
    minimums: Floats,
    maximums: Floats,
    counts: Integers,
}

/// Per attribute, the buckets of `range`, whose interval is one hour, that hold any
/// value: the hourly rollup's days that overlap the range's whole hours (`whole_hours`,
/// from [`AggregationRange::rollup_spans`]), their arrays sent as they are (a row an
/// hour gathered into arrays, as before, ran at less than half the rate in pgbench), and
/// the partial hours at its edges from the rows.
async fn read_hourly_buckets(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    range: AggregationRange,
    whole_hours: (DateTime<Utc>, DateTime<Utc>),
) -> Result<BTreeMap<String, Vec<Bucket>>, sqlx::Error> {
    let (hours_start, hours_end) = whole_hours;
    let reaches_packed = range.from() < never_packed_since(Utc::now());
    // The measurements of the partial hours, `$2` to `$4` and `$5` to `$3`.
    macro_rules! hours {
        ($measurements:tt) => {
            sqlx::query_as!(
                HoursRow,
                r#"
                SELECT
                    attribute AS "attribute!",
                    day_timestamp AS "start!",
                    true AS "rollup_day!",
                    sums AS "sums!: Sums",
                    minimums AS "minimums!: Floats",
                    maximums AS "maximums!: Floats",
                    counts AS "counts!: Integers"
                FROM measurement_hour
                WHERE sensor_identifier = $1
                    AND day_timestamp > $4::timestamptz - interval '1 day' AND day_timestamp < $5
                UNION ALL
                SELECT
                    data_point.key,
                    date_bin('1 hour', measurement.creation_timestamp,
                        timestamptz '1970-01-01 00:00:00+00'),
                    false,
                    ARRAY[sum(data_point.value::numeric)],
                    ARRAY[min(data_point.value::double precision)],
                    ARRAY[max(data_point.value::double precision)],
                    ARRAY[count(*)]
                FROM "# + $measurements + r#" AS measurement,
                    json_each_text(measurement.value) AS data_point
                GROUP BY 1, 2
                "#,
                sensor_identifier.as_uuid(),
                range.from(),
                range.to(),
                hours_start,
                hours_end,
            )
            .fetch_all(executor)
            .await?
        };
    }
    let rows = if reaches_packed {
        hours!(
            "(SELECT * FROM measurements_in($1, $2, $4)
            UNION ALL SELECT * FROM measurements_in($1, $5, $3))"
        )
    } else {
        hours!(
            "(SELECT * FROM measurement WHERE sensor_identifier = $1
            AND (creation_timestamp >= $2 AND creation_timestamp < $4
                OR creation_timestamp >= $5 AND creation_timestamp < $3))"
        )
    };
    let whole_hours = hours_start.timestamp_micros()..hours_end.timestamp_micros();
    let mut attributes = BTreeMap::<String, Vec<Bucket>>::new();
    for row in rows {
        let start = row.start.timestamp_micros();
        let length = row.counts.0.len();
        let statistics = Statistics::of(length, row.sums, row.minimums, row.maximums, row.counts)?;
        let buckets = statistics.buckets(|index| {
            let moment = start + index as i64 * HOUR_MICROS;
            let in_range = !row.rollup_day || whole_hours.contains(&moment);
            (statistics.counts.0[index] > 0 && in_range).then_some(EpochMicros(moment))
        })?;
        if !buckets.is_empty() {
            attributes.entry(row.attribute).or_default().extend(buckets);
        }
    }
    for buckets in attributes.values_mut() {
        buckets.sort_unstable_by_key(|bucket| bucket.bucket_timestamp);
    }
    Ok(attributes)
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
    sums: Sums,
    minimums: Floats,
    maximums: Floats,
    counts: Integers,
) -> Result<Vec<Bucket>, sqlx::Error> {
    let statistics = Statistics::of(timestamps.len(), sums, minimums, maximums, counts)?;
    let mut buckets = statistics.buckets(|index| Some(timestamps[index]))?;
    buckets.sort_unstable_by_key(|bucket| bucket.bucket_timestamp);
    Ok(buckets)
}

/// Parallel arrays of buckets' statistics, of equal lengths.
struct Statistics {
    sums: Sums,
    minimums: Floats,
    maximums: Floats,
    counts: Integers,
}

impl Statistics {
    fn of(
        length: usize,
        sums: Sums,
        minimums: Floats,
        maximums: Floats,
        counts: Integers,
    ) -> Result<Self, sqlx::Error> {
        if [
            sums.0.len(),
            minimums.0.len(),
            maximums.0.len(),
            counts.0.len(),
        ] != [length; 4]
        {
            return Err(sqlx::Error::Decode(
                "arrays of a bucket's statistics of unequal lengths".into(),
            ));
        }
        Ok(Self {
            sums,
            minimums,
            maximums,
            counts,
        })
    }

    /// The buckets of the elements that `start` gives a start to, in the arrays' order.
    fn buckets(
        &self,
        start: impl Fn(usize) -> Option<EpochMicros>,
    ) -> Result<Vec<Bucket>, sqlx::Error> {
        (0..self.counts.0.len())
            .filter_map(|index| {
                let bucket_timestamp = start(index)?;
                let count = self.counts.0[index];
                let bucket = self.sums.0[index].average(count).map(|average| Bucket {
                    bucket_timestamp,
                    average,
                    minimum: self.minimums.0[index],
                    maximum: self.maximums.0[index],
                    count,
                });
                Some(bucket.map_err(sqlx::Error::Decode))
            })
            .collect()
    }
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
