//! The measurement retention job: creates the coming months' partitions, and drops whole
//! months (with their hourly and daily rollups and 4-hour counts) only when a retention
//! is set.

use std::collections::BTreeMap;

use chrono::{Datelike, TimeDelta, Utc};
use sensorium_functions::jobs::retain_measurements;
use sensorium_shared::domain::{Attribute, Identifier, Timestamp};
use sensorium_shared::queries::measurements::{NewMeasurement, create_measurements};
use sensorium_shared::testing::create_sensor;
use sqlx::PgPool;

const DAY: i64 = 86_400;

fn measurement(sensor: Identifier, days_ago: i64) -> NewMeasurement {
    let now = Utc::now().timestamp();
    NewMeasurement {
        sensor_identifier: sensor,
        timestamp: Timestamp::parse((now - days_ago * DAY) as f64).unwrap(),
        revision: None,
        value: BTreeMap::from([(Attribute::parse("a").unwrap(), days_ago as f64)]),
        receipt_timestamp: Timestamp::now(),
        position: 0,
    }
}

async fn partitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT child.relname::text FROM pg_inherits
         JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
         WHERE pg_inherits.inhparent = 'measurement'::regclass ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The values of attribute `a` stored, and those of the hourly and the daily rollup,
/// ascending.
async fn stored_values(pool: &PgPool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let values = |query| async move { sqlx::query_scalar(query).fetch_all(pool).await.unwrap() };
    (
        values("SELECT (value->>'a')::float8 FROM measurement ORDER BY 1").await,
        values("SELECT minimum FROM measurement_hour ORDER BY 1").await,
        values("SELECT minimum FROM measurement_day ORDER BY 1").await,
    )
}

fn partition_of(days_ago: i64) -> String {
    let moment = Utc::now() - TimeDelta::days(days_ago);
    format!("measurement_{:04}_{:02}", moment.year(), moment.month())
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn without_a_retention_partitions_are_created_ahead_and_nothing_is_dropped(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let old = [400, 200, 0];
    let rows: Vec<_> = old.iter().map(|days| measurement(sensor, *days)).collect();
    create_measurements(&pool, &rows).await.unwrap();
    let (created, dropped) = retain_measurements::run(&pool, None).await.unwrap();
    assert_eq!(dropped, 0);
    // The migration made the current month and three ahead: at most one more now.
    assert!(created <= 1, "{created}");
    let names = partitions(&pool).await;
    assert!(names.contains(&partition_of(-90)), "{names:?}");
    assert_eq!(stored_values(&pool).await.0, [0.0, 200.0, 400.0]);
    // Running again creates nothing.
    assert_eq!(retain_measurements::run(&pool, None).await.unwrap(), (0, 0));
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_retention_drops_the_months_wholly_before_it_with_their_rollups(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    // Months that hold data get partitions of their own; 400 days ago is older than the
    // migration's partitions, so it waits in the default partition until one exists.
    sqlx::query("SELECT create_measurement_partitions(now() - interval '400 days', now())")
        .execute(&pool)
        .await
        .unwrap();
    let rows: Vec<_> = [400, 200, 45, 0]
        .iter()
        .map(|days| measurement(sensor, *days))
        .collect();
    create_measurements(&pool, &rows).await.unwrap();
    // A row of the cutoff's month, before the cutoff: its month stays, and so must its
    // counts and rollups.
    let cutoff_month_start = (Utc::now() - TimeDelta::days(100))
        .date_naive()
        .with_day(1)
        .unwrap()
        .and_hms_opt(0, 30, 0)
        .unwrap()
        .and_utc();
    let mut early = measurement(sensor, 0);
    early.timestamp = Timestamp::from_datetime(cutoff_month_start);
    early.value = BTreeMap::from([(Attribute::parse("a").unwrap(), 100.0)]);
    create_measurements(&pool, &[early]).await.unwrap();
    // A stray row in the default partition: a clock years behind.
    let mut stray = measurement(sensor, 0);
    stray.timestamp = Timestamp::parse(86_400.0).unwrap();
    stray.value = BTreeMap::from([(Attribute::parse("a").unwrap(), 9999.0)]);
    create_measurements(&pool, &[stray]).await.unwrap();

    let (_, dropped) = retain_measurements::run(&pool, Some(TimeDelta::days(100)))
        .await
        .unwrap();
    // Every month from 400 days ago through the one before the month 100 days ago.
    assert!(dropped >= 9, "{dropped}");
    let names = partitions(&pool).await;
    assert!(!names.contains(&partition_of(200)), "{names:?}");
    assert!(
        names.contains(&partition_of(100)),
        "the month of the cutoff stays: {names:?}"
    );
    assert!(names.contains(&partition_of(45)), "{names:?}");
    let kept = vec![0.0, 45.0, 100.0];
    assert_eq!(
        stored_values(&pool).await,
        (kept.clone(), kept.clone(), kept)
    );
    let counts: i64 =
        sqlx::query_scalar("SELECT sum(measurement_count)::bigint FROM measurement_bucket")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(counts, 3);
}
