//! The schema applies cleanly to an empty PostgreSQL, and applying it again changes
//! nothing.

use sensorium_shared::database::MIGRATOR;
use sensorium_shared::domain::Identifier;
use sensorium_shared::testing::{bucket_counts, create_network_and_sensor};
use sqlx::PgPool;

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
             AND table_name !~ '^measurement(_count|_day|_hour|_packed)?_(default|[0-9]{4}_[0-9]{2})$'
         ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn applying_the_migrations_twice_is_a_no_op(pool: PgPool) {
    MIGRATOR.run(&pool).await.unwrap();
    let first = tables(&pool).await;
    assert_eq!(
        first,
        [
            "configuration",
            "configuration_outbox",
            "log",
            "measurement",
            "measurement_bucket",
            "measurement_count",
            "measurement_day",
            "measurement_hour",
            "measurement_packed",
            "network",
            "permission",
            "sensor",
            "session",
            "user"
        ]
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(tables(&pool).await, first);
    let applied_again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied_again, applied);
}

/// One measurement (which the database counts into a bucket) and one log message of
/// `sensor`, in plain SQL: the schema is under test here, not the ingest queries.
const SENSOR_DATA: &str = r#"
    INSERT INTO measurement (sensor_identifier, creation_timestamp, fingerprint, value,
        receipt_timestamp, position)
    VALUES ($1, now(), 0, '{"a": 1}', now(), 0);
    INSERT INTO log (sensor_identifier, creation_timestamp, fingerprint, severity, subject,
        receipt_timestamp, position)
    VALUES ($1, now(), '\x00', 'info', 's', now(), 0);
"#;

fn sensor_data_statements() -> impl Iterator<Item = &'static str> {
    SENSOR_DATA
        .split(';')
        .filter(|text| !text.trim().is_empty())
}

async fn insert_sensor_data(pool: &PgPool, sensor: Identifier) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    for statement in sensor_data_statements() {
        sqlx::query(statement)
            .bind(sensor)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn deleting_a_network_removes_its_sensors_and_their_data(pool: PgPool) {
    let (network, sensor) = create_network_and_sensor(&pool).await;
    let (_, other_sensor) = create_network_and_sensor(&pool).await;
    insert_sensor_data(&pool, sensor).await.unwrap();
    insert_sensor_data(&pool, other_sensor).await.unwrap();
    sqlx::query(
        "INSERT INTO configuration (sensor_identifier, revision, value) VALUES ($1, 0, '{}')",
    )
    .bind(sensor)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM network WHERE identifier = $1")
        .bind(network)
        .execute(&pool)
        .await
        .unwrap();
    let remaining: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM sensor WHERE identifier = $1
         UNION ALL SELECT count(*) FROM configuration WHERE sensor_identifier = $1
         UNION ALL SELECT count(*) FROM measurement WHERE sensor_identifier = $1
         UNION ALL SELECT count(*) FROM log WHERE sensor_identifier = $1
         UNION ALL SELECT count(*) FROM measurement_bucket WHERE sensor_identifier = $1
         UNION ALL SELECT count(*) FROM measurement_hour WHERE sensor_identifier = $1
         UNION ALL SELECT count(*) FROM measurement_day WHERE sensor_identifier = $1",
    )
    .bind(sensor)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(remaining, [0, 0, 0, 0, 0, 0, 0]);
    let kept: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM measurement) + (SELECT count(*) FROM log)
            + (SELECT count(*) FROM measurement_bucket) + (SELECT count(*) FROM measurement_hour)
            + (SELECT count(*) FROM measurement_day)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, 5, "the other sensor's data stays");
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn measurements_and_logs_of_a_missing_sensor_are_refused(pool: PgPool) {
    let missing = Identifier::new();
    // Refused by the sensor check, not by a foreign key of another table (the
    // measurement buckets' would refuse a missing sensor too).
    let refused = |error: sqlx::Error| {
        let database_error = error.as_database_error().expect("a database error");
        assert_eq!(database_error.code().as_deref(), Some("23503"), "{error}");
        assert!(
            database_error
                .message()
                .contains("names a sensor that does not exist"),
            "{error}"
        );
    };
    for statement in sensor_data_statements() {
        refused(
            sqlx::query(statement)
                .bind(missing)
                .execute(&pool)
                .await
                .unwrap_err(),
        );
    }
    // A batch with one good row among them is refused whole, as with a foreign key.
    let (_, sensor) = create_network_and_sensor(&pool).await;
    let error = sqlx::query(
        r#"INSERT INTO measurement (sensor_identifier, creation_timestamp, fingerprint, value,
            receipt_timestamp, position)
        SELECT sensor, now(), 0, '{}', now(), 0 FROM UNNEST($1::uuid[]) AS sensor"#,
    )
    .bind(vec![sensor.as_uuid(), missing.as_uuid()])
    .execute(&pool)
    .await
    .unwrap_err();
    refused(error);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM measurement")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_database_counts_inserted_measurements_into_4_hour_buckets(pool: PgPool) {
    let (_, sensor) = create_network_and_sensor(&pool).await;
    // 1970-01-01T03:59:59Z and 04:00:00Z fall in two buckets; 2023-05-09T15:10:00Z
    // in the one from 12:00. Inserted twice: the copies skipped are not counted.
    let insert = r#"INSERT INTO measurement (sensor_identifier, creation_timestamp,
            fingerprint, value, receipt_timestamp, position)
        SELECT $1, to_timestamp(seconds), 0, '{"a": 1}', now(), 0
        FROM UNNEST(ARRAY[14399, 14400, 14401, 1683645000]::float8[]) AS seconds
        ON CONFLICT DO NOTHING"#;
    for expected_rows in [4, 0] {
        let result = sqlx::query(insert)
            .bind(sensor)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(result.rows_affected(), expected_rows);
    }
    assert_eq!(
        bucket_counts(&pool, sensor).await,
        [(0.0, 1), (14400.0, 2), (1683633600.0, 1)]
    );
}

/// Applies the migrations before `version`.
async fn migrate_up_to(pool: &PgPool, version: i64) {
    let mut before = sqlx::migrate::Migrator::DEFAULT;
    before.migrations = MIGRATOR
        .iter()
        .filter(|migration| migration.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(pool).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn the_outbox_migration_keeps_only_each_sensors_newest_unpublished_configuration(
    pool: PgPool,
) {
    migrate_up_to(&pool, 20261130150000).await;
    let (_, published) = create_network_and_sensor(&pool).await;
    let (_, waiting) = create_network_and_sensor(&pool).await;
    // `published`: revision 0 sent, revision 1 sent. `waiting`: revision 0 sent,
    // revision 1 superseded unsent, revision 2 unsent.
    sqlx::query(
        "INSERT INTO configuration (sensor_identifier, revision, value, publication_timestamp)
         VALUES ($1, 0, '{}', now()), ($1, 1, '{}', now()),
                ($2, 0, '{}', now()), ($2, 1, '{}', NULL), ($2, 2, '{}', NULL)",
    )
    .bind(published)
    .bind(waiting)
    .execute(&pool)
    .await
    .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let outbox: Vec<(uuid::Uuid, i32)> =
        sqlx::query_as("SELECT sensor_identifier, revision FROM configuration_outbox")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(outbox, [(waiting.as_uuid(), 2)]);
}

/// Every row of the 4-hour counts and both rollups, as text, in order.
async fn summaries(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT 'bucket ' || measurement_bucket::text FROM measurement_bucket
         UNION ALL SELECT 'hour ' || measurement_hour::text FROM measurement_hour
         UNION ALL SELECT 'day ' || measurement_day::text FROM measurement_day
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn rebuilding_the_summaries_gives_what_the_trigger_kept(pool: PgPool) {
    insert_measurements_in_four_statements(&pool).await;
    let kept = summaries(&pool).await;
    // 3 + 6 4-hour buckets, and 5 + 1 days of hours and 5 + 1 days of a, b and c.
    assert_eq!(kept.len(), 9 + 6 + 6, "{kept:#?}");
    sqlx::query("SELECT rebuild_measurement_summaries()")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(summaries(&pool).await, kept);
}

/// The hourly rollup, one row an hour before migration 20261206000000 and one a day of
/// hours after it, holds the same statistics once converted as a rebuild from the rows
/// gives.
#[sqlx::test(migrations = false)]
async fn the_hourly_rollup_is_carried_over_into_days_of_hours(pool: PgPool) {
    migrate_up_to(&pool, 20261206000000).await;
    insert_measurements_in_four_statements(&pool).await;
    let hours: i64 = sqlx::query_scalar("SELECT count(*) FROM measurement_hour")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(hours, 5 + 24, "a row per hour and attribute before");
    MIGRATOR.run(&pool).await.unwrap();
    let carried_over = summaries(&pool).await;
    sqlx::query("SELECT rebuild_measurement_summaries()")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(carried_over, summaries(&pool).await);
    let hour_of_b: (Vec<f64>, Vec<i64>) = sqlx::query_as(
        "SELECT minimums, counts FROM measurement_hour
         WHERE day_timestamp = '2026-01-31+00' AND attribute = 'b'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut expected_counts = vec![0; 24];
    expected_counts[23] = 1;
    let mut expected_minimums = vec![0.0; 24];
    expected_minimums[23] = -2.0;
    assert_eq!(hour_of_b, (expected_minimums, expected_counts));
    let day_of_c: (Vec<f64>, Vec<i64>) =
        sqlx::query_as("SELECT sums::float8[], counts FROM measurement_hour WHERE attribute = 'c'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let every_hour = (0..24).map(|hour| f64::from(hour) / 4.0).collect();
    assert_eq!(day_of_c, (every_hour, vec![1; 24]));
}

/// Stores measurements of a new sensor in four statements. Three of two measurements, so
/// that the summary trigger adds to rows it made before: values in two months (two
/// partitions), in shared and separate hours, days and 4-hour buckets. Then one of a
/// value of attribute c in every hour of 2026-01-15: a day without missing hours.
async fn insert_measurements_in_four_statements(pool: &PgPool) {
    let (_, sensor) = create_network_and_sensor(pool).await;
    sqlx::query("SELECT create_measurement_partitions('2026-01-01+00', '2026-02-01+00')")
        .execute(pool)
        .await
        .unwrap();
    for rows in [
        [
            ("2026-01-31 23:10+00", r#"{"a": 1.5, "b": -2}"#),
            ("2026-01-31 23:50+00", r#"{"a": 3}"#),
        ],
        [
            ("2026-01-31 23:59+00", r#"{"a": 1e300}"#),
            ("2026-02-01 00:00+00", r#"{"b": 7}"#),
        ],
        [
            ("2026-02-01 03:59+00", r#"{"a": -0.25}"#),
            ("2026-02-02 12:00+00", r#"{"a": 1e300}"#),
        ],
    ] {
        let (moments, values): (Vec<&str>, Vec<&str>) = rows.into_iter().unzip();
        sqlx::query(
            "INSERT INTO measurement (sensor_identifier, creation_timestamp, fingerprint, value,
                 receipt_timestamp, position)
             SELECT $1, moment::timestamptz, ordinality, value::json, now(), 0
             FROM UNNEST($2::text[], $3::text[]) WITH ORDINALITY AS row (moment, value)",
        )
        .bind(sensor)
        .bind(&moments)
        .bind(&values)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO measurement (sensor_identifier, creation_timestamp, fingerprint, value,
             receipt_timestamp, position)
         SELECT $1, '2026-01-15+00'::timestamptz + hour * interval '1 hour', hour,
             json_build_object('c', hour / 4.0), now(), 0
         FROM generate_series(0, 23) AS hour",
    )
    .bind(sensor)
    .execute(pool)
    .await
    .unwrap();
}

/// The reads of the daily rollup (aggregates of whole days) and of the 4-hour counts
/// (the network overview) find all they need in the keys of the tables' partitions, so
/// PostgreSQL can answer them from the index alone instead of a heap page a row. (The
/// hourly rollup's read is a row a day, its statistics arrays too wide for a key.)
#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn rollup_reads_can_be_answered_from_the_keys_alone(pool: PgPool) {
    let mut connection = pool.acquire().await.unwrap();
    // On tables this small the planner would rather read the heap.
    sqlx::raw_sql("SET enable_seqscan = off; SET enable_bitmapscan = off")
        .execute(&mut *connection)
        .await
        .unwrap();
    for (table, query) in [
        (
            "measurement_day",
            "EXPLAIN (FORMAT JSON)
             SELECT attribute, bucket_timestamp, sum, minimum, maximum, count
             FROM measurement_day
             WHERE sensor_identifier = gen_random_uuid()
                 AND bucket_timestamp >= now() - interval '1 year'
                 AND bucket_timestamp < now()",
        ),
        (
            "measurement_count",
            "EXPLAIN (FORMAT JSON)
             SELECT day_timestamp, count_00h, count_04h, count_08h, count_12h, count_16h,
                 count_20h
             FROM measurement_count
             WHERE sensor_identifier = gen_random_uuid()
                 AND day_timestamp > now() - interval '28 days'",
        ),
    ] {
        let plan: serde_json::Value = sqlx::query_scalar(query)
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        let mut scans = Vec::new();
        relation_scans(&plan[0]["Plan"], &mut scans);
        // A scan of each month's partition the range may touch, and of the default one.
        assert!(scans.len() >= 2, "{plan:#}");
        for (node_type, relation) in scans {
            assert_eq!(node_type, "Index Only Scan", "{plan:#}");
            assert!(relation.starts_with(&format!("{table}_")), "{plan:#}");
        }
    }
}

/// The type and relation of every node of `plan` that reads a relation.
fn relation_scans<'a>(plan: &'a serde_json::Value, scans: &mut Vec<(&'a str, &'a str)>) {
    if let Some(relation) = plan["Relation Name"].as_str() {
        scans.push((plan["Node Type"].as_str().unwrap_or_default(), relation));
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        relation_scans(child, scans);
    }
}
