//! The authentication and authorization matrix, generated from the route table so that
//! a new route cannot skip it: every route but the public ones, with no token, a
//! malformed, unknown, expired or revoked one, and another user's, answers as the
//! contract says (401, 401, 401, 401, 401, then 403 where the route is on a network,
//! else the other user's own answer), and 404 for a network or sensor that does not
//! exist.

use crate::helpers::scene::{PASSWORD, Scene, create_user, post_credentials};
use crate::helpers::{TestApp, error};
use reqwest::Method;
use sensorium_functions::routes::ROUTES;
use sensorium_shared::domain::{AccessToken, Identifier};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The routes that need no token (docs/rest.md).
const PUBLIC_ROUTES: [(&str, &str); 3] = [
    ("GET", "/status"),
    ("POST", "/users"),
    ("POST", "/authentication"),
];

/// A valid body for each route that takes one; a route missing here is sent without
/// a body, which fails validation (400) before authentication, and so this test.
fn body_of(method: &str, path: &str) -> Option<Value> {
    let body = match (method, path.rsplit('/').next().unwrap()) {
        ("POST", "networks") => json!({"network_name": "lab"}),
        ("POST", "sensors") => json!({"sensor_name": "shed"}),
        ("PUT", "{sensor_identifier}") => json!({"sensor_name": "renamed"}),
        ("POST", "configurations") => json!({"measurement_interval": 60}),
        _ => return None,
    };
    Some(body)
}

/// `path` with the network and sensor identifiers filled in.
fn uri(path: &str, network: &str, sensor: &str) -> String {
    path.replace("{network_identifier}", network)
        .replace("{sensor_identifier}", sensor)
}

/// Sends `method uri` with the route's body and the `Authorization` header `header`;
/// the status, and the JSON body of an error.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    uri: &str,
    header: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(uri));
    if let Some(body) = body_of(method, path) {
        request = request.json(&body);
    }
    if let Some(header) = header {
        request = request.header("authorization", header);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = if status >= 400 {
        response.json().await.unwrap()
    } else {
        Value::Null
    };
    (status, body)
}

/// A new token of `user_name`, by logging in.
async fn log_in(app: &TestApp, user_name: &str) -> String {
    let (status, body) = post_credentials(app, "/authentication", user_name, PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn every_authenticated_route_refuses_what_the_contract_refuses(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    create_user(&app, "bob").await;
    let authenticated: Vec<_> = ROUTES
        .iter()
        .filter(|(method, path, _)| !PUBLIC_ROUTES.contains(&(*method, *path)))
        .collect();
    assert_eq!(authenticated.len(), ROUTES.len() - PUBLIC_ROUTES.len());

    let expired = log_in(&app, "alice").await;
    sqlx::query("UPDATE session SET expiration_timestamp = now() WHERE access_token_hash = $1")
        .bind(AccessToken::parse(&expired).unwrap().hash())
        .execute(&app.pool)
        .await
        .unwrap();
    // The revoked token is let through by every route that reads before it is
    // revoked, so that a cached decision would show.
    let revoked = log_in(&app, "alice").await;
    for (method, path, _) in &authenticated {
        if *method == "GET" {
            let uri = uri(path, &scene.network, &scene.sensor);
            let header = format!("Bearer {revoked}");
            assert_eq!(
                send(&app, method, path, &uri, Some(&header)).await.0,
                200,
                "{path}"
            );
        }
    }
    assert_eq!(app.delete("/authentication", Some(&revoked)).await.0, 204);

    let unknown = "ab".repeat(32);
    for (method, path, _) in &authenticated {
        let uri = uri(path, &scene.network, &scene.sensor);
        let cases = [
            ("no token", None),
            ("malformed", Some("Bearer not-a-token".to_owned())),
            (
                "not bearer",
                Some(format!("Basic {}", scene.user.access_token)),
            ),
            ("unknown", Some(format!("Bearer {unknown}"))),
            ("expired", Some(format!("Bearer {expired}"))),
            ("revoked", Some(format!("Bearer {revoked}"))),
        ];
        for (case, header) in cases {
            assert_eq!(
                send(&app, method, path, &uri, header.as_deref()).await,
                error(401),
                "{method} {path}: {case}"
            );
        }

        // Another user's token (fresh: DELETE /authentication ends it).
        let bob = format!("Bearer {}", log_in(&app, "bob").await);
        let answer = send(&app, method, path, &uri, Some(&bob)).await;
        if path.contains("{network_identifier}") {
            assert_eq!(answer, error(403), "{method} {path}: another user's token");

            // A network or sensor that does not exist, with the owner's token.
            let alice = format!("Bearer {}", scene.user.access_token);
            let missing = Identifier::new().to_string();
            let mut uris = vec![self::uri(path, &missing, &scene.sensor)];
            if path.contains("{sensor_identifier}") {
                uris.push(self::uri(path, &scene.network, &missing));
            }
            for uri in uris {
                assert_eq!(
                    send(&app, method, path, &uri, Some(&alice)).await,
                    error(404),
                    "{method} {uri}"
                );
            }
        } else {
            assert!(
                (200..300).contains(&answer.0),
                "{method} {path}: another user's token is theirs: {answer:?}"
            );
        }
    }
}
