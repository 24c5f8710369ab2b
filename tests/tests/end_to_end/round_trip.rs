//! The whole loop through the harness, as an operator and a sensor see it: the
//! operator configures over REST, the sensor receives the configuration over MQTT,
//! acknowledges it and sends measurements and logs, and the operator reads all of it
//! back over REST.

use std::time::Duration;

use crate::helpers::TestApp;
use crate::helpers::mqtt::{Sensor, broker_url, spawn_mqtt};
use crate::helpers::scene::Scene;
use sensorium_shared::testing::eventually;
use serde_json::{Value, json};
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `GET path` until its body satisfies `done`, and returns that body.
async fn read_until(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let body = eventually(DEADLINE, || async {
        let (status, body) = app.get(path, token).await;
        assert_eq!(status, 200, "{body}");
        done(&body).then_some(body)
    })
    .await;
    body.unwrap_or_else(|| panic!("GET {path} did not get there within {DEADLINE:?}"))
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn what_a_sensor_sends_is_readable_over_rest_and_its_configuration_reaches_it(pool: PgPool) {
    let background = spawn_mqtt(pool.clone(), &broker_url()).await;
    let app = TestApp::spawn_with_outbox(pool, background.outbox.clone()).await;
    let scene = Scene::create(&app).await;

    // The operator configures the sensor before it is even connected.
    let (status, body) = scene
        .post_configuration(
            &app,
            json!({"interval": 60, "pollutants": ["pm2_5", "no2"]}),
        )
        .await;
    assert_eq!((status, &body), (201, &json!({"revision": 0})));

    // Once the broker has it...
    read_until(
        &app,
        &scene.sensor_path("/configurations"),
        scene.token(),
        |body| body[0]["publication_timestamp"].is_f64(),
    )
    .await;
    // ...a sensor that connects later still receives it: published retained.
    let mut sensor = Sensor::connect(&broker_url());
    sensor
        .subscribe(&format!("configurations/{}", scene.sensor))
        .await;
    let configuration = sensor
        .next_message(DEADLINE)
        .await
        .expect("a configuration");
    assert!(configuration.retain);
    let configuration: Value = serde_json::from_slice(&configuration.payload).unwrap();
    assert_eq!(
        configuration,
        json!({"revision": 0, "configuration": {"interval": 60, "pollutants": ["pm2_5", "no2"]}})
    );

    // It acknowledges the configuration and reports.
    let now = chrono::Utc::now().timestamp() as f64;
    sensor
        .publish_json(
            &format!("heartbeats/{}", scene.sensor),
            json!({"heartbeats": [{"revision": 0, "timestamp": now, "success": true}]}),
        )
        .await;
    sensor
        .publish_json(
            &format!("measurements/{}", scene.sensor),
            json!({"measurements": [
                {"revision": 0, "timestamp": now - 1.5, "value": {"pm2_5": 12.5, "no2": 3.0}},
                {"timestamp": now - 0.5, "value": {"pm2_5": 13.0}}
            ]}),
        )
        .await;
    sensor
        .publish_json(
            &format!("log-messages/{}", scene.sensor),
            json!({"log_messages": [{
                "severity": "warning", "revision": 0, "timestamp": now - 1.0,
                "subject": "Fan speed low", "details": "1200 rpm"
            }]}),
        )
        .await;

    let configurations = read_until(
        &app,
        &scene.sensor_path("/configurations"),
        scene.token(),
        |body| body[0]["success"] == json!(true),
    )
    .await;
    let configuration = &configurations[0];
    assert_eq!(configuration["revision"], 0);
    assert_eq!(configuration["acknowledgement_timestamp"], json!(now));
    assert!(configuration["publication_timestamp"].is_f64());
    assert!(configuration["receipt_timestamp"].as_f64().unwrap() >= now - 1.0);

    let measurements = read_until(
        &app,
        &scene.sensor_path("/measurements"),
        scene.token(),
        |body| body.as_array().is_some_and(|page| page.len() == 2),
    )
    .await;
    assert_eq!(
        measurements,
        json!([
            {"value": {"no2": 3.0, "pm2_5": 12.5}, "revision": 0, "creation_timestamp": now - 1.5},
            {"value": {"pm2_5": 13.0}, "revision": null, "creation_timestamp": now - 0.5}
        ])
    );

    let logs = read_until(&app, &scene.sensor_path("/logs"), scene.token(), |body| {
        body.as_array().is_some_and(|page| page.len() == 1)
    })
    .await;
    assert_eq!(
        logs,
        json!([{
            "severity": "warning", "subject": "Fan speed low", "details": "1200 rpm",
            "revision": 0, "creation_timestamp": now - 1.0
        }])
    );
}
