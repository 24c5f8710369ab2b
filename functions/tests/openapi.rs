//! The OpenAPI document and the route table describe the same API, and every route
//! of the table is served by its function and by the harness's router.

use std::collections::BTreeSet;
use std::sync::Arc;

use lambda_http::tower::ServiceExt;
use sensorium_functions::AppState;
use sensorium_functions::routes::{self, ROUTES};
use sensorium_shared::publisher::ScheduledOnly;
use sensorium_shared::settings::Deployment;

const OPENAPI: &str = include_str!("../openapi.json");
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn the_openapi_document_declares_exactly_the_route_table() {
    let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut declared = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            if HTTP_METHODS.contains(&method.as_str()) {
                declared.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(declared, served);
    assert_eq!(
        served.len(),
        ROUTES.len(),
        "the route table repeats a route"
    );
}

/// A state whose pool never connects: every request below is refused before a query.
fn offline_state() -> AppState {
    let pool =
        sensorium_shared::database::connect("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
    let deployment = Deployment {
        environment: "test".into(),
        commit_sha: "abc".into(),
        branch_name: "main".into(),
    };
    AppState::new(pool, deployment, Arc::new(ScheduledOnly))
}

#[tokio::test]
async fn every_route_is_served_by_its_function_and_by_the_merged_router() {
    let identifier = "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c";
    for (method, path, function) in ROUTES {
        let uri = path
            .replace("{network_identifier}", identifier)
            .replace("{sensor_identifier}", identifier);
        let routers = [
            routes::function_router(function, offline_state()).unwrap(),
            routes::router(offline_state()),
        ];
        for router in routers {
            // No body and no token: 400 or 401 (200 for the status), never 404 or 405.
            let request = lambda_http::http::Request::builder()
                .method(*method)
                .uri(&uri)
                .body(lambda_http::Body::Empty)
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert!(
                [200, 400, 401].contains(&response.status().as_u16()),
                "{method} {path} ({function}): {}",
                response.status()
            );
        }
    }
    assert!(routes::function_router("nothing", offline_state()).is_none());
}
