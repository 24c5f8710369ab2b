//! The status handler called the way `lambda_http` calls it: a `Router` as a
//! service, given a Lambda request, no network in between.

use std::sync::Arc;

use http_body_util::BodyExt;
use lambda_http::tower::ServiceExt;
use sensorium_functions::{AppState, routes};
use sensorium_shared::publisher::ScheduledOnly;
use sensorium_shared::settings::Deployment;

#[tokio::test]
async fn the_status_function_answers_a_lambda_request() {
    // The handler never touches the database; a lazy pool to nowhere proves it.
    let pool =
        sensorium_shared::database::connect("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
    let deployment = Deployment {
        environment: "production".into(),
        commit_sha: "abc".into(),
        branch_name: "release".into(),
    };
    let state = AppState::new(pool, deployment, Arc::new(ScheduledOnly));
    let router = routes::function_router(routes::RouteFunction::Status, state);
    let request = lambda_http::http::Request::get("/status")
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["environment"], "production");
    assert_eq!(body["branch_name"], "release");
    assert!(body["start_timestamp"].as_f64().unwrap() > 1.7e9);
}
