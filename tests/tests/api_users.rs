//! `POST /users`, `POST /authentication`, and what every route shares: bearer
//! tokens, body validation and the body size limit.

mod common;
mod fixtures;

use common::TestApp;
use fixtures::{PASSWORD, create_network, create_user};
use sensorium_shared::domain::{AccessToken, Identifier};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_user_returns_201_with_a_token_and_stores_only_hashes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app
        .post(
            "/users",
            None,
            json!({"user_name": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body.as_object().unwrap().len(), 2);
    let user_identifier = body["user_identifier"].as_str().unwrap();
    let access_token = body["access_token"].as_str().unwrap();
    assert!(Identifier::parse(user_identifier).is_ok());
    assert!(AccessToken::parse(access_token).is_ok());

    let (name, password_hash): (String, String) =
        sqlx::query_as(r#"SELECT name, password_hash FROM "user""#)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(name, "alice");
    assert!(
        password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{password_hash}"
    );
    assert!(!password_hash.contains(PASSWORD));
    let token_hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT access_token_hash FROM session")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let token_hash = AccessToken::parse(access_token).unwrap().hash();
    assert_eq!(token_hashes, vec![token_hash]);
    assert_ne!(token_hashes[0], access_token.as_bytes());

    // The token works.
    let (status, _) = app.get("/networks", Some(access_token)).await;
    assert_eq!(status, 200);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_user_with_a_taken_name_returns_409(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    create_user(&app, "alice").await;
    let (status, body) = app
        .post(
            "/users",
            None,
            json!({"user_name": "alice", "password": "another password"}),
        )
        .await;
    assert_eq!((status, body), (409, json!({"details": "Conflict"})));
    let users: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "user""#)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn invalid_user_bodies_return_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let bodies = [
        json!({"user_name": "Alice", "password": PASSWORD}),
        json!({"user_name": "al--ice", "password": PASSWORD}),
        json!({"user_name": "a".repeat(65), "password": PASSWORD}),
        json!({"user_name": "alice", "password": "short"}),
        json!({"user_name": "alice", "password": "x".repeat(257)}),
        json!({"user_name": "alice"}),
        json!({"user_name": "alice", "password": PASSWORD, "admin": true}),
        json!({"user_name": 7, "password": PASSWORD}),
        json!(["alice", PASSWORD]),
        json!("alice"),
        json!(null),
    ];
    for body in bodies {
        for path in ["/users", "/authentication"] {
            let (status, answer) = app.post(path, None, body.clone()).await;
            assert_eq!(
                (status, answer),
                (400, json!({"details": "Bad Request"})),
                "{path} {body}"
            );
        }
    }
    let response = app
        .client
        .post(app.url("/users"))
        .header("content-type", "application/json")
        .body("{\"user_name\": \"alice\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let users: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "user""#)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn authenticating_returns_201_with_a_new_token_each_time(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let user = create_user(&app, "alice").await;
    let credentials = json!({"user_name": "alice", "password": PASSWORD});
    let (status, first) = app.post("/authentication", None, credentials.clone()).await;
    assert_eq!(status, 201);
    let (status, second) = app.post("/authentication", None, credentials).await;
    assert_eq!(status, 201);
    assert_eq!(first["user_identifier"], user.user_identifier.as_str());
    assert_eq!(second["user_identifier"], user.user_identifier.as_str());
    let tokens = [
        user.access_token.as_str(),
        first["access_token"].as_str().unwrap(),
        second["access_token"].as_str().unwrap(),
    ];
    assert_ne!(tokens[0], tokens[1]);
    assert_ne!(tokens[1], tokens[2]);
    // Every token a user was given stays valid.
    for token in tokens {
        assert_eq!(app.get("/networks", Some(token)).await.0, 200);
    }
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM session")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 3);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn authenticating_with_a_wrong_password_returns_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    create_user(&app, "alice").await;
    let (status, body) = app
        .post(
            "/authentication",
            None,
            json!({"user_name": "alice", "password": "wrong password"}),
        )
        .await;
    assert_eq!((status, body), (401, json!({"details": "Unauthorized"})));
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn authenticating_an_unknown_user_returns_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app
        .post(
            "/authentication",
            None,
            json!({"user_name": "nobody", "password": PASSWORD}),
        )
        .await;
    assert_eq!((status, body), (404, json!({"details": "Not Found"})));
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn missing_malformed_and_unknown_tokens_return_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let user = create_user(&app, "alice").await;
    let network = create_network(&app, &user.access_token, "garden").await;
    let unknown_token = "ab".repeat(32);
    let headers = [
        None,
        Some(user.access_token.clone()),              // no scheme
        Some(format!("Basic {}", user.access_token)), // another scheme
        Some(format!("Bearer {}", &user.access_token[1..])), // too short
        Some(format!("Bearer {}", user.access_token.to_uppercase())),
        Some(format!("Bearer {unknown_token}")),
        Some("Bearer".into()),
    ];
    let paths = [
        "/networks".to_string(),
        format!("/networks/{network}"),
        format!("/networks/{network}/sensors"),
    ];
    for header in &headers {
        for path in &paths {
            let mut request = app.client.get(app.url(path));
            if let Some(header) = header {
                request = request.header("authorization", header);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{header:?} {path}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body, json!({"details": "Unauthorized"}));
        }
        let mut request = app
            .client
            .post(app.url("/networks"))
            .json(&json!({"network_name": "lab"}));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{header:?}");
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn validation_comes_before_authentication(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, _) = app
        .post("/networks", None, json!({"network_name": "Not Valid"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/networks/not-an-identifier/sensors", None).await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/networks?page=2", None).await;
    assert_eq!(status, 400);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn bodies_over_256_kib_return_413(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let user = create_user(&app, "alice").await;
    let network = create_network(&app, &user.access_token, "garden").await;
    let sensor = fixtures::create_sensor(&app, &user.access_token, &network, "greenhouse").await;
    let path = format!("/networks/{network}/sensors/{sensor}/configurations");
    // Just over the limit, and just under it (JSON overhead included).
    let large = json!({"padding": "x".repeat(256 * 1024)});
    let (status, body) = app.post(&path, Some(&user.access_token), large).await;
    assert_eq!(
        (status, body),
        (413, json!({"details": "Payload Too Large"}))
    );
    let fitting = json!({"padding": "x".repeat(256 * 1024 - 20)});
    let (status, _) = app.post(&path, Some(&user.access_token), fitting).await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(
            "/users",
            None,
            json!({"user_name": "bob", "password": "x".repeat(300 * 1024)}),
        )
        .await;
    assert_eq!(status, 413);
}
