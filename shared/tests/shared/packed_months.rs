//! Closed months packed a sensor's day to a row: every read of measurements (pages both
//! ways and from a cursor, runs of equal timestamps, exports, aggregates at every
//! resolution) answers the same before and after a month is packed, measurements that
//! arrive late in a packed month are stored once and read in their places, and the next
//! packing merges them.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, Utc};
use futures_util::TryStreamExt;
use sensorium_shared::aggregation::AggregationRange;
use sensorium_shared::domain::{Attribute, Identifier, Revision, Timestamp};
use sensorium_shared::pages::{Direction, PageRequest};
use sensorium_shared::queries::aggregates::read_measurement_aggregates;
use sensorium_shared::queries::export::{
    ExportRange, reset_after_export, set_up_export, stream_measurements,
};
use sensorium_shared::queries::measurements::{
    NewMeasurement, create_measurements, read_count_days, read_measurement_page,
};
use sensorium_shared::queries::partitions::{never_packed_since, pack_measurement_month};
use sensorium_shared::testing::create_sensor;
use sqlx::{AssertSqlSafe, PgPool};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn timestamp(moment: DateTime<Utc>) -> Timestamp {
    Timestamp::from_datetime(moment)
}

fn measurement(sensor: Identifier, moment: DateTime<Utc>, index: i64) -> NewMeasurement {
    NewMeasurement {
        sensor_identifier: sensor,
        timestamp: timestamp(moment),
        revision: (index % 3 != 0).then(|| Revision::parse(index % 5).unwrap()),
        value: BTreeMap::from([
            (Attribute::parse("a").unwrap(), index as f64),
            (Attribute::parse("b").unwrap(), index as f64 / 8.0),
        ]),
        receipt_timestamp: timestamp(moment + TimeDelta::seconds(3)),
        position: (index % 4) as i32,
    }
}

/// Two sensors' measurements in June 2026, every 17 minutes for 3.5 days, with a run of
/// 70 at one instant (more than a page), and a few in July.
async fn store_measurements(pool: &PgPool, sensors: [Identifier; 2]) {
    sqlx::query("SELECT create_measurement_partitions('2026-05-01', '2026-08-01')")
        .execute(pool)
        .await
        .unwrap();
    let start = at("2026-06-10T00:00:00Z");
    let mut batch = Vec::new();
    for index in 0..300 {
        for sensor in sensors {
            batch.push(measurement(
                sensor,
                start + TimeDelta::minutes(17 * index),
                index,
            ));
        }
    }
    for index in 0..70 {
        batch.push(measurement(
            sensors[0],
            at("2026-06-11T12:00:00Z"),
            1_000 + index,
        ));
    }
    for index in 0..5 {
        batch.push(measurement(
            sensors[0],
            at("2026-07-01T00:30:00Z"),
            2_000 + index,
        ));
    }
    for chunk in batch.chunks(100) {
        create_measurements(pool, chunk).await.unwrap();
    }
}

/// The last creation timestamp of a page (the REST API's JSON array).
fn last_timestamp(page: &str) -> Option<Timestamp> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(page).unwrap();
    let last = rows.last()?;
    Some(Timestamp::parse(last["creation_timestamp"].as_f64().unwrap()).unwrap())
}

/// Every page of the sensor's measurements in `direction`, walked by cursor.
async fn walk_pages(pool: &PgPool, sensor: Identifier, direction: Direction) -> Vec<String> {
    let mut connection = pool.acquire().await.unwrap();
    let count_days = read_count_days(&mut connection, sensor).await.unwrap();
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = read_measurement_page(
            &mut connection,
            sensor,
            PageRequest { direction, cursor },
            count_days,
        )
        .await
        .unwrap();
        let Some(last) = last_timestamp(&page) else {
            break;
        };
        // Pages walk away from where they start: the next cursor is the first element
        // of a previous page (ascending order), the last of a next one.
        cursor = Some(match direction {
            Direction::Next => last,
            Direction::Previous => {
                let rows: Vec<serde_json::Value> = serde_json::from_str(&page).unwrap();
                Timestamp::parse(rows[0]["creation_timestamp"].as_f64().unwrap()).unwrap()
            }
        });
        pages.push(page);
        assert!(pages.len() < 100, "the pages do not end");
    }
    pages
}

async fn export(pool: &PgPool, sensor: Identifier, range: ExportRange) -> Vec<String> {
    let mut connection = pool.acquire().await.unwrap();
    set_up_export(&mut connection, "60s").await.unwrap();
    let rows: Vec<_> = stream_measurements(&mut connection, sensor, range)
        .try_collect()
        .await
        .unwrap();
    reset_after_export(&mut connection).await.unwrap();
    // Each row led by its timestamp, of one width.
    rows.iter()
        .map(|row| format!("{:017.6} {row:?}", row.creation_timestamp.as_seconds()))
        .collect()
}

/// Whether exported rows (see [`export`]) are in time order.
fn in_time_order(rows: &[String]) -> bool {
    rows.windows(2).all(|pair| pair[0][..17] <= pair[1][..17])
}

async fn aggregate(
    pool: &PgPool,
    sensor: Identifier,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: i64,
) -> String {
    let range = AggregationRange::parse(
        Some(timestamp(from)),
        Some(timestamp(to)),
        Some(interval),
        Timestamp::now(),
    )
    .unwrap();
    read_measurement_aggregates(pool, sensor, range)
        .await
        .unwrap()
}

/// Everything the API reads of a sensor's measurements.
#[derive(Debug, PartialEq)]
struct Reads {
    next_pages: Vec<String>,
    previous_pages: Vec<String>,
    page_inside_the_run: String,
    export: Vec<String>,
    export_from_inside_a_day: Vec<String>,
    ten_minutes: String,
    hours_with_partial_edges: String,
    days: String,
}

async fn reads(pool: &PgPool, sensor: Identifier) -> Reads {
    let mut connection = pool.acquire().await.unwrap();
    let count_days = read_count_days(&mut connection, sensor).await.unwrap();
    let page_inside_the_run = read_measurement_page(
        &mut connection,
        sensor,
        PageRequest {
            direction: Direction::Next,
            cursor: Some(timestamp(at("2026-06-11T11:59:00Z"))),
        },
        count_days,
    )
    .await
    .unwrap();
    drop(connection);
    Reads {
        next_pages: walk_pages(pool, sensor, Direction::Next).await,
        previous_pages: walk_pages(pool, sensor, Direction::Previous).await,
        page_inside_the_run,
        export: export(pool, sensor, ExportRange::default()).await,
        export_from_inside_a_day: export(
            pool,
            sensor,
            ExportRange {
                from: Some(timestamp(at("2026-06-11T07:08:00Z"))),
                to: Some(timestamp(at("2026-07-01T00:31:00Z"))),
            },
        )
        .await,
        ten_minutes: aggregate(
            pool,
            sensor,
            at("2026-06-10T05:00:00Z"),
            at("2026-06-12T03:00:00Z"),
            600,
        )
        .await,
        hours_with_partial_edges: aggregate(
            pool,
            sensor,
            at("2026-06-09T10:30:00Z"),
            at("2026-06-14T07:15:00Z"),
            3600,
        )
        .await,
        days: aggregate(
            pool,
            sensor,
            at("2026-06-01T00:00:00Z"),
            at("2026-08-01T00:00:00Z"),
            86_400,
        )
        .await,
    }
}

async fn rows_of(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn every_read_answers_the_same_once_a_month_is_packed(pool: PgPool) {
    let sensors = [create_sensor(&pool).await, create_sensor(&pool).await];
    store_measurements(&pool, sensors).await;
    let before = reads(&pool, sensors[0]).await;
    assert_eq!(before.export.len(), 375);
    assert!(in_time_order(&before.export));
    assert!(before.next_pages.len() >= 6, "{}", before.next_pages.len());
    // The page from inside the run holds the whole run, more than a page.
    assert_eq!(
        last_timestamp(&before.page_inside_the_run),
        Some(timestamp(at("2026-06-11T12:00:00Z")))
    );

    for month in ["2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"] {
        let packed = pack_measurement_month(&pool, at(month)).await.unwrap();
        assert!(packed > 0, "{month}");
    }
    assert_eq!(rows_of(&pool, "measurement").await, 0);
    // A sensor's day to a row: June's 4 days of two sensors, and July's one day.
    assert_eq!(rows_of(&pool, "measurement_packed").await, 9);
    assert_eq!(reads(&pool, sensors[0]).await, before);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn late_measurements_in_a_packed_month_are_stored_once_read_in_place_and_packed_next(
    pool: PgPool,
) {
    let sensors = [create_sensor(&pool).await, create_sensor(&pool).await];
    store_measurements(&pool, sensors).await;
    pack_measurement_month(&pool, at("2026-06-01T00:00:00Z"))
        .await
        .unwrap();
    let packed = reads(&pool, sensors[0]).await;

    // Delivered again, a packed measurement is not stored again.
    let again = measurement(sensors[0], at("2026-06-11T12:00:00Z"), 1_003);
    assert_eq!(create_measurements(&pool, &[again]).await.unwrap(), 0);
    assert_eq!(reads(&pool, sensors[0]).await, packed);

    // New ones are stored as rows and read in their places: one inside the run, and
    // more than a page among the packed days, so that pages take part of both.
    let mut late = vec![measurement(sensors[0], at("2026-06-11T12:00:00Z"), 5_000)];
    for index in 0..99 {
        let moment = at("2026-06-10T00:05:00Z") + TimeDelta::minutes(50 * index);
        late.push(measurement(sensors[0], moment, 6_000 + index));
    }
    assert_eq!(create_measurements(&pool, &late).await.unwrap(), 100);
    let with_late = reads(&pool, sensors[0]).await;
    assert_eq!(with_late.export.len(), packed.export.len() + 100);
    assert!(in_time_order(&with_late.export));
    assert_ne!(with_late.page_inside_the_run, packed.page_inside_the_run);
    assert_ne!(with_late.ten_minutes, packed.ten_minutes);

    // The next packing merges them into their days, where they are read as they were.
    assert_eq!(
        pack_measurement_month(&pool, at("2026-06-01T00:00:00Z"))
            .await
            .unwrap(),
        100
    );
    assert_eq!(rows_of(&pool, "measurement_2026_06").await, 0);
    assert_eq!(reads(&pool, sensors[0]).await, with_late);
    let day_count: i32 = sqlx::query_scalar(
        "SELECT measurement_count FROM measurement_packed
         WHERE sensor_identifier = $1 AND day_timestamp = '2026-06-11T00:00:00Z'",
    )
    .bind(sensors[0])
    .fetch_one(&pool)
    .await
    .unwrap();
    // 85 every 17 minutes, the run of 70, and the late ones: 1 in the run, 29 every 50
    // minutes.
    assert_eq!(day_count, 85 + 70 + 1 + 29);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_deleted_sensors_packed_days_go_with_it(pool: PgPool) {
    let sensors = [create_sensor(&pool).await, create_sensor(&pool).await];
    store_measurements(&pool, sensors).await;
    pack_measurement_month(&pool, at("2026-06-01T00:00:00Z"))
        .await
        .unwrap();
    sqlx::query("DELETE FROM sensor WHERE identifier = $1")
        .bind(sensors[0])
        .execute(&pool)
        .await
        .unwrap();
    let owners: Vec<sqlx::types::Uuid> =
        sqlx::query_scalar("SELECT DISTINCT sensor_identifier FROM measurement_packed")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(owners, [sensors[1].as_uuid()]);
}

/// Pages read the months since `never_packed_since` as rows alone: packing refuses a
/// month closed for less than a week, and leaves its rows as they are.
#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_month_closed_less_than_a_week_ago_is_not_packed(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let now = Utc::now();
    sqlx::query("SELECT create_measurement_partitions($1, $1)")
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
    create_measurements(&pool, &[measurement(sensor, now, 1)])
        .await
        .unwrap();
    let month = now
        .date_naive()
        .with_day(1)
        .unwrap()
        .and_time(NaiveTime::MIN)
        .and_utc();
    let refused = pack_measurement_month(&pool, month).await.unwrap_err();
    assert!(
        refused.to_string().contains("closed less than 7 days ago"),
        "{refused}"
    );
    assert_eq!(rows_of(&pool, "measurement").await, 1);
    assert_eq!(rows_of(&pool, "measurement_packed").await, 0);
    assert!(never_packed_since(now) <= month);
}

/// Reads of a range that starts where no month can be packed (at or after
/// `never_packed_since`) run statements of the rows alone: they answer as the statements
/// that may reach packed months do, over a range that starts a day earlier and holds no
/// more measurements.
#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn reads_of_the_months_never_packed_answer_as_reads_that_may_reach_packed_ones(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let since = never_packed_since(Utc::now());
    sqlx::query("SELECT create_measurement_partitions($1, now())")
        .bind(since - TimeDelta::days(1))
        .execute(&pool)
        .await
        .unwrap();
    // Every 7 minutes for 2 days, from 30 minutes after `since`.
    let batch: Vec<_> = (0..412)
        .map(|index| {
            let moment = since + TimeDelta::minutes(30 + 7 * index);
            measurement(sensor, moment, index)
        })
        .collect();
    for chunk in batch.chunks(100) {
        create_measurements(&pool, chunk).await.unwrap();
    }
    // Both edges are partial hours, and each holds measurements (the last at 48:27).
    let end = since + TimeDelta::minutes(48 * 60 + 30);
    // The same reads from `from` to `end`; `from` is inside a partial hour.
    let read = async |from: DateTime<Utc>| {
        let export_range = ExportRange {
            from: Some(timestamp(from)),
            to: Some(timestamp(end)),
        };
        let mut aggregates = Vec::new();
        for interval in [600, 3_600, 7_200, 86_400] {
            aggregates.push(aggregate(&pool, sensor, from, end, interval).await);
        }
        (export(&pool, sensor, export_range).await, aggregates)
    };
    let (rows, aggregates) = read(since + TimeDelta::minutes(10)).await;
    assert_eq!(rows.len(), 412);
    assert!(in_time_order(&rows));
    for answer in &aggregates {
        let attributes: BTreeMap<String, Vec<serde_json::Value>> =
            serde_json::from_str(answer).unwrap();
        let counts = attributes["a"]
            .iter()
            .map(|bucket| bucket["count"].as_i64().unwrap());
        assert_eq!(counts.sum::<i64>(), 412, "{answer}");
    }
    assert_eq!(
        read(since - TimeDelta::days(1) + TimeDelta::minutes(10)).await,
        (rows, aggregates)
    );
}
