//! The status handler called the way `lambda_http` calls it: a `Router` as a
//! service, given a Lambda request, no network in between.

use http_body_util::BodyExt;
use lambda_http::tower::ServiceExt;
use sensorium_functions::routes;

use crate::helpers::offline_state;

#[tokio::test]
async fn the_status_function_answers_a_lambda_request() {
    // The handler never touches the database; a lazy pool to nowhere proves it.
    let state = offline_state("production", "release");
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
