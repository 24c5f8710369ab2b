//! `GET /status`, and what the router answers for unknown routes and methods.

use crate::helpers::{TestApp, error};
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn status_reports_the_deployment_and_start_time(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let before = chrono::Utc::now().timestamp() as f64;
    let (status, body) = app.get("/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["environment"], "test");
    assert_eq!(body["commit_sha"], "0123abc");
    assert_eq!(body["branch_name"], "main");
    let start = body["start_timestamp"].as_f64().expect("a number");
    assert!((before - 60.0..=before + 1.0).contains(&start), "{start}");
    assert_eq!(body.as_object().unwrap().len(), 4);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn unknown_routes_get_404_and_wrong_methods_405_as_json(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app.get("/nowhere", None).await;
    assert_eq!((status, body), error(404));
    let (status, body) = app.post("/status", None, serde_json::json!({})).await;
    assert_eq!((status, body), error(405));
}
