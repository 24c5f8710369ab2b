//! What the aggregates' queries read: buckets of days come from the daily rollup, and
//! the hourly rollup is read only at the range's edges.

use sensorium_shared::aggregation::AggregationRange;
use sensorium_shared::domain::Timestamp;
use sensorium_shared::queries::aggregates::read_measurement_aggregates;
use sensorium_shared::testing::create_sensor;
use sqlx::PgPool;

const DAY_SECONDS: f64 = 86_400.0;
/// 2026-01-01T00:00:00Z.
const YEAR_START: f64 = 1_767_225_600.0;

/// A year in days reads two rows of the hourly rollup, the days at its edges, not the
/// 365 days between them: the daily rollup holds those.
#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_year_in_days_reads_the_hourly_rollup_at_its_edges_only(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    // A measurement an hour, all year.
    sqlx::query(
        "INSERT INTO measurement (sensor_identifier, creation_timestamp, fingerprint, value,
             receipt_timestamp, position)
         SELECT $1, to_timestamp($2) + hour * interval '1 hour', hour,
             json_build_object('a', hour), now(), 0
         FROM generate_series(0, 365 * 24 - 1) AS hour",
    )
    .bind(sensor)
    .bind(YEAR_START)
    .execute(&pool)
    .await
    .unwrap();
    // From 12:30 on 1 January to 12:30 on 31 December.
    let at = |seconds: f64| Timestamp::parse(seconds).unwrap();
    let range = AggregationRange::parse(
        Some(at(YEAR_START + DAY_SECONDS / 2.0 + 1_800.0)),
        Some(at(YEAR_START + 364.5 * DAY_SECONDS + 1_800.0)),
        Some(86_400),
        at(YEAR_START + 400.0 * DAY_SECONDS),
    )
    .unwrap();
    let mut transaction = pool.begin().await.unwrap();
    // The planner would rather read all of so small a table; the statistics below count
    // this transaction's reads only.
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *transaction)
        .await
        .unwrap();
    let answer = read_measurement_aggregates(&mut *transaction, sensor, range)
        .await
        .unwrap();
    // Rows read by a sequential scan, a bitmap scan and an index scan (counted on the
    // index), in every partition.
    let hourly_rows_read: i64 = sqlx::query_scalar(
        "SELECT ((
                SELECT sum(pg_stat_get_xact_tuples_returned(relid)
                    + pg_stat_get_xact_tuples_fetched(relid))
                FROM pg_partition_tree('measurement_hour')
            ) + (
                SELECT sum(pg_stat_get_xact_tuples_fetched(relid))
                FROM pg_partition_tree('measurement_hour_pkey')
            ))::bigint",
    )
    .fetch_one(&mut *transaction)
    .await
    .unwrap();
    assert_eq!(hourly_rows_read, 2);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let counts: Vec<i64> = answer["a"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket["count"].as_i64().unwrap())
        .collect();
    // 13:00 to 23:00 on the first day, 00:00 to 12:00 on the last, whole days between.
    let mut expected = vec![11];
    expected.extend([24; 363]);
    expected.push(13);
    assert_eq!(counts, expected);
}
