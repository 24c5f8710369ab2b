//! The measurement retention job: creates the coming months' partitions, and drops whole
//! months (with the partitions of their hourly and daily rollups and 4-hour counts) only
//! when a retention is set; and packs closed months.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use sensorium_functions::jobs::retain_measurements::{self, CLOSED_AFTER, Upkeep};
use sensorium_shared::domain::{Attribute, Identifier, Timestamp};
use sensorium_shared::queries::measurements::{NewMeasurement, create_measurements};
use sensorium_shared::testing::create_sensor;
use sqlx::{AssertSqlSafe, PgPool};

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

/// The partitions of table `parent` (`measurement` or one of its summaries), by name.
async fn partitions(pool: &PgPool, parent: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT child.relname::text FROM pg_inherits
         JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
         WHERE pg_inherits.inhparent = $1::regclass ORDER BY 1",
    )
    .bind(parent)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The values of attribute `a` stored (as rows or packed), and those of the hourly and
/// the daily rollup, ascending.
async fn stored_values(pool: &PgPool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let values = |query| async move { sqlx::query_scalar(query).fetch_all(pool).await.unwrap() };
    (
        values(
            "SELECT (stored.value->>'a')::float8
             FROM sensor, measurements_in(sensor.identifier, '1970-01-01', '2100-01-01') AS stored
             ORDER BY 1",
        )
        .await,
        values(
            "SELECT hour.minimum
             FROM measurement_hour, unnest(minimums, counts) AS hour (minimum, count)
             WHERE hour.count > 0 ORDER BY 1",
        )
        .await,
        values("SELECT minimum FROM measurement_day ORDER BY 1").await,
    )
}

/// When the month of partition `measurement_YYYY_MM` ends.
fn month_end(partition: &str) -> DateTime<Utc> {
    let (year, month) = partition["measurement_".len()..].split_once('_').unwrap();
    let first = NaiveDate::from_ymd_opt(year.parse().unwrap(), month.parse().unwrap(), 1).unwrap();
    (first + Months::new(1)).and_time(NaiveTime::MIN).and_utc()
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
    let upkeep = retain_measurements::run(&pool, None).await.unwrap();
    assert_eq!(upkeep.dropped, 0);
    // The migration made the current month and three ahead: at most one more now.
    assert!(upkeep.created <= 1, "{upkeep:?}");
    let names = partitions(&pool, "measurement").await;
    assert!(names.contains(&partition_of(-90)), "{names:?}");
    assert_eq!(stored_values(&pool).await.0, [0.0, 200.0, 400.0]);
    // Running again creates nothing.
    assert_eq!(
        retain_measurements::run(&pool, None).await.unwrap(),
        Upkeep::default()
    );
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

    let dropped = retain_measurements::run(&pool, Some(TimeDelta::days(100)))
        .await
        .unwrap()
        .dropped;
    // Every month from 400 days ago through the one before the month 100 days ago.
    assert!(dropped >= 9, "{dropped}");
    let names = partitions(&pool, "measurement").await;
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

/// The summaries of the measurements, each partitioned by month as they are.
const SUMMARIES: [&str; 3] = ["measurement_count", "measurement_day", "measurement_hour"];

/// Rows deleted from the summaries' month partitions (not their default partitions), as
/// `connection`'s statistics of its transaction count them.
async fn summary_rows_deleted(connection: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(pg_stat_get_xact_tuples_deleted(tree.relid)), 0)::bigint
         FROM unnest(ARRAY['measurement_count', 'measurement_day', 'measurement_hour']) AS parent,
             pg_partition_tree(parent::regclass) AS tree
         WHERE tree.isleaf AND tree.relid::text !~ '_default$'",
    )
    .fetch_one(connection)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_retention_drops_the_summaries_of_a_month_whole_not_row_by_row(pool: PgPool) {
    let sensors = [create_sensor(&pool).await, create_sensor(&pool).await];
    sqlx::query("SELECT create_measurement_partitions(now() - interval '200 days', now())")
        .execute(&pool)
        .await
        .unwrap();
    insert_interleaved(&pool, &sensors, 150, 300).await;
    insert_interleaved(&pool, &sensors, 0, 10).await;
    let old_month = &partition_of(150)["measurement_".len()..];
    for summary in SUMMARIES {
        let names = partitions(&pool, summary).await;
        assert!(
            names.contains(&format!("{summary}_{old_month}")),
            "{names:?}"
        );
    }

    let mut transaction = pool.begin().await.unwrap();
    // Counts of earlier transactions that this connection has not reported yet stay in
    // the sum until this one ends: the drop's deletions are the difference.
    let deleted_before = summary_rows_deleted(&mut transaction).await;
    let dropped: i32 =
        sqlx::query_scalar("SELECT drop_measurement_partitions(now() - interval '100 days')")
            .fetch_one(&mut *transaction)
            .await
            .unwrap();
    assert!(dropped >= 3, "{dropped}");
    assert_eq!(summary_rows_deleted(&mut transaction).await, deleted_before);
    transaction.commit().await.unwrap();

    for summary in SUMMARIES {
        let names = partitions(&pool, summary).await;
        assert!(
            !names.contains(&format!("{summary}_{old_month}")),
            "{names:?}"
        );
    }
    // The current month's summaries stay whole: 10 measurements of each sensor.
    let kept: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT sum(measurement_count)::bigint FROM measurement_bucket),
             (SELECT sum(count)::bigint FROM measurement_day),
             (SELECT sum(hour.count)::bigint FROM measurement_hour, unnest(counts) AS hour (count))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, (20, 20, 20));
}

/// A measurement of a month without partitions waits with its summaries in the default
/// partitions; creating the month's partitions moves them all into it, and the hourly
/// rollup's month keeps room on its pages for ingest's updates.
#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_month_moves_its_rows_and_summaries_out_of_the_default_partitions(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    // Older than the migration's partitions.
    let early = measurement(sensor, 200);
    create_measurements(&pool, &[early]).await.unwrap();
    let in_defaults = || async {
        let mut counts = Vec::new();
        for parent in ["measurement"].into_iter().chain(SUMMARIES) {
            let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM {parent}_default"
            )))
            .fetch_one(&pool)
            .await
            .unwrap();
            counts.push(count);
        }
        counts
    };
    assert_eq!(in_defaults().await, [1, 1, 1, 1]);

    sqlx::query("SELECT create_measurement_partitions(now() - interval '200 days', now())")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(in_defaults().await, [0, 0, 0, 0]);
    let month = &partition_of(200)["measurement_".len()..];
    for parent in ["measurement"].into_iter().chain(SUMMARIES) {
        let names = partitions(&pool, parent).await;
        assert!(names.contains(&format!("{parent}_{month}")), "{names:?}");
    }
    assert_eq!(
        stored_values(&pool).await,
        (vec![200.0], vec![200.0], vec![200.0])
    );
    let hourly_options: Option<Vec<String>> =
        sqlx::query_scalar("SELECT reloptions::text[] FROM pg_class WHERE relname = $1")
            .bind(format!("measurement_hour_{month}"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(hourly_options, Some(vec!["fillfactor=75".to_owned()]));
}

/// Inserts `steps` measurements of each of `sensors` into the month of `days_ago`, a
/// minute apart, every sensor's in turn as ingest writes them; then updates the
/// partition's statistics, from which the job reads its rows.
async fn insert_interleaved(pool: &PgPool, sensors: &[Identifier], days_ago: i64, steps: i64) {
    let identifiers: Vec<_> = sensors.iter().map(|sensor| sensor.as_uuid()).collect();
    sqlx::query(
        "INSERT INTO measurement (sensor_identifier, creation_timestamp, receipt_timestamp,
             fingerprint, revision, position, value)
         SELECT sensor, date_trunc('month', now() - make_interval(days => $2))
                 + make_interval(mins => step::integer, secs => random()),
             now(), (random() * 1e15)::bigint, NULL, 0, '{\"a\": 1}'
         FROM generate_series(1, $3) AS step, unnest($1::uuid[]) AS sensor
         ORDER BY step, sensor",
    )
    .bind(&identifiers)
    .bind(days_ago as i32)
    .bind(steps)
    .execute(pool)
    .await
    .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {}", partition_of(days_ago))))
        .execute(pool)
        .await
        .unwrap();
}

/// The bytes `table` takes on disk with its indexes and TOAST.
async fn size_of(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The rows of `table`.
async fn count_rows(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Every measurement, stored as a row or packed, in the key's order.
async fn every_measurement(pool: &PgPool) -> Vec<(sqlx::types::Uuid, f64, i64, String)> {
    sqlx::query_as(
        "SELECT sensor.identifier, extract(epoch FROM stored.creation_timestamp)::float8,
             stored.fingerprint, stored.value::text
         FROM sensor, measurements_in(sensor.identifier, '1970-01-01', '2100-01-01') AS stored
         ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn closed_months_are_packed_a_sensors_day_to_a_row_and_late_rows_on_the_next_run(
    pool: PgPool,
) {
    let mut sensors = Vec::new();
    for _ in 0..20 {
        sensors.push(create_sensor(&pool).await);
    }
    sqlx::query("SELECT create_measurement_partitions(now() - interval '100 days', now())")
        .execute(&pool)
        .await
        .unwrap();
    // A closed month, and the current one, which stays open.
    insert_interleaved(&pool, &sensors, 60, 500).await;
    insert_interleaved(&pool, &sensors, 0, 10).await;
    // A measurement stored before the packing, delivered again after it.
    let redelivered = measurement(sensors[0], 60);
    create_measurements(&pool, std::slice::from_ref(&redelivered))
        .await
        .unwrap();
    let closed = partition_of(60);
    let packed_partition = closed.replace("measurement_", "measurement_packed_");
    let size_before = size_of(&pool, &closed).await;
    let measurements = every_measurement(&pool).await;
    let summaries = stored_values(&pool).await;

    let upkeep = retain_measurements::run(&pool, None).await.unwrap();
    assert!(upkeep.packed >= 1, "{upkeep:?}");
    assert_eq!(count_rows(&pool, &closed).await, 0);
    // The current month is not closed: its 200 rows stay rows.
    assert_eq!(count_rows(&pool, &partition_of(0)).await, 200);
    // Only months that ended CLOSED_AFTER ago or earlier.
    let packed_months = partitions(&pool, "measurement_packed").await;
    assert!(
        packed_months
            .iter()
            .filter(|name| *name != "measurement_packed_default")
            .all(|name| month_end(&name.replace("packed_", "")) <= Utc::now() - CLOSED_AFTER),
        "{packed_months:?}"
    );
    assert!(
        packed_months.contains(&packed_partition),
        "{packed_months:?}"
    );
    // Every measurement is still there, and a packed month takes less than a third of
    // the space its rows and key took.
    assert_eq!(every_measurement(&pool).await, measurements);
    let size_after = size_of(&pool, &closed).await + size_of(&pool, &packed_partition).await;
    assert!(
        size_after * 3 < size_before,
        "the month took {size_before} bytes as rows and {size_after} packed"
    );

    // A packed measurement delivered again is skipped; a new one is stored as a row,
    // counted once, and packed by the next run.
    create_measurements(&pool, &[redelivered]).await.unwrap();
    assert_eq!(every_measurement(&pool).await, measurements);
    assert_eq!(stored_values(&pool).await.1, summaries.1);
    let mut late = measurement(sensors[0], 60);
    late.value = BTreeMap::from([(Attribute::parse("a").unwrap(), -1.0)]);
    create_measurements(&pool, std::slice::from_ref(&late))
        .await
        .unwrap();
    create_measurements(&pool, &[late]).await.unwrap();
    assert_eq!(count_rows(&pool, &closed).await, 1);
    assert_eq!(every_measurement(&pool).await.len(), measurements.len() + 1);
    assert!(!summaries.1.contains(&-1.0));
    assert!(stored_values(&pool).await.1.contains(&-1.0));
    let upkeep = retain_measurements::run(&pool, None).await.unwrap();
    assert_eq!(upkeep.packed, 1, "{upkeep:?}");
    assert_eq!(count_rows(&pool, &closed).await, 0);
    assert_eq!(every_measurement(&pool).await.len(), measurements.len() + 1);
    // Nothing left to pack.
    let upkeep = retain_measurements::run(&pool, None).await.unwrap();
    assert_eq!(upkeep.packed, 0, "{upkeep:?}");

    // Retention drops the packed days of the months it drops.
    retain_measurements::run(&pool, Some(TimeDelta::days(1)))
        .await
        .unwrap();
    assert_eq!(
        partitions(&pool, "measurement_packed").await,
        ["measurement_packed_default"]
    );
    assert_eq!(count_rows(&pool, "measurement_packed").await, 0);
}
