//! `/networks/{n}/sensors/{s}/configurations`: revisions, the outbox, cursor pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::helpers::scene::Scene;
use crate::helpers::{TestApp, count, error};
use sensorium_shared::publisher::{BoxFuture, OutboxTrigger};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Counts how often the handlers woke the outbox.
#[derive(Default)]
struct RecordingOutbox {
    wakes: AtomicUsize,
}

impl OutboxTrigger for RecordingOutbox {
    fn wake(&self) -> BoxFuture<'_, ()> {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

async fn create_configurations(app: &TestApp, scene: &Scene, count: i64) {
    for index in 0..count {
        let (status, body) = scene.post_configuration(app, json!({"index": index})).await;
        assert_eq!((status, body), (201, json!({"revision": index})));
    }
}

fn revisions(page: &Value) -> Vec<i64> {
    page.as_array()
        .unwrap()
        .iter()
        .map(|configuration| configuration["revision"].as_i64().unwrap())
        .collect()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_configuration_returns_201_stores_it_unpublished_and_wakes_the_outbox(
    pool: PgPool,
) {
    let outbox = Arc::new(RecordingOutbox::default());
    let app = TestApp::spawn_with_outbox(pool, outbox.clone()).await;
    let scene = Scene::create(&app).await;
    let value = json!({"interval": 60, "nested": {"list": [1, "two", null]}, "big": 1.5e300});
    let (status, body) = scene.post_configuration(&app, value.clone()).await;
    assert_eq!((status, body), (201, json!({"revision": 0})));
    assert_eq!(outbox.wakes.load(Ordering::SeqCst), 1);
    let (stored, revision, published): (Value, i32, bool) = sqlx::query_as(
        "SELECT value, revision, publication_timestamp IS NOT NULL FROM configuration",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((stored, revision, published), (value.clone(), 0, false));

    let (status, _) = scene.post_configuration(&app, json!({})).await;
    assert_eq!(status, 201);
    let (status, page) = app
        .get(&scene.sensor_path("/configurations"), scene.token())
        .await;
    assert_eq!(status, 200);
    assert_eq!(revisions(&page), [0, 1]);
    let first = page[0].as_object().unwrap();
    assert_eq!(first["value"], value);
    assert!(first["creation_timestamp"].as_f64().unwrap() > 1.7e9);
    for field in [
        "publication_timestamp",
        "acknowledgement_timestamp",
        "receipt_timestamp",
        "success",
    ] {
        assert_eq!(first[field], Value::Null, "{field}");
    }
    assert_eq!(first.len(), 7);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn configurations_that_are_not_json_objects_return_400(pool: PgPool) {
    let outbox = Arc::new(RecordingOutbox::default());
    let app = TestApp::spawn_with_outbox(pool, outbox.clone()).await;
    let scene = Scene::create(&app).await;
    for body in [
        json!([]),
        json!([{"a": 1}]),
        json!("text"),
        json!(1),
        json!(true),
        json!(null),
    ] {
        let (status, answer) = scene.post_configuration(&app, body.clone()).await;
        assert_eq!((status, answer), error(400), "{body}");
    }
    for raw in ["", "{", "{\"a\": 1} {}", "not json"] {
        let response = app
            .client
            .post(app.url(&scene.sensor_path("/configurations")))
            .bearer_auth(&scene.user.access_token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{raw:?}");
    }
    let configurations = count(&app.pool, "SELECT count(*) FROM configuration").await;
    assert_eq!(configurations, 0);
    assert_eq!(outbox.wakes.load(Ordering::SeqCst), 0);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_configuration_over_100_kib_returns_413_and_one_at_the_limit_is_stored(pool: PgPool) {
    let outbox = Arc::new(RecordingOutbox::default());
    let app = TestApp::spawn_with_outbox(pool, outbox.clone()).await;
    let scene = Scene::create(&app).await;
    // {"v":"xxx…"} is 8 bytes around the string; the limit counts compact JSON, so
    // spacing in the request does not count.
    let limit = 100 * 1024;
    let at_limit = json!({"v": "x".repeat(limit - 8)});
    let over = json!({"v": "x".repeat(limit - 7)});
    let (status, answer) = scene.post_configuration(&app, over).await;
    assert_eq!((status, answer), error(413));
    let (status, _) = scene.post_configuration(&app, at_limit).await;
    assert_eq!(status, 201);
    let sizes: Vec<i32> = sqlx::query_scalar("SELECT length(value::text) FROM configuration")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        sizes.len(),
        1,
        "only the configuration within the limit is stored"
    );
    assert_eq!(outbox.wakes.load(Ordering::SeqCst), 1);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn configurations_holding_u0000_return_400_and_store_nothing(pool: PgPool) {
    let outbox = Arc::new(RecordingOutbox::default());
    let app = TestApp::spawn_with_outbox(pool, outbox.clone()).await;
    let scene = Scene::create(&app).await;
    // PostgreSQL cannot store U+0000 in text or jsonb: in a value, deep in a list, in a key.
    for body in [
        json!({"name": "a\u{0}b"}),
        json!({"nested": {"list": [1, "\u{0}"]}}),
        json!({"key\u{0}": 1}),
    ] {
        let (status, answer) = scene.post_configuration(&app, body.clone()).await;
        assert_eq!((status, answer), error(400), "{body}");
    }
    // The same text escaped once more is no U+0000, and is stored.
    let (status, _) = scene
        .post_configuration(&app, json!({"path": "C:\\u0000"}))
        .await;
    assert_eq!(status, 201);
    let stored: Vec<Value> = sqlx::query_scalar("SELECT value FROM configuration")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, vec![json!({"path": "C:\\u0000"})]);
    assert_eq!(outbox.wakes.load(Ordering::SeqCst), 1);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn concurrent_configuration_creates_get_revisions_0_to_23(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let url = app.url(&scene.sensor_path("/configurations"));
    let mut creates = tokio::task::JoinSet::new();
    for index in 0..24 {
        let request = app
            .client
            .post(&url)
            .bearer_auth(&scene.user.access_token)
            .json(&json!({"index": index}));
        creates.spawn(async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["revision"]
                .as_i64()
                .unwrap()
        });
    }
    let mut returned = creates.join_all().await;
    returned.sort_unstable();
    assert_eq!(returned, (0..24).collect::<Vec<_>>());
    let stored: Vec<i32> =
        sqlx::query_scalar("SELECT revision FROM configuration ORDER BY revision")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, (0..24).collect::<Vec<_>>());
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn seventy_configurations_page_forwards_and_backwards(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    create_configurations(&app, &scene, 70).await;
    let path = scene.sensor_path("/configurations");
    let page = |query: &str| {
        let path = format!("{path}{query}");
        let app = &app;
        let token = scene.token();
        async move {
            let (status, body) = app.get(&path, token).await;
            assert_eq!(status, 200, "{path}: {body}");
            revisions(&body)
        }
    };
    // Forwards: the oldest 64, then the remaining 6, then nothing.
    assert_eq!(page("").await, (0..64).collect::<Vec<_>>());
    assert_eq!(page("?direction=next").await, (0..64).collect::<Vec<_>>());
    assert_eq!(page("?revision=63").await, (64..70).collect::<Vec<_>>());
    assert_eq!(
        page("?direction=next&revision=63").await,
        (64..70).collect::<Vec<_>>()
    );
    assert_eq!(page("?revision=69").await, Vec::<i64>::new());
    // Backwards: the newest 64 in ascending order, then the oldest 6, then nothing.
    assert_eq!(
        page("?direction=previous").await,
        (6..70).collect::<Vec<_>>()
    );
    assert_eq!(
        page("?direction=previous&revision=6").await,
        (0..6).collect::<Vec<_>>()
    );
    assert_eq!(
        page("?direction=previous&revision=0").await,
        Vec::<i64>::new()
    );
    // The cursor is excluded and need not exist.
    assert_eq!(
        page("?direction=previous&revision=10").await,
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(page("?revision=1000").await, Vec::<i64>::new());
    assert_eq!(
        page("?direction=previous&revision=1000").await,
        (6..70).collect::<Vec<_>>()
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn invalid_page_parameters_return_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    for query in [
        "?direction=up",
        "?direction=",
        "?direction=Next",
        "?revision=-1",
        "?revision=1.5",
        "?revision=2147483648",
        "?revision=x",
        "?revision=",
        "?revision=1&revision=2",
        "?creation_timestamp=1",
        "?limit=10",
    ] {
        let (status, body) = app
            .get(
                &scene.sensor_path(&format!("/configurations{query}")),
                scene.token(),
            )
            .await;
        assert_eq!((status, body), error(400), "{query}");
    }
}
