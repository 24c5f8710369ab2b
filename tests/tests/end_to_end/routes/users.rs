//! `POST /users`, `POST /authentication`, `DELETE /authentication`, and what every
//! route shares: bearer tokens (their expiry and revocation), login throttling, body
//! validation, the content type and the body size limit.

use std::time::Duration;

use crate::helpers::scene::{PASSWORD, Scene, create_network, create_user, post_credentials};
use crate::helpers::{TestApp, count, error};
use chrono::TimeDelta;
use sensorium_functions::access_cache::ACCESS_CACHE_TIME_TO_LIVE;
use sensorium_shared::domain::{AccessToken, Identifier, Timestamp};
use sensorium_shared::testing::eventually;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_user_returns_201_with_a_token_and_stores_only_hashes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = post_credentials(&app, "/users", "alice", PASSWORD).await;
    assert_eq!(status, 201);
    assert_eq!(body.as_object().unwrap().len(), 3);
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
    let (status, body) = post_credentials(&app, "/users", "alice", "another password").await;
    assert_eq!((status, body), error(409));
    let users = count(&app.pool, r#"SELECT count(*) FROM "user""#).await;
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
            assert_eq!((status, answer), error(400), "{path} {body}");
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
    let users = count(&app.pool, r#"SELECT count(*) FROM "user""#).await;
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
    let sessions = count(&app.pool, "SELECT count(*) FROM session").await;
    assert_eq!(sessions, 3);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn authenticating_with_a_wrong_password_returns_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    create_user(&app, "alice").await;
    let (status, body) = post_credentials(&app, "/authentication", "alice", "wrong password").await;
    assert_eq!((status, body), error(401));
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn authenticating_an_unknown_user_returns_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = post_credentials(&app, "/authentication", "nobody", PASSWORD).await;
    assert_eq!((status, body), error(404));
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
    let sensor =
        crate::helpers::scene::create_sensor(&app, &user.access_token, &network, "greenhouse")
            .await;
    let path = format!("/networks/{network}/sensors/{sensor}/configurations");
    // Just over the limit, and just under it (JSON overhead included).
    let large = json!({"padding": "x".repeat(256 * 1024)});
    let (status, body) = app.post(&path, Some(&user.access_token), large).await;
    assert_eq!((status, body), error(413));
    // Within the body limit, the route's own check answers: a configuration is capped
    // at 100 KiB, so this one is refused with 413 by that check, and one at 100 KiB is
    // taken (routes/configurations.rs).
    let fitting = json!({"padding": "x".repeat(256 * 1024 - 20)});
    let (status, _) = app.post("/users", None, fitting).await;
    assert_eq!(
        status, 400,
        "a body within 256 KiB reaches the route's validation"
    );
    let (status, _) = post_credentials(&app, "/users", "bob", &"x".repeat(300 * 1024)).await;
    assert_eq!(status, 413);
}

/// Seconds from now until the `expiration_timestamp` of an answer that issued a token.
fn seconds_until_expiration(body: &Value) -> f64 {
    body["expiration_timestamp"].as_f64().unwrap() - Timestamp::now().as_seconds()
}

/// The stored expiration of the session of `token`, in seconds since the epoch.
async fn stored_expiration(app: &TestApp, token: &str) -> f64 {
    let hash = AccessToken::parse(token).unwrap().hash();
    sqlx::query_scalar(
        "SELECT extract(epoch FROM expiration_timestamp)::float8 FROM session WHERE access_token_hash = $1",
    )
    .bind(hash)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn issued_tokens_expire_after_30_days_and_say_so(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let credentials = json!({"user_name": "alice", "password": PASSWORD});
    let (status, created) = app.post("/users", None, credentials.clone()).await;
    assert_eq!(status, 201);
    let (status, logged_in) = app.post("/authentication", None, credentials).await;
    assert_eq!(status, 201);
    let thirty_days = 30.0 * 24.0 * 3600.0;
    for body in [created, logged_in] {
        let remaining = seconds_until_expiration(&body);
        assert!(
            (thirty_days - 60.0..=thirty_days).contains(&remaining),
            "{body}"
        );
        let token = body["access_token"].as_str().unwrap();
        let stored = stored_expiration(&app, token).await;
        assert!((stored - body["expiration_timestamp"].as_f64().unwrap()).abs() < 1e-3);
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_token_lifetime_is_a_setting_of_the_deployment(pool: PgPool) {
    let state = TestApp::state(pool).with_token_lifetime(TimeDelta::days(2));
    let app = TestApp::spawn_state(state).await;
    let (status, body) = post_credentials(&app, "/users", "alice", PASSWORD).await;
    assert_eq!(status, 201);
    let remaining = seconds_until_expiration(&body);
    assert!(
        (2.0 * 86400.0 - 60.0..=2.0 * 86400.0).contains(&remaining),
        "{body}"
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn an_expired_token_returns_401(pool: PgPool) {
    let scene = Scene::create(&TestApp::spawn(pool.clone()).await).await;
    sqlx::query("UPDATE session SET expiration_timestamp = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    // An instance that has not let the token through yet: the one that created the
    // scene trusts its decisions until the expiration it read, as it should.
    let app = TestApp::spawn(pool).await;
    for path in ["/networks".to_string(), scene.sensor_path("")] {
        let (status, body) = app.get(&path, scene.token()).await;
        assert_eq!((status, body), error(401), "{path}");
    }
    let (status, _) = app.delete("/authentication", scene.token()).await;
    assert_eq!(status, 401);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_token_stops_working_when_it_expires_even_where_it_was_just_let_through(pool: PgPool) {
    let state = TestApp::state(pool).with_token_lifetime(TimeDelta::seconds(2));
    let app = TestApp::spawn_state(state).await;
    let user = create_user(&app, "alice").await;
    assert_eq!(app.get("/networks", Some(&user.access_token)).await.0, 200);
    // The decision is cached, but not past the token's expiration: the token stops
    // working before the cache's time to live has passed.
    assert!(ACCESS_CACHE_TIME_TO_LIVE > Duration::from_secs(4));
    let refused = eventually(Duration::from_secs(4), || async {
        (app.get("/networks", Some(&user.access_token)).await.0 == 401).then_some(())
    })
    .await;
    assert!(refused.is_some(), "the expired token still works");
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn logging_out_returns_204_and_the_token_stops_working_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let (status, other) = post_credentials(&app, "/authentication", "alice", PASSWORD).await;
    assert_eq!(status, 201);
    let other_token = other["access_token"].as_str().unwrap();
    let paths = [
        "/networks".to_string(),
        format!("/networks/{}", scene.network),
        scene.sensor_path(""),
        scene.sensor_path("/measurements"),
    ];
    // Every path lets the token through once, so that its decisions are cached.
    for path in &paths {
        assert_eq!(app.get(path, scene.token()).await.0, 200, "{path}");
    }

    let response = app
        .client
        .delete(app.url("/authentication"))
        .bearer_auth(&scene.user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());

    for path in &paths {
        let (status, body) = app.get(path, scene.token()).await;
        assert_eq!((status, body), error(401), "{path}");
        assert_eq!(app.get(path, Some(other_token)).await.0, 200, "{path}");
    }
    let (status, body) = app.delete("/authentication", scene.token()).await;
    assert_eq!((status, body), error(401));
    let hash = AccessToken::parse(&scene.user.access_token).unwrap().hash();
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM session WHERE access_token_hash = $1")
        .bind(hash)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(kept, 0);
    let sessions = count(&app.pool, "SELECT count(*) FROM session").await;
    assert_eq!(sessions, 1);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_token_revoked_on_another_instance_stops_working_within_the_cache_time_to_live(
    pool: PgPool,
) {
    let one = TestApp::spawn(pool.clone()).await;
    let another = TestApp::spawn(pool).await;
    let scene = Scene::create(&one).await;
    let path = scene.sensor_path("");
    assert_eq!(another.get(&path, scene.token()).await.0, 200);
    assert_eq!(one.delete("/authentication", scene.token()).await.0, 204);
    let refused = eventually(
        ACCESS_CACHE_TIME_TO_LIVE + Duration::from_secs(1),
        || async { (another.get(&path, scene.token()).await.0 == 401).then_some(()) },
    )
    .await;
    assert!(
        refused.is_some(),
        "the other instance still lets the token through"
    );
}

/// Logs in as `user_name` with `password`; the status and the `Retry-After` header.
async fn log_in(app: &TestApp, user_name: &str, password: &str) -> (u16, Option<u64>) {
    let response = app
        .client
        .post(app.url("/authentication"))
        .json(&json!({"user_name": user_name, "password": password}))
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    (response.status().as_u16(), retry_after)
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn ten_wrong_passwords_within_15_minutes_return_429_even_with_the_right_password(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    create_user(&app, "alice").await;
    create_user(&app, "bob").await;
    for attempt in 0..10 {
        assert_eq!(
            log_in(&app, "alice", "wrong password").await,
            (401, None),
            "attempt {attempt}"
        );
    }
    for password in [PASSWORD, "wrong password"] {
        let (status, retry_after) = log_in(&app, "alice", password).await;
        assert_eq!(status, 429);
        let retry_after = retry_after.expect("a 429 carries Retry-After");
        assert!((890..=900).contains(&retry_after), "{retry_after}");
    }
    let (status, body) = post_credentials(&app, "/authentication", "alice", PASSWORD).await;
    assert_eq!((status, body), error(429));
    // Another name is not throttled, nor is an unknown one told apart from it.
    assert_eq!(log_in(&app, "bob", PASSWORD).await.0, 201);
    assert_eq!(log_in(&app, "carol", PASSWORD).await.0, 404);

    // Once the window has passed, the right password works again.
    sqlx::query(
        r#"
        UPDATE "user" SET login_failure_timestamps = ARRAY(
            SELECT attempt - interval '15 minutes' FROM unnest(login_failure_timestamps) AS attempt
        )
        "#,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(log_in(&app, "alice", PASSWORD).await.0, 201);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn successful_logins_do_not_count_as_failures(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    create_user(&app, "alice").await;
    for _ in 0..9 {
        assert_eq!(log_in(&app, "alice", "wrong password").await.0, 401);
    }
    assert_eq!(log_in(&app, "alice", PASSWORD).await.0, 201);
    // The tenth failure is refused as such; only after it is the name throttled.
    assert_eq!(log_in(&app, "alice", "wrong password").await.0, 401);
    assert_eq!(log_in(&app, "alice", PASSWORD).await.0, 429);
}

/// Logins in flight at once in `concurrent_wrong_passwords_are_throttled_like_sequential_ones`:
/// fewer than the hashing queue admits on any machine (9 at the least). Every test of this
/// binary shares that queue, and with 30 at once a test that signed up beside this one
/// was refused (503).
const CONCURRENT_LOGINS: usize = 6;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn concurrent_wrong_passwords_are_throttled_like_sequential_ones(pool: PgPool) {
    let app = std::sync::Arc::new(TestApp::spawn(pool).await);
    create_user(&app, "alice").await;
    // 30 guesses in waves of concurrent ones: the second wave (the 7th to 12th) crosses
    // the threshold of ten at once.
    let mut statuses = Vec::new();
    for _ in 0..30 / CONCURRENT_LOGINS {
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENT_LOGINS {
            let app = std::sync::Arc::clone(&app);
            attempts.spawn(async move { log_in(&app, "alice", "wrong password").await.0 });
        }
        statuses.extend(attempts.join_all().await);
    }
    assert!(
        statuses
            .iter()
            .all(|status| [401, 429, 503].contains(status)),
        "{statuses:?}"
    );
    // Only a 401 checked a password (a 503 is one that a full hashing queue refused,
    // which counts for nothing). However the guesses came, exactly ten are checked
    // before the name is throttled.
    let mut checked = statuses.iter().filter(|status| **status == 401).count();
    loop {
        match log_in(&app, "alice", "wrong password").await.0 {
            401 => checked += 1,
            429 => break,
            status => panic!("{status}"),
        }
    }
    assert_eq!(checked, 10, "{statuses:?}");
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn bodies_without_a_json_content_type_return_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let user = create_user(&app, "alice").await;
    let body = json!({"user_name": "bob", "password": PASSWORD}).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        for (path, token) in [
            ("/users", None),
            ("/authentication", None),
            ("/networks", Some(&user.access_token)),
        ] {
            let mut request = app.client.post(app.url(path)).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 400, "{path} {content_type:?}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer, json!({"details": "Bad Request"}));
        }
    }
    let users = count(&app.pool, r#"SELECT count(*) FROM "user""#).await;
    assert_eq!(users, 1);
    let response = app
        .client
        .post(app.url("/users"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}
