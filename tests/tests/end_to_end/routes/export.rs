//! `GET .../measurements/export` and `.../logs/export`: every row of a range, streamed
//! as NDJSON or CSV, whole and in order however many there are.

use crate::helpers::TestApp;
use crate::helpers::scene::{Scene, create_sensor, store_measurements};
use chrono::DateTime;
use sensorium_shared::domain::{Identifier, Revision, Severity, Timestamp};
use sensorium_shared::queries::logs::{NewLogMessage, create_log_messages};
use sensorium_shared::testing::insert_interleaved_measurements;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const START: f64 = 1_700_002_800.0;

struct Download {
    status: u16,
    content_type: String,
    disposition: String,
    text: String,
}

async fn download(app: &TestApp, scene: &Scene, tail: &str) -> Download {
    let response = app
        .client
        .get(app.url(&scene.sensor_path(tail)))
        .bearer_auth(scene.token().unwrap())
        .send()
        .await
        .expect("the harness answers");
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let disposition = header(reqwest::header::CONTENT_DISPOSITION);
    let status = response.status().as_u16();
    let text = response.text().await.expect("the whole body");
    Download {
        status,
        content_type,
        disposition,
        text,
    }
}

/// 25,000 measurements of two attributes, a second apart: about 2 MB of NDJSON, more
/// than every buffer on the way.
const MANY: usize = 25_000;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn an_export_larger_than_any_buffer_streams_whole_and_in_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let values: Vec<[(&str, f64); 2]> = (0..MANY)
        .map(|index| {
            [
                ("humidity", index as f64 / 4.0),
                ("temperature", -(index as f64)),
            ]
        })
        .collect();
    // Stored newest first, so that the order comes from the export, not the insert.
    let measurements: Vec<(f64, &[(&str, f64)])> = values
        .iter()
        .enumerate()
        .rev()
        .map(|(index, value)| (START + index as f64, &value[..]))
        .collect();
    for batch in measurements.chunks(5000) {
        store_measurements(&app, &scene.sensor, batch).await;
    }

    let ndjson = download(&app, &scene, "/measurements/export").await;
    assert_eq!(ndjson.status, 200);
    assert_eq!(ndjson.content_type, "application/x-ndjson");
    assert_eq!(
        ndjson.disposition,
        format!(
            "attachment; filename=\"measurements-{}-start-end.ndjson\"",
            scene.sensor
        )
    );
    assert!(ndjson.text.len() > 1 << 20, "{} bytes", ndjson.text.len());
    let lines: Vec<Value> = ndjson
        .text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), MANY);
    for (index, line) in lines.iter().enumerate() {
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["creation_timestamp", "revision", "value"]);
        assert_eq!(line["creation_timestamp"], json!(START + index as f64));
        assert_eq!(
            line["value"],
            json!({"humidity": index as f64 / 4.0, "temperature": -(index as f64)}),
            "line {index}"
        );
    }

    let csv = download(&app, &scene, "/measurements/export?format=csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.content_type, "text/csv");
    assert!(
        csv.disposition.ends_with("-start-end.csv\""),
        "{}",
        csv.disposition
    );
    let mut lines = csv.text.lines();
    assert_eq!(
        lines.next(),
        Some("creation_timestamp,revision,attribute,value")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2 * MANY);
    // The revision is the fixture's (position in its batch modulo 3): 4999 % 3.
    assert_eq!(rows[0], format!("{START:?},1,humidity,0.0"));
    assert_eq!(rows[1], format!("{START:?},1,temperature,-0.0"));
    let last = MANY - 1;
    assert!(
        rows[2 * last].starts_with(&format!("{:?},", START + last as f64)),
        "{}",
        rows[2 * last]
    );
    assert!(rows[2 * last + 1].ends_with(&format!(",temperature,-{last}.0")));
}

/// Sensors of one network whose rows interleave, and the rows each of them holds.
const FLEET: usize = 20;
const PER_SENSOR: usize = 2_000;

/// With too little `work_mem` to sort a sensor's rows in memory and no room for
/// temporary files on the app's connections, an export streams a sensor's rows whole and
/// in order all the same: the route reads them in the key's order rather than sorting
/// them, which spilled to disk at fleet scale before any row went out.
#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn an_export_streams_in_the_keys_order_without_sorting(pool: PgPool) {
    let constrained = pool
        .connect_options()
        .as_ref()
        .clone()
        .options([("work_mem", "64kB"), ("temp_file_limit", "64kB")]);
    let constrained = PgPoolOptions::new()
        .connect_with(constrained)
        .await
        .expect("a pool with little memory");
    let app = TestApp::spawn(constrained).await;
    let scene = Scene::create(&app).await;
    let mut sensors = vec![Identifier::parse(&scene.sensor).unwrap()];
    for index in 1..FLEET {
        let sensor = create_sensor(
            &app,
            scene.token().unwrap(),
            &scene.network,
            &format!("sensor-{index}"),
        )
        .await;
        sensors.push(Identifier::parse(&sensor).unwrap());
    }
    // The fleet's rows, interleaved, stored and analyzed with the test's own pool (the
    // trigger's summaries would not fit in 64 kB either): a plan that sorts the scene's
    // sensor's rows costs less than one that reads them in order.
    let newest = DateTime::from_timestamp(START as i64, 0).unwrap();
    insert_interleaved_measurements(&pool, &sensors, PER_SENSOR, newest).await;

    let ndjson = download(&app, &scene, "/measurements/export").await;
    assert_eq!(ndjson.status, 200);
    let values: Vec<f64> = ndjson
        .text
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            line["value"]["a"].as_f64().unwrap()
        })
        .collect();
    // The scene's sensor is the first: its rows are i = 0, FLEET, 2 FLEET, ..., the
    // oldest the largest.
    let expected: Vec<f64> = (0..PER_SENSOR)
        .rev()
        .map(|row| (row * FLEET) as f64)
        .collect();
    assert_eq!(values, expected);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn an_export_holds_the_range_from_included_to_excluded(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    store_measurements(
        &app,
        &scene.sensor,
        &[
            (START - 0.000_001, &[("a", 1.0)]),
            (START, &[("a", 2.0)]),
            (START + 86_399.999_999, &[("a", 3.0)]),
            (START + 86_400.0, &[("a", 4.0)]),
        ],
    )
    .await;
    let day = download(
        &app,
        &scene,
        &format!("/measurements/export?from={START}&to={}", START + 86_400.0),
    )
    .await;
    assert_eq!(day.status, 200);
    let values: Vec<Value> = day
        .text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["value"]["a"].clone())
        .collect();
    assert_eq!(values, [json!(2.0), json!(3.0)]);
    assert_eq!(
        day.disposition,
        format!(
            "attachment; filename=\"measurements-{}-20231114T230000.000000Z-20231115T230000.000000Z.ndjson\"",
            scene.sensor
        )
    );
    let empty = download(
        &app,
        &scene,
        &format!("/measurements/export?from={}&format=csv", START + 86_400.5),
    )
    .await;
    assert_eq!(
        (empty.status, empty.text.as_str()),
        (200, "creation_timestamp,revision,attribute,value\n")
    );
    let (status, body) = app
        .get(&scene.sensor_path("/logs/export"), scene.token())
        .await;
    assert_eq!((status, body), (200, Value::Null), "no logs: an empty body");
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn invalid_export_parameters_return_400_and_a_missing_token_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    for resource in ["/measurements/export", "/logs/export"] {
        for query in [
            "?from=10&to=10",
            "?from=11&to=10",
            "?format=xml",
            "?format=",
            "?from=-1",
            "?to=2147483648",
            "?direction=next",
            "?aggregate=true",
        ] {
            let path = scene.sensor_path(&format!("{resource}{query}"));
            let (status, body) = app.get(&path, scene.token()).await;
            assert_eq!(
                (status, body),
                (400, json!({"details": "Bad Request"})),
                "{path}"
            );
        }
        let (status, _) = app.get(&scene.sensor_path(resource), None).await;
        assert_eq!(status, 401, "{resource}");
        let other = Identifier::new();
        let (status, _) = app
            .get(
                &format!("/networks/{}/sensors/{other}{resource}", scene.network),
                scene.token(),
            )
            .await;
        assert_eq!(status, 404, "{resource}");
    }
}

fn log_message(
    sensor: &str,
    timestamp: f64,
    subject: &str,
    details: Option<&str>,
    revision: Option<i64>,
) -> NewLogMessage {
    NewLogMessage {
        sensor_identifier: Identifier::parse(sensor).unwrap(),
        timestamp: Timestamp::parse(timestamp).unwrap(),
        severity: Severity::Warning,
        subject: subject.into(),
        details: details.map(Into::into),
        revision: revision.map(|revision| Revision::parse(revision).unwrap()),
        receipt_timestamp: Timestamp::now(),
        position: 0,
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn log_subjects_with_commas_quotes_and_newlines_are_quoted_in_csv(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let log_messages = [
        log_message(&scene.sensor, START + 0.5, "plain", None, Some(3)),
        log_message(&scene.sensor, START + 1.5, "a, b", Some(""), None),
        log_message(&scene.sensor, START + 2.5, "say \"hi\"", Some("x"), None),
        log_message(
            &scene.sensor,
            START + 3.5,
            "two\nlines",
            Some("cr\r\nlf"),
            Some(0),
        ),
    ];
    create_log_messages(&app.pool, &log_messages).await.unwrap();
    let csv = download(&app, &scene, "/logs/export?format=csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.content_type, "text/csv");
    assert_eq!(
        csv.disposition,
        format!(
            "attachment; filename=\"logs-{}-start-end.csv\"",
            scene.sensor
        )
    );
    assert_eq!(
        csv.text,
        "creation_timestamp,revision,severity,subject,details\n\
         1700002800.5,3,warning,plain,\n\
         1700002801.5,,warning,\"a, b\",\"\"\n\
         1700002802.5,,warning,\"say \"\"hi\"\"\",x\n\
         1700002803.5,0,warning,\"two\nlines\",\"cr\r\nlf\"\n"
    );
    let ndjson = download(&app, &scene, "/logs/export").await;
    assert_eq!(ndjson.content_type, "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines[3],
        json!({
            "severity": "warning",
            "subject": "two\nlines",
            "details": "cr\r\nlf",
            "revision": 0,
            "creation_timestamp": START + 3.5,
        })
    );
    assert_eq!(lines.len(), 4);
}
