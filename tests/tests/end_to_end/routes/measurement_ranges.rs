//! `GET .../measurements?aggregate=true&from=&to=&interval=`: statistics per attribute
//! over buckets aligned to the epoch, from the daily and hourly rollups and from the
//! rows, and a message delivered twice over MQTT counting once in each of them.

use std::time::Duration;

use crate::helpers::TestApp;
use crate::helpers::mqtt::{Sensor, broker_url, spawn_mqtt};
use crate::helpers::scene::{Scene, store_measurements};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The start of an hour (and of a minute); the start of a 2-hour bucket is an hour
/// earlier.
const HOUR: f64 = 1_700_002_800.0;

fn bucket(timestamp: f64, values: &[f64]) -> Value {
    let sum: f64 = values.iter().sum();
    json!({
        "bucket_timestamp": timestamp,
        "average": sum / values.len() as f64,
        "minimum": values.iter().copied().fold(f64::INFINITY, f64::min),
        "maximum": values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "count": values.len(),
    })
}

async fn aggregates(app: &TestApp, scene: &Scene, query: &str) -> Value {
    let path = scene.sensor_path(&format!("/measurements?aggregate=true&{query}"));
    let (status, body) = app.get(&path, scene.token()).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// Temperatures on both sides of minute and hour edges, and one humidity.
async fn store_edges(app: &TestApp, scene: &Scene) {
    store_measurements(
        app,
        &scene.sensor,
        &[
            (HOUR - 1.0, &[("temperature", 5.0)]),
            (HOUR, &[("temperature", 10.0)]),
            (HOUR + 59.999_999, &[("temperature", 20.0)]),
            (HOUR + 60.0, &[("temperature", 30.0)]),
            (HOUR + 3599.0, &[("temperature", 40.0), ("humidity", 1.0)]),
            (HOUR + 3600.0, &[("temperature", 50.0)]),
        ],
    )
    .await;
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn minute_buckets_start_at_their_edge_and_end_before_the_next(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    store_edges(&app, &scene).await;
    let body = aggregates(
        &app,
        &scene,
        &format!("from={HOUR}&to={}&interval=60", HOUR + 120.0),
    )
    .await;
    assert_eq!(
        body,
        json!({"temperature": [bucket(HOUR, &[10.0, 20.0]), bucket(HOUR + 60.0, &[30.0])]})
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn hourly_buckets_come_from_the_rollup_and_the_rows_of_partial_hours(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    store_edges(&app, &scene).await;
    // Whole hours only.
    let body = aggregates(
        &app,
        &scene,
        &format!("from={HOUR}&to={}&interval=3600", HOUR + 7200.0),
    )
    .await;
    assert_eq!(
        body,
        json!({
            "humidity": [bucket(HOUR, &[1.0])],
            "temperature": [bucket(HOUR, &[10.0, 20.0, 30.0, 40.0]), bucket(HOUR + 3600.0, &[50.0])],
        })
    );
    // Half an hour on either side of a whole hour: the edges come from the rows, and
    // the 2-hour buckets are aligned to the epoch, not to `from`.
    let body = aggregates(
        &app,
        &scene,
        &format!("from={}&to={}&interval=7200", HOUR - 1800.0, HOUR + 5400.0),
    )
    .await;
    assert_eq!(
        body,
        json!({
            "humidity": [bucket(HOUR - 3600.0, &[1.0])],
            "temperature": [
                bucket(HOUR - 3600.0, &[5.0, 10.0, 20.0, 30.0, 40.0]),
                bucket(HOUR + 3600.0, &[50.0]),
            ],
        })
    );
    // A range inside one hour, off its edges: all from the rows.
    let body = aggregates(
        &app,
        &scene,
        &format!("from={}&to={}&interval=3600", HOUR + 30.0, HOUR + 3599.5),
    )
    .await;
    assert_eq!(
        body,
        json!({
            "humidity": [bucket(HOUR, &[1.0])],
            "temperature": [bucket(HOUR, &[20.0, 30.0, 40.0])],
        })
    );
    // 30 days, the widest bucket.
    let body = aggregates(&app, &scene, "from=0&to=2000000000&interval=2592000").await;
    let month = (HOUR / 2_592_000.0).floor() * 2_592_000.0;
    assert_eq!(
        body,
        json!({
            "humidity": [bucket(month, &[1.0])],
            "temperature": [bucket(month, &[5.0, 10.0, 20.0, 30.0, 40.0, 50.0])],
        })
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn daily_buckets_come_from_both_rollups_and_the_rows_of_partial_hours(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    store_edges(&app, &scene).await;
    // HOUR is 23:00 of its day; the range runs from 22:30 that day to 00:30 two days
    // later: 22:30 to 23:00 from the rows, the last hour of the first day from the
    // hourly rollup, the second day from the daily rollup, 00:00 to 00:30 from the rows.
    let day = HOUR - 23.0 * 3600.0;
    let body = aggregates(
        &app,
        &scene,
        &format!(
            "from={}&to={}&interval=86400",
            HOUR - 1800.0,
            day + 2.0 * 86_400.0 + 1800.0
        ),
    )
    .await;
    assert_eq!(
        body,
        json!({
            "humidity": [bucket(day, &[1.0])],
            "temperature": [
                bucket(day, &[5.0, 10.0, 20.0, 30.0, 40.0]),
                bucket(day + 86_400.0, &[50.0]),
            ],
        })
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_range_without_measurements_has_no_buckets(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    store_edges(&app, &scene).await;
    for query in [
        format!("from={}&to={}&interval=60", HOUR + 61.0, HOUR + 3599.0),
        format!("from={}&to={}&interval=3600", HOUR + 7200.0, HOUR + 36000.0),
        format!("from=0&to={}&interval=2592000", HOUR - 1.0),
    ] {
        assert_eq!(aggregates(&app, &scene, &query).await, json!({}), "{query}");
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn ranges_of_more_than_10000_buckets_or_not_forwards_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    // Exactly 10,000 buckets.
    assert_eq!(
        aggregates(&app, &scene, "from=0&to=600000&interval=60").await,
        json!({})
    );
    for query in [
        "aggregate=true&from=0&to=600000.5&interval=60",
        "aggregate=true&from=0&to=36000001&interval=3600",
        "aggregate=true&from=100&to=100",
        "aggregate=true&from=101&to=100",
        "aggregate=true&from=2000000000",
        "aggregate=true&interval=59",
        "aggregate=true&interval=2592001",
        "aggregate=true&interval=60.5",
        "aggregate=true&interval=-3600",
        "aggregate=true&from=-1",
        "aggregate=true&to=2147483648",
        "aggregate=true&from=0&direction=next",
        "aggregate=true&to=1&creation_timestamp=0",
        "from=0",
        "to=1",
        "interval=60",
        "aggregate=false&interval=60",
    ] {
        let path = scene.sensor_path(&format!("/measurements?{query}"));
        let (status, body) = app.get(&path, scene.token()).await;
        assert_eq!(
            (status, body),
            (400, json!({"details": "Bad Request"})),
            "{query}"
        );
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_message_delivered_twice_counts_once_in_every_statistic(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let scene = Scene::create(&app).await;
    let _mqtt = spawn_mqtt(pool.clone(), &broker_url()).await;
    let sensor = Sensor::connect(&broker_url());
    let topic = format!("measurements/{}", scene.sensor);
    let message = json!({"measurements": [
        {"timestamp": HOUR + 10.0, "value": {"temperature": 10.0}},
        {"timestamp": HOUR + 20.0, "value": {"temperature": 30.0}},
        {"timestamp": HOUR + 3610.0, "value": {"temperature": 7.0}},
    ]});
    sensor.publish_json(&topic, message.clone()).await;
    sensor.publish_json(&topic, message).await;
    // Published after both copies: once it is stored, so are they.
    sensor
        .publish_json(
            &topic,
            json!({"measurements": [{"timestamp": HOUR + 7300.0, "value": {"marker": 1}}]}),
        )
        .await;
    let (app_ref, scene_ref) = (&app, &scene);
    let stored =
        sensorium_shared::testing::eventually(Duration::from_secs(30), move || async move {
            let query = format!("from={HOUR}&to={}", HOUR + 10800.0);
            let body = aggregates(app_ref, scene_ref, &query).await;
            body.get("marker").is_some().then_some(body)
        })
        .await
        .expect("the marker is stored within 30 s");
    let once = json!([bucket(HOUR, &[10.0, 30.0]), bucket(HOUR + 3600.0, &[7.0])]);
    assert_eq!(stored["temperature"], once, "hourly, from the rollup");
    let minutes = aggregates(
        &app,
        &scene,
        &format!("from={HOUR}&to={}&interval=60", HOUR + 7200.0),
    )
    .await;
    assert_eq!(minutes["temperature"], once, "by the minute, from the rows");
    let partial = aggregates(
        &app,
        &scene,
        &format!("from={}&to={}&interval=7200", HOUR + 5.0, HOUR + 3615.0),
    )
    .await;
    assert_eq!(
        partial["temperature"],
        json!([
            bucket(HOUR - 3600.0, &[10.0, 30.0]),
            bucket(HOUR + 3600.0, &[7.0])
        ]),
        "2-hour buckets from the rows of partial hours"
    );
    // HOUR is 23:00, so the third value falls on the next day.
    let day = HOUR - 23.0 * 3600.0;
    let days = aggregates(
        &app,
        &scene,
        &format!("from={day}&to={}&interval=86400", day + 3.0 * 86_400.0),
    )
    .await;
    assert_eq!(
        days["temperature"],
        json!([bucket(day, &[10.0, 30.0]), bucket(day + 86_400.0, &[7.0])]),
        "daily, from the daily rollup"
    );
}
