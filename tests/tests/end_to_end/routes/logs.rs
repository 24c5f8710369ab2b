//! `/networks/{n}/sensors/{s}/logs` and `.../logs/aggregates`: cursor pages by
//! creation time and the aggregates by severity and subject, over logs stored the way
//! ingestion stores them.

use crate::helpers::TestApp;
use crate::helpers::pages::{BASE, creation_timestamps, timestamps};
use crate::helpers::scene::{Scene, store_log_messages};
use sensorium_shared::domain::Severity;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn logs_page_forwards_and_backwards_by_creation_timestamp(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let log_messages: Vec<(f64, Severity, &str, Option<i64>)> = timestamps(0..70)
        .into_iter()
        .map(|timestamp| (timestamp, Severity::Info, "tick", Some(4)))
        .collect();
    store_log_messages(&app, &scene.sensor, &log_messages).await;

    let first = scene.get_ok(&app, "/logs").await;
    assert_eq!(creation_timestamps(&first), timestamps(0..64));
    assert_eq!(
        first[0],
        json!({"severity": "info", "subject": "tick", "details": "details of tick", "revision": 4, "creation_timestamp": BASE})
    );
    let cursor = first[63]["creation_timestamp"].as_f64().unwrap();
    let second = scene
        .get_ok(
            &app,
            &format!("/logs?direction=next&creation_timestamp={cursor}"),
        )
        .await;
    assert_eq!(creation_timestamps(&second), timestamps(64..70));

    let last = scene.get_ok(&app, "/logs?direction=previous").await;
    assert_eq!(creation_timestamps(&last), timestamps(6..70));
    let cursor = last[0]["creation_timestamp"].as_f64().unwrap();
    let before = scene
        .get_ok(
            &app,
            &format!("/logs?direction=previous&creation_timestamp={cursor}"),
        )
        .await;
    assert_eq!(creation_timestamps(&before), timestamps(0..6));
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn log_aggregates_group_warnings_and_errors_by_severity_and_subject(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let t = |offset: f64| BASE + offset;
    store_log_messages(
        &app,
        &scene.sensor,
        &[
            (t(1.0), Severity::Warning, "battery low", Some(1)),
            (t(2.0), Severity::Error, "sd card failed", None),
            (t(3.0), Severity::Warning, "battery low", Some(2)),
            (t(4.0), Severity::Info, "battery low", Some(3)),
            (t(5.0), Severity::Warning, "battery low", Some(3)),
            (t(6.0), Severity::Error, "battery low", Some(3)),
            (t(7.0), Severity::Info, "booted", Some(3)),
        ],
    )
    .await;
    let body = scene.get_ok(&app, "/logs/aggregates").await;
    assert_eq!(
        body,
        json!([
            {
                "severity": "error", "subject": "sd card failed",
                "min_revision": null, "max_revision": null,
                "min_creation_timestamp": t(2.0), "max_creation_timestamp": t(2.0), "count": 1,
            },
            {
                "severity": "warning", "subject": "battery low",
                "min_revision": 1, "max_revision": 3,
                "min_creation_timestamp": t(1.0), "max_creation_timestamp": t(5.0), "count": 3,
            },
            {
                "severity": "error", "subject": "battery low",
                "min_revision": 3, "max_revision": 3,
                "min_creation_timestamp": t(6.0), "max_creation_timestamp": t(6.0), "count": 1,
            },
        ])
    );
}
