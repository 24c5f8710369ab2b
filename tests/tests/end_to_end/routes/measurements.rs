//! `/networks/{n}/sensors/{s}/measurements`: cursor pages by creation time and the
//! hourly aggregates, over data stored the way ingestion stores it; and what the
//! measurement and log routes share (pages ending in a run of equal timestamps, no
//! data, bad parameters), checked on both.

use crate::helpers::pages::{BASE, creation_timestamps, timestamps};
use crate::helpers::scene::{Scene, now, store_log_messages, store_measurements};
use crate::helpers::{TestApp, error};
use sensorium_shared::domain::Severity;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn measurements_page_forwards_and_backwards_by_creation_timestamp(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let values: Vec<[(&str, f64); 2]> = (0..100)
        .map(|index| [("temperature", index as f64), ("humidity", 0.5)])
        .collect();
    let measurements: Vec<(f64, &[(&str, f64)])> = timestamps(0..100)
        .into_iter()
        .zip(&values)
        .map(|(timestamp, value)| (timestamp, value.as_slice()))
        .collect();
    store_measurements(&app, &scene.sensor, &measurements).await;

    let first = scene.get_ok(&app, "/measurements").await;
    assert_eq!(creation_timestamps(&first), timestamps(0..64));
    assert_eq!(
        first[1],
        json!({"value": {"humidity": 0.5, "temperature": 1.0}, "revision": 1, "creation_timestamp": BASE + 0.5})
    );
    let cursor = first[63]["creation_timestamp"].as_f64().unwrap();
    let second = scene
        .get_ok(&app, &format!("/measurements?creation_timestamp={cursor}"))
        .await;
    assert_eq!(creation_timestamps(&second), timestamps(64..100));
    let next = format!(
        "/measurements?direction=next&creation_timestamp={}",
        BASE + 99.0 * 0.5
    );
    assert_eq!(scene.get_ok(&app, &next).await, json!([]));

    let last = scene.get_ok(&app, "/measurements?direction=previous").await;
    assert_eq!(creation_timestamps(&last), timestamps(36..100));
    let cursor = last[0]["creation_timestamp"].as_f64().unwrap();
    let before = scene
        .get_ok(
            &app,
            &format!("/measurements?direction=previous&creation_timestamp={cursor}"),
        )
        .await;
    assert_eq!(creation_timestamps(&before), timestamps(0..36));
    let none = scene
        .get_ok(
            &app,
            &format!("/measurements?direction=previous&creation_timestamp={BASE}"),
        )
        .await;
    assert_eq!(none, json!([]));
    assert_eq!(
        scene.get_ok(&app, "/measurements?aggregate=false").await,
        first
    );
}

/// 60 elements a half second apart, a run of 10 sharing one timestamp, then 60 more:
/// the first page from either end ends inside the run.
fn timestamps_with_a_run() -> Vec<f64> {
    let mut run = timestamps(0..60);
    run.extend([BASE + 30.0; 10]);
    run.extend(timestamps(61..121));
    run
}

/// Reads an element's index from what it holds: a measurement's value, a log's subject.
type IndexOf = fn(&Value) -> String;

/// Reads every page of `resource` from one end to the other, each page's cursor the
/// timestamp of its last element in `direction`; returns the pages' `key` fields.
async fn read_all_pages(
    app: &TestApp,
    scene: &Scene,
    resource: &str,
    direction: &str,
    key: IndexOf,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = format!("{resource}?direction={direction}");
    loop {
        let page = scene.get_ok(app, &path).await;
        let elements = page.as_array().unwrap();
        if elements.is_empty() {
            return pages;
        }
        let stamps = creation_timestamps(&page);
        assert!(stamps.is_sorted(), "{path}: {stamps:?}");
        let cursor = if direction == "next" {
            stamps[stamps.len() - 1]
        } else {
            stamps[0]
        };
        pages.push(elements.iter().map(key).collect());
        path = format!("{resource}?direction={direction}&creation_timestamp={cursor}");
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn pages_reach_past_a_month_and_need_no_counts_to_start(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let scene = Scene::create(&app).await;
    // 70 measurements 20 days apart, then 70 a second apart: the first page's month
    // holds two, and the dense run's month a whole page.
    let sparse = (0..70).map(|index| BASE + index as f64 * 20.0 * 86_400.0);
    let dense_start = BASE + 70.0 * 20.0 * 86_400.0;
    let dense = (0..70).map(|index| dense_start + index as f64);
    let expected: Vec<f64> = sparse.chain(dense).collect();
    store_at(&app, &scene, &expected).await;

    let key: IndexOf = |element| element["creation_timestamp"].to_string();
    let as_keys = |stamps: &[f64]| -> Vec<String> {
        stamps
            .iter()
            .map(|stamp| json!(stamp).to_string())
            .collect()
    };
    let forwards = read_all_pages(&app, &scene, "/measurements", "next", key).await;
    assert_eq!(forwards.concat(), as_keys(&expected));
    assert_eq!(forwards[0].len(), 64);
    let mut backwards = read_all_pages(&app, &scene, "/measurements", "previous", key).await;
    backwards.reverse();
    assert_eq!(backwards.concat(), as_keys(&expected));

    // The 4-hour counts only say where a page without a cursor starts looking: wrong
    // or missing, the page is the same. (Another instance, which has not read them
    // yet: see count_days_cache.)
    sqlx::query("DELETE FROM measurement_count")
        .execute(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let first = scene.get_ok(&app, "/measurements").await;
    assert_eq!(creation_timestamps(&first), expected[..64]);
    sqlx::query(
        "INSERT INTO measurement_count (sensor_identifier, day_timestamp, count_00h, count_04h,
             count_08h, count_12h, count_16h, count_20h)
         VALUES ($1::uuid, to_timestamp($2), 0, 1, 0, 0, 0, 0),
             ($1::uuid, to_timestamp($3), 1, 0, 0, 0, 0, 0)",
    )
    .bind(&scene.sensor)
    .bind(dense_start + 14_400.0)
    .bind(BASE - 1e8)
    .execute(&pool)
    .await
    .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let (first, newest) = first_and_newest_pages(&app, &scene).await;
    assert_eq!(first, expected[..64]);
    assert_eq!(newest, expected[expected.len() - 64..]);
}

/// Stores one-attribute measurements created at `stamps`, as ingestion does.
async fn store_at(app: &TestApp, scene: &Scene, stamps: &[f64]) {
    let value = [("temperature", 1.0)];
    let measurements: Vec<(f64, &[(&str, f64)])> = stamps
        .iter()
        .map(|stamp| (*stamp, value.as_slice()))
        .collect();
    store_measurements(app, &scene.sensor, &measurements).await;
}

/// The creation timestamps of the pages without a cursor: the first and the newest.
async fn first_and_newest_pages(app: &TestApp, scene: &Scene) -> (Vec<f64>, Vec<f64>) {
    let first = scene.get_ok(app, "/measurements").await;
    let newest = scene.get_ok(app, "/measurements?direction=previous").await;
    (creation_timestamps(&first), creation_timestamps(&newest))
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn pages_without_a_cursor_are_right_when_the_days_kept_are_out_of_date(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let day = 86_400.0;
    let middle: Vec<f64> = (0..100).map(|index| BASE + index as f64).collect();
    store_at(&app, &scene, &middle).await;
    // The instance keeps the sensor's first and last day of counts from these.
    let (first, newest) = first_and_newest_pages(&app, &scene).await;
    assert_eq!(
        (first.as_slice(), newest.as_slice()),
        (&middle[..64], &middle[36..])
    );
    // Days before and after them, further than a page's window (a month) away: a
    // sensor's backlog, and what it measured since.
    let older: Vec<f64> = (0..70)
        .map(|index| BASE - 80.0 * day + index as f64)
        .collect();
    let newer: Vec<f64> = (0..70)
        .map(|index| BASE + 40.0 * day + index as f64)
        .collect();
    store_at(&app, &scene, &older).await;
    store_at(&app, &scene, &newer).await;
    let (first, newest) = first_and_newest_pages(&app, &scene).await;
    assert_eq!(
        (first.as_slice(), newest.as_slice()),
        (&older[..64], &newer[6..])
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn pages_ending_in_a_run_of_equal_timestamps_hold_the_whole_run(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let timestamps = timestamps_with_a_run();
    let values: Vec<[(&str, f64); 1]> = (0..timestamps.len())
        .map(|index| [("index", index as f64)])
        .collect();
    let measurements: Vec<(f64, &[(&str, f64)])> = timestamps
        .iter()
        .zip(&values)
        .map(|(timestamp, value)| (*timestamp, value.as_slice()))
        .collect();
    store_measurements(&app, &scene.sensor, &measurements).await;
    let subjects: Vec<String> = (0..timestamps.len())
        .map(|index| format!("log {index}"))
        .collect();
    let log_messages: Vec<(f64, Severity, &str, Option<i64>)> = timestamps
        .iter()
        .zip(&subjects)
        .map(|(timestamp, subject)| (*timestamp, Severity::Info, subject.as_str(), None))
        .collect();
    store_log_messages(&app, &scene.sensor, &log_messages).await;

    let resources: [(&str, IndexOf); 2] = [
        ("/measurements", |element| {
            element["value"]["index"].as_f64().unwrap().to_string()
        }),
        ("/logs", |element| {
            element["subject"].as_str().unwrap().replace("log ", "")
        }),
    ];
    let all: Vec<String> = (0..timestamps.len())
        .map(|index| index.to_string())
        .collect();
    let run = 60..70;
    for (resource, key) in resources {
        let forwards = read_all_pages(&app, &scene, resource, "next", key).await;
        // The first page ends inside the run (at 64), so it holds all of it.
        let sizes: Vec<usize> = forwards.iter().map(Vec::len).collect();
        assert_eq!(sizes, [70, 60], "{resource}");
        let mut read = forwards.concat();
        // Within the run, the order is the server's.
        read[run.clone()].sort();
        assert_eq!(read, all, "{resource} forwards");

        let backwards = read_all_pages(&app, &scene, resource, "previous", key).await;
        let sizes: Vec<usize> = backwards.iter().map(Vec::len).collect();
        assert_eq!(sizes, [70, 60], "{resource}");
        let mut read: Vec<String> = backwards.into_iter().rev().flatten().collect();
        read[run.clone()].sort();
        assert_eq!(read, all, "{resource} backwards");
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn aggregated_measurements_are_hourly_averages_per_attribute_over_28_days(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let hour = (now() / 3600.0).floor() * 3600.0 - 10.0 * 3600.0;
    store_measurements(
        &app,
        &scene.sensor,
        &[
            (hour + 1.0, &[("temperature", 10.0)]),
            (hour + 2.0, &[("temperature", 20.0), ("humidity", 0.5)]),
            (hour + 3599.0, &[("humidity", 0.25)]),
            (hour + 3600.0, &[("temperature", 30.0)]),
            (
                now() - 29.0 * 86400.0,
                &[("temperature", 1000.0), ("pressure", 1.0)],
            ),
        ],
    )
    .await;
    let body = scene.get_ok(&app, "/measurements?aggregate=true").await;
    assert_eq!(
        body,
        json!({
            "humidity": [
                {"bucket_timestamp": hour, "average": 0.375, "minimum": 0.25, "maximum": 0.5, "count": 2},
            ],
            "temperature": [
                {"bucket_timestamp": hour, "average": 15.0, "minimum": 10.0, "maximum": 20.0, "count": 2},
                {"bucket_timestamp": hour + 3600.0, "average": 30.0, "minimum": 30.0, "maximum": 30.0, "count": 1},
            ],
        })
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn extreme_values_are_aggregated_without_overflow(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let hour = (now() / 3600.0).floor() * 3600.0 - 10.0 * 3600.0;
    let smallest = f64::from_bits(1); // 5e-324, the smallest subnormal
    store_measurements(
        &app,
        &scene.sensor,
        &[
            // Their squares overflow a float8, which avg(float8) keeps.
            (
                hour + 1.0,
                &[("a", 1e200), ("b", f64::MAX), ("c", smallest)],
            ),
            // Their sum overflows a float8.
            (hour + 2.0, &[("a", -1e200), ("b", f64::MAX), ("c", 0.0)]),
            // The average of c is below the smallest subnormal: 0.
            (hour + 3.0, &[("b", f64::MAX), ("c", 0.0)]),
            (hour + 3600.0, &[("a", -f64::MAX), ("b", -f64::MAX)]),
            (hour + 3601.0, &[("a", -f64::MAX), ("b", f64::MAX)]),
        ],
    )
    .await;
    let body = scene.get_ok(&app, "/measurements?aggregate=true").await;
    assert_eq!(
        body,
        json!({
            "a": [
                {"bucket_timestamp": hour, "average": 0.0, "minimum": -1e200, "maximum": 1e200, "count": 2},
                {"bucket_timestamp": hour + 3600.0, "average": -f64::MAX, "minimum": -f64::MAX, "maximum": -f64::MAX, "count": 2},
            ],
            "b": [
                {"bucket_timestamp": hour, "average": f64::MAX, "minimum": f64::MAX, "maximum": f64::MAX, "count": 3},
                {"bucket_timestamp": hour + 3600.0, "average": 0.0, "minimum": -f64::MAX, "maximum": f64::MAX, "count": 2},
            ],
            "c": [{"bucket_timestamp": hour, "average": 0.0, "minimum": 0.0, "maximum": smallest, "count": 3}],
        })
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_sensor_without_data_has_empty_pages_and_aggregates(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    for path in [
        "/measurements",
        "/measurements?direction=previous",
        "/logs",
        "/logs?direction=previous",
        "/logs/aggregates",
    ] {
        assert_eq!(scene.get_ok(&app, path).await, json!([]), "{path}");
    }
    assert_eq!(
        scene.get_ok(&app, "/measurements?aggregate=true").await,
        json!({})
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn invalid_measurement_and_log_parameters_return_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    for query in [
        "?direction=back",
        "?creation_timestamp=-1",
        "?creation_timestamp=2147483648",
        "?creation_timestamp=NaN",
        "?creation_timestamp=inf",
        "?creation_timestamp=yesterday",
        "?creation_timestamp=",
        "?revision=1",
        "?aggregate=true&direction=next",
        "?aggregate=true&creation_timestamp=1",
    ] {
        for resource in ["/measurements", "/logs"] {
            let path = scene.sensor_path(&format!("{resource}{query}"));
            let (status, body) = app.get(&path, scene.token()).await;
            // The log routes do not know `aggregate` at all.
            assert_eq!((status, body), error(400), "{path}");
        }
    }
    for query in ["?aggregate=yes", "?aggregate="] {
        let (status, _) = app
            .get(
                &scene.sensor_path(&format!("/measurements{query}")),
                scene.token(),
            )
            .await;
        assert_eq!(status, 400, "{query}");
    }
    let (status, _) = app
        .get(
            &scene.sensor_path("/logs/aggregates?direction=next"),
            scene.token(),
        )
        .await;
    assert_eq!(status, 400);
}
