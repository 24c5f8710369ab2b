//! `/networks/{n}/sensors` and `/networks/{n}/sensors/{s}`: creating, listing and
//! renaming sensors, and a sensor's status.

use crate::helpers::scene::{Scene, create_network, create_sensor, now};
use crate::helpers::{TestApp, count, error};
use sensorium_shared::domain::{Identifier, Revision, Timestamp};
use sensorium_shared::queries::outbox::{NewHeartbeat, update_acknowledgements};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_listing_and_renaming_sensors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let sensors = format!("/networks/{}/sensors", scene.network);
    let (status, body) = app
        .post(&sensors, scene.token(), json!({"sensor_name": "attic"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body.as_object().unwrap().len(), 1);
    let attic = body["sensor_identifier"].as_str().unwrap().to_string();
    let (status, body) = app.get(&sensors, scene.token()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            {"sensor_identifier": attic, "sensor_name": "attic", "last_seen_timestamp": null},
            {"sensor_identifier": scene.sensor, "sensor_name": "greenhouse", "last_seen_timestamp": null},
        ])
    );

    let (status, body) = app
        .put(
            &scene.sensor_path(""),
            scene.token(),
            json!({"sensor_name": "hothouse"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"sensor_identifier": scene.sensor}))
    );
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM sensor ORDER BY name")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(names, ["attic", "hothouse"]);
    // Renaming to its own name is no conflict.
    let (status, _) = app
        .put(
            &scene.sensor_path(""),
            scene.token(),
            json!({"sensor_name": "hothouse"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_sensors_status_follows_its_configurations_and_acknowledgements(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let path = scene.sensor_path("");
    let (status, body) = app.get(&path, scene.token()).await;
    assert_eq!(status, 200);
    let created = body["creation_timestamp"].as_f64().unwrap();
    assert!((now() - created).abs() < 60.0, "{body}");
    assert_eq!(
        body,
        json!({
            "sensor_identifier": scene.sensor,
            "sensor_name": "greenhouse",
            "creation_timestamp": created,
            "last_seen_timestamp": null,
            "latest_revision": null,
            "acknowledged_revision": null,
            "credentials_timestamp": null,
        })
    );

    for value in [json!({"a": 0}), json!({"a": 1}), json!({"a": 2})] {
        let (status, _) = scene.post_configuration(&app, value).await;
        assert_eq!(status, 201);
    }
    // Revision 0 acknowledged as applied, 1 as failed: the acknowledged one is 0.
    let sensor = Identifier::parse(&scene.sensor).unwrap();
    let heartbeats: Vec<_> = [(0, true), (1, false)]
        .into_iter()
        .map(|(revision, success)| NewHeartbeat {
            sensor_identifier: sensor,
            revision: Revision::parse(revision).unwrap(),
            timestamp: Timestamp::parse(now()).unwrap(),
            success,
            receipt_timestamp: Timestamp::now(),
        })
        .collect();
    update_acknowledgements(&app.pool, &heartbeats)
        .await
        .unwrap();
    let (_, body) = app.get(&path, scene.token()).await;
    assert_eq!(body["latest_revision"], 2);
    assert_eq!(body["acknowledged_revision"], 0);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn creating_a_sensor_with_a_taken_name_returns_409(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    let sensors = format!("/networks/{}/sensors", scene.network);
    let (status, body) = app
        .post(
            &sensors,
            scene.token(),
            json!({"sensor_name": "greenhouse"}),
        )
        .await;
    assert_eq!((status, body), error(409));
    // The same name in another network is fine.
    let other = create_network(&app, &scene.user.access_token, "farm").await;
    create_sensor(&app, &scene.user.access_token, &other, "greenhouse").await;
    let sensors = count(&app.pool, "SELECT count(*) FROM sensor").await;
    assert_eq!(sensors, 2);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn renaming_a_sensor_to_a_taken_name_returns_409(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let scene = Scene::create(&app).await;
    create_sensor(&app, &scene.user.access_token, &scene.network, "attic").await;
    let (status, body) = app
        .put(
            &scene.sensor_path(""),
            scene.token(),
            json!({"sensor_name": "attic"}),
        )
        .await;
    assert_eq!((status, body), error(409));
    let name: String = sqlx::query_scalar("SELECT name FROM sensor WHERE identifier = $1::uuid")
        .bind(&scene.sensor)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(name, "greenhouse");
}
