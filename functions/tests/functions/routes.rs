//! The OpenAPI document and the route table describe the same API, every route of the
//! table is served by its function and by the harness's router, and a function reads
//! its query from an API Gateway event.

use std::collections::BTreeSet;

use lambda_http::tower::ServiceExt;
use sensorium_functions::routes::export::EXPORT_ROUTES;
use sensorium_functions::routes::{self, ROUTES, RouteFunction};

use crate::helpers::offline_state;

const OPENAPI: &str = include_str!("../../../docs/openapi.json");
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
        .map(|(method, path, _)| (*method, *path))
        .chain(EXPORT_ROUTES.iter().copied())
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(declared, served);
    assert_eq!(
        served.len(),
        ROUTES.len() + EXPORT_ROUTES.len(),
        "the route table repeats a route"
    );
}

#[tokio::test]
async fn every_route_is_served_by_its_function_and_by_the_merged_router() {
    let identifier = "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c";
    for (method, path, function) in ROUTES {
        let uri = path
            .replace("{network_identifier}", identifier)
            .replace("{sensor_identifier}", identifier);
        let routers = [
            routes::function_router(*function, offline_state("test", "main")),
            routes::router(offline_state("test", "main")),
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
                "{method} {path} ({function:?}): {}",
                response.status()
            );
        }
    }
}

#[tokio::test]
async fn the_merged_router_serves_the_dashboard_beside_the_api() {
    for (uri, status) in [
        ("/", 307),
        ("/dashboard/", 200),
        ("/dashboard/js/app.js", 200),
        ("/dashboard/nothing", 404),
        ("/status", 200),
    ] {
        let request = lambda_http::http::Request::builder()
            .uri(uri)
            .body(lambda_http::Body::Empty)
            .unwrap();
        let response = routes::router(offline_state("test", "main"))
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{uri}");
    }
}

/// An API Gateway HTTP API (v2) event for `GET {path}?{query}`, as the gateway sends it.
fn gateway_event(path: &str, query: &str) -> lambda_http::Request {
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "api.example.com", "x-forwarded-proto": "https"},
        "isBase64Encoded": false,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test"
            },
            "requestId": "request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795856400000u64
        }
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test]
async fn a_function_validates_the_query_of_a_gateway_event() {
    let identifier = "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c";
    let path = format!("/networks/{identifier}/sensors/{identifier}/measurements");
    // A valid query passes validation and stops at the missing token; an invalid one
    // is refused first, which proves the function saw it.
    for (query, status) in [
        ("direction=previous&creation_timestamp=1683645000.5", 401),
        ("direction=sideways", 400),
        ("creation_timestamp=-1", 400),
        ("limit=5", 400),
    ] {
        let router =
            routes::function_router(RouteFunction::Measurements, offline_state("test", "main"));
        let response = router.oneshot(gateway_event(&path, query)).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{query}");
    }
}

#[tokio::test]
async fn the_dashboard_function_serves_its_files_from_a_gateway_event() {
    use http_body_util::BodyExt;
    let router = routes::dashboard::router::<()>();
    let response = router
        .oneshot(gateway_event("/dashboard/js/app.js", ""))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/js/app.js")).unwrap();
    assert_eq!(body.as_ref(), file.as_slice());
}

#[tokio::test]
async fn the_default_route_answers_405_on_a_known_path_and_404_elsewhere() {
    use http_body_util::BodyExt;
    let identifier = "a4ac4e7c-47e2-4c4a-8f1a-0b0e8e3a2b1c";
    let mut cases: Vec<(&str, String, u16)> = vec![
        ("GET", "/nowhere".into(), 404),
        (
            "GET",
            format!("/networks/{identifier}/sensors/{identifier}/nothing"),
            404,
        ),
    ];
    for (_, path, _) in ROUTES {
        let uri = path
            .replace("{network_identifier}", identifier)
            .replace("{sensor_identifier}", identifier);
        // No route of the table takes PATCH.
        cases.push(("PATCH", uri, 405));
    }
    for (method, uri, status) in cases {
        let request = lambda_http::http::Request::builder()
            .method(method)
            .uri(&uri)
            .body(lambda_http::Body::Empty)
            .unwrap();
        let response = routes::fallback_router().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {uri}");
        if status == 405 {
            let allow = response.headers()["allow"].to_str().unwrap().to_owned();
            let declared: BTreeSet<&str> = ROUTES
                .iter()
                .filter(|(_, path, _)| {
                    path.replace("{network_identifier}", identifier)
                        .replace("{sensor_identifier}", identifier)
                        == uri
                })
                .map(|(method, ..)| *method)
                .collect();
            for method in declared {
                assert!(
                    allow.contains(method),
                    "{uri}: Allow {allow} lacks {method}"
                );
            }
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["details"].is_string(), "{method} {uri}: {body}");
    }
}
