//! The insert queries of ingestion: duplicates are stored once, distinct
//! measurements with one timestamp both, and the 4-hour counts follow.

use std::collections::BTreeMap;

use sensorium_shared::domain::{Attribute, Identifier, Revision, Severity, Timestamp};
use sensorium_shared::queries::logs::{NewLogMessage, create_log_messages};
use sensorium_shared::queries::measurements::{NewMeasurement, create_measurements};
use sensorium_shared::testing::{bucket_counts, create_sensor};
use sqlx::PgPool;

fn measurement(sensor: Identifier, seconds: f64, temperature: f64) -> NewMeasurement {
    NewMeasurement {
        sensor_identifier: sensor,
        timestamp: Timestamp::parse(seconds).unwrap(),
        revision: Some(Revision::parse(0).unwrap()),
        value: BTreeMap::from([(Attribute::parse("temperature").unwrap(), temperature)]),
        receipt_timestamp: Timestamp::now(),
        position: 0,
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_redelivered_measurement_is_stored_and_counted_once(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    // 1683633600 is a multiple of 14400: the start of a 4-hour bucket.
    let batch = [
        measurement(sensor, 1_683_633_600.0, 20.0),
        measurement(sensor, 1_683_633_600.0, 21.0), // same time, other value: kept
        measurement(sensor, 1_683_647_999.5, 22.0), // same bucket
        measurement(sensor, 1_683_648_000.0, 23.0), // next bucket
    ];
    assert_eq!(create_measurements(&pool, &batch).await.unwrap(), 4);
    let mut redelivered = batch.to_vec();
    redelivered[0].position = 9;
    redelivered[0].receipt_timestamp = Timestamp::now();
    assert_eq!(create_measurements(&pool, &redelivered).await.unwrap(), 0);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM measurement")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 4);
    assert_eq!(
        bucket_counts(&pool, sensor).await,
        [(1_683_633_600.0, 3), (1_683_648_000.0, 1)]
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn new_measurements_among_stored_copies_are_stored_and_counted(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let stored = [
        measurement(sensor, 1_683_633_600.0, 20.0),
        measurement(sensor, 1_683_633_601.0, 20.0),
    ];
    assert_eq!(create_measurements(&pool, &stored).await.unwrap(), 2);
    // The plain insert fails on the second row; the batch goes again, skipping copies.
    let batch = [
        measurement(sensor, 1_683_633_599.0, 19.0),
        stored[0].clone(),
        measurement(sensor, 1_683_633_602.0, 21.0),
        stored[1].clone(),
    ];
    assert_eq!(create_measurements(&pool, &batch).await.unwrap(), 2);
    let timestamps: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM creation_timestamp)::float8 FROM measurement ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        timestamps,
        [
            1_683_633_599.0,
            1_683_633_600.0,
            1_683_633_601.0,
            1_683_633_602.0
        ]
    );
    // The failed first attempt counted nothing: its rows and counts rolled back.
    assert_eq!(
        bucket_counts(&pool, sensor).await,
        [(1_683_619_200.0, 1), (1_683_633_600.0, 3)]
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn duplicates_within_one_batch_are_stored_once(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let one = measurement(sensor, 1_683_633_600.0, 20.0);
    assert_eq!(
        create_measurements(&pool, &[one.clone(), one])
            .await
            .unwrap(),
        1
    );
    assert_eq!(bucket_counts(&pool, sensor).await, [(1_683_633_600.0, 1)]);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_redelivered_log_message_is_stored_once(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let log_message = NewLogMessage {
        sensor_identifier: sensor,
        timestamp: Timestamp::parse(1_683_645_000.0).unwrap(),
        severity: Severity::Error,
        subject: "The CPU is burning".into(),
        details: Some("Please call the fire department".into()),
        revision: None,
        receipt_timestamp: Timestamp::now(),
        position: 0,
    };
    let mut other = log_message.clone();
    other.details = None;
    assert_eq!(
        create_log_messages(&pool, &[log_message.clone(), other])
            .await
            .unwrap(),
        2
    );
    assert_eq!(create_log_messages(&pool, &[log_message]).await.unwrap(), 0);
    let stored: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT severity::text, details FROM log ORDER BY details NULLS FIRST")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            ("error".to_owned(), None),
            (
                "error".to_owned(),
                Some("Please call the fire department".to_owned())
            )
        ]
    );
}
