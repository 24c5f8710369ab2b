//! `/networks` and `/networks/{network_identifier}`: networks, their overview, and the
//! checks every route on a network makes (404 before 403).

use crate::helpers::scene::{
    Scene, create_network, create_sensor, create_user, now, post_network, store_measurements,
};
use crate::helpers::{TestApp, count, error};
use serde_json::{Value, json};
use sqlx::PgPool;

const MISSING: &str = "00000000-0000-4000-8000-000000000000";

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_network_returns_201_and_gives_the_creator_permission(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let user = create_user(&app, "alice").await;
    let (status, body) = post_network(&app, &user.access_token, "garden").await;
    assert_eq!(status, 201);
    assert_eq!(body.as_object().unwrap().len(), 1);
    let network = body["network_identifier"].as_str().unwrap();
    let permitted: Vec<(uuid::Uuid, uuid::Uuid)> =
        sqlx::query_as("SELECT user_identifier, network_identifier FROM permission")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(permitted.len(), 1);
    assert_eq!(permitted[0].0.to_string(), user.user_identifier);
    assert_eq!(permitted[0].1.to_string(), network);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_network_with_a_taken_name_returns_409(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = create_user(&app, "alice").await;
    let bob = create_user(&app, "bob").await;
    create_network(&app, &alice.access_token, "garden").await;
    let (status, body) = post_network(&app, &bob.access_token, "garden").await;
    assert_eq!((status, body), error(409));
    let networks = count(&app.pool, "SELECT count(*) FROM network").await;
    assert_eq!(networks, 1);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn invalid_network_and_sensor_bodies_return_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let bodies = [
        json!({"network_name": "Garden"}),
        json!({"network_name": ""}),
        json!({"network_name": "garden", "public": true}),
        json!({"network_name": 1}),
        json!({}),
        json!([]),
        json!("garden"),
    ];
    for body in bodies {
        let (status, _) = app.post("/networks", scene.token(), body.clone()).await;
        assert_eq!(status, 400, "{body}");
        // The same mistakes in a sensor body.
        let sensor_body: Value =
            serde_json::from_str(&body.to_string().replace("network_name", "sensor_name")).unwrap();
        let (status, _) = app
            .post(
                &format!("/networks/{}/sensors", scene.network),
                scene.token(),
                sensor_body.clone(),
            )
            .await;
        assert_eq!(status, 400, "{sensor_body}");
        let (status, _) = app
            .put(&scene.sensor_path(""), scene.token(), sensor_body.clone())
            .await;
        assert_eq!(status, 400, "{sensor_body}");
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn listing_networks_returns_only_the_callers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = create_user(&app, "alice").await;
    let bob = create_user(&app, "bob").await;
    let garden = create_network(&app, &alice.access_token, "garden").await;
    let attic = create_network(&app, &alice.access_token, "attic").await;
    create_network(&app, &bob.access_token, "cellar").await;
    let (status, body) = app.get("/networks", Some(&alice.access_token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            {"network_identifier": attic, "network_name": "attic"},
            {"network_identifier": garden, "network_name": "garden"},
        ])
    );
    let carol = create_user(&app, "carol").await;
    assert_eq!(
        app.get("/networks", Some(&carol.access_token)).await,
        (200, json!([]))
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn reading_a_network_returns_4_hour_measurement_counts_per_sensor(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let quiet = create_sensor(&app, &scene.user.access_token, &scene.network, "quiet").await;
    // Three measurements in one 4-hour bucket, one in the next, one outside the window.
    let bucket = (now() / 14400.0).floor() * 14400.0 - 5.0 * 14400.0;
    let value: &[(&str, f64)] = &[("temperature", 20.0)];
    store_measurements(
        &app,
        &scene.sensor,
        &[
            (bucket + 1.0, value),
            (bucket + 2.0, value),
            (bucket + 14399.0, value),
            (bucket + 14400.0, value),
            (now() - 30.0 * 86400.0, value),
        ],
    )
    .await;
    let body = scene.overview(&app).await;
    assert_eq!(
        body,
        json!([
            {
                "sensor_identifier": scene.sensor,
                "sensor_name": "greenhouse",
                "bucket_timestamps": [bucket, bucket + 14400.0],
                "measurement_counts": [3, 1],
            },
            {
                "sensor_identifier": quiet,
                "sensor_name": "quiet",
                "bucket_timestamps": [],
                "measurement_counts": [],
            },
        ])
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_network_overview_counts_the_last_28_days(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let day = 86400.0;
    let bucket_of = |timestamp: f64| (timestamp / 14400.0).floor() * 14400.0;
    let value: &[(&str, f64)] = &[("temperature", 20.0)];
    let (eight, twenty_seven) = (now() - 8.0 * day, now() - 27.0 * day);
    // The bucket that holds the window's start counts, the one before it does not,
    // wherever the day (a row of counts) starts; the window ends now, so a clock ahead
    // (a day, or the next bucket) counts in no bucket of it.
    let edge = bucket_of(now() - 28.0 * day);
    store_measurements(
        &app,
        &scene.sensor,
        &[
            (now() - 29.0 * day, value),
            (edge - 1.0, value),
            (edge + 1.0, value),
            (edge + 2.0, value),
            (twenty_seven, value),
            (eight, value),
            (bucket_of(now()) + 14_400.0, value),
            (now() + day, value),
        ],
    )
    .await;
    let body = scene.overview(&app).await;
    assert_eq!(
        body[0]["bucket_timestamps"],
        json!([edge, bucket_of(twenty_seven), bucket_of(eight)])
    );
    assert_eq!(body[0]["measurement_counts"], json!([2, 1, 1]));
}

/// Every route on a network or sensor: method, path after `/networks/{n}`, body.
fn network_routes(sensor: &str) -> Vec<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method;
    let sensor_path = format!("/sensors/{sensor}");
    vec![
        (Method::GET, String::new(), None),
        (Method::GET, "/sensors".into(), None),
        (
            Method::POST,
            "/sensors".into(),
            Some(json!({"sensor_name": "new"})),
        ),
        (Method::GET, sensor_path.clone(), None),
        (
            Method::PUT,
            sensor_path.clone(),
            Some(json!({"sensor_name": "new"})),
        ),
        (Method::POST, format!("{sensor_path}/credentials"), None),
        (Method::DELETE, format!("{sensor_path}/credentials"), None),
        (
            Method::POST,
            format!("{sensor_path}/configurations"),
            Some(json!({"a": 1})),
        ),
        (Method::GET, format!("{sensor_path}/configurations"), None),
        (Method::GET, format!("{sensor_path}/measurements"), None),
        (
            Method::GET,
            format!("{sensor_path}/measurements?aggregate=true"),
            None,
        ),
        (Method::GET, format!("{sensor_path}/logs"), None),
        (Method::GET, format!("{sensor_path}/logs/aggregates"), None),
    ]
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn another_users_network_returns_403(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let mallory = create_user(&app, "mallory").await;
    for (method, tail, body) in network_routes(&scene.sensor) {
        let path = format!("/networks/{}{tail}", scene.network);
        let (status, answer) = app
            .request(method.clone(), &path, Some(&mallory.access_token), body)
            .await;
        assert_eq!((status, answer), error(403), "{method} {path}");
    }
    let unchanged: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sensor), (SELECT count(*) FROM configuration)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(unchanged, (1, 0));
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_missing_network_returns_404_even_without_permission(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let mallory = create_user(&app, "mallory").await;
    for token in [&scene.user.access_token, &mallory.access_token] {
        for (method, tail, body) in network_routes(&scene.sensor) {
            let path = format!("/networks/{MISSING}{tail}");
            let (status, answer) = app.request(method.clone(), &path, Some(token), body).await;
            assert_eq!((status, answer), error(404), "{method} {path}");
        }
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_missing_sensor_or_a_sensor_of_another_network_returns_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let farm = create_network(&app, &scene.user.access_token, "farm").await;
    let barn = create_sensor(&app, &scene.user.access_token, &farm, "barn").await;
    let mallory = create_user(&app, "mallory").await;
    for sensor in [MISSING, barn.as_str()] {
        for (method, tail, body) in network_routes(sensor) {
            if !tail.starts_with("/sensors/") {
                continue;
            }
            let path = format!("/networks/{}{tail}", scene.network);
            let (status, _) = app
                .request(method.clone(), &path, scene.token(), body.clone())
                .await;
            assert_eq!(status, 404, "{method} {path}");
            // Existence is checked before permission.
            let (status, _) = app
                .request(method.clone(), &path, Some(&mallory.access_token), body)
                .await;
            assert_eq!(status, 404, "{method} {path}");
        }
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn malformed_identifiers_in_paths_return_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let malformed = [
        "garden",
        "A4AC4E7C-47E2-4C4A-8F1A-0B0E8E3A2B1C",
        "a4ac4e7c-47e2-1c4a-8f1a-0b0e8e3a2b1c",
        "a4ac4e7c47e24c4a8f1a0b0e8e3a2b1c",
    ];
    for identifier in malformed {
        let (status, _) = app
            .get(&format!("/networks/{identifier}"), scene.token())
            .await;
        assert_eq!(status, 400, "{identifier}");
        for (method, tail, body) in network_routes(identifier) {
            if !tail.starts_with("/sensors/") {
                continue;
            }
            let path = format!("/networks/{}{tail}", scene.network);
            let (status, answer) = app
                .request(method.clone(), &path, scene.token(), body)
                .await;
            assert_eq!((status, answer), error(400), "{method} {path}");
        }
    }
}
