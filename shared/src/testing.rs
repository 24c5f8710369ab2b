//! Helpers for the tests of every crate, behind the `testing` feature (enabled only
//! in dev-dependencies). They panic on failure, as test set-up should.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{Identifier, NetworkName, SensorName};
use crate::queries::{networks, sensors};

/// A new network with one sensor, stored by the queries the REST API uses; returns
/// the network's and the sensor's identifiers.
pub async fn create_network_and_sensor(pool: &PgPool) -> (Identifier, Identifier) {
    let network = Identifier::new();
    let sensor = Identifier::new();
    let network_name = NetworkName::parse(format!("network-{}", &network.to_string()[..8]))
        .expect("a valid network name");
    networks::create_network(pool, network, &network_name)
        .await
        .expect("the network is created");
    let sensor_name = SensorName::parse("sensor").expect("a valid sensor name");
    sensors::create_sensor(pool, sensor, network, &sensor_name)
        .await
        .expect("the sensor is created");
    (network, sensor)
}

/// A new sensor, in a network of its own.
pub async fn create_sensor(pool: &PgPool) -> Identifier {
    create_network_and_sensor(pool).await.1
}

/// Stores `per_sensor` measurements of each of `sensors`, interleaved as a fleet's
/// arrive, newest first: row `i` is sensor `i % sensors.len()`'s, `i / sensors.len()`
/// minutes before `newest`, with value `{"a": i}`, so that a sensor's rows lie on many
/// pages, out of time order. Then analyzes `measurement`, so that the planner knows it.
pub async fn insert_interleaved_measurements(
    pool: &PgPool,
    sensors: &[Identifier],
    per_sensor: usize,
    newest: DateTime<Utc>,
) {
    let sensors: Vec<_> = sensors.iter().map(Identifier::as_uuid).collect();
    sqlx::query(
        "INSERT INTO measurement (sensor_identifier, creation_timestamp, fingerprint, value,
             receipt_timestamp, position)
         SELECT ($1::uuid[])[i % cardinality($1::uuid[]) + 1],
             $2::timestamptz - (i / cardinality($1::uuid[])) * interval '1 minute',
             i, json_build_object('a', i), now(), 0
         FROM generate_series(0, $3 - 1) AS i",
    )
    .bind(&sensors)
    .bind(newest)
    .bind((sensors.len() * per_sensor) as i64)
    .execute(pool)
    .await
    .expect("the measurements are stored");
    sqlx::query("ANALYZE measurement")
        .execute(pool)
        .await
        .expect("the measurements are analyzed");
}

/// The sensor's 4-hour measurement counts: (bucket start in seconds, count), by time.
pub async fn bucket_counts(pool: &PgPool, sensor: Identifier) -> Vec<(f64, i64)> {
    sqlx::query_as(
        "SELECT extract(epoch FROM bucket_timestamp)::float8, measurement_count
         FROM measurement_bucket WHERE sensor_identifier = $1 ORDER BY 1",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .expect("the buckets are read")
}

/// How often [`eventually`] checks again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some` or `timeout` passes; asynchronous effects
/// are awaited this way, never with a fixed sleep.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until `read` returns `expected`, within `timeout`; fails with the last value
/// it saw otherwise.
pub async fn wait_until_equal<T, F, Fut>(timeout: Duration, expected: T, read: F)
where
    T: PartialEq + Debug,
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    let expected = &expected;
    let reached = eventually(timeout, || {
        let value = read();
        async move { (value.await == *expected).then_some(()) }
    })
    .await;
    if reached.is_none() {
        panic!("expected {expected:?}, last saw {:?}", read().await);
    }
}

/// Makes inserts into `measurement` fail as an outage of the database makes them fail,
/// with a transient error (40001, a serialization failure), while the table
/// `injected_fault` holds a row naming the row's sensor or a row naming none (an
/// outage of every sensor): see [`inject_fault`] and [`end_fault`]. The sequence
/// `injected_fault_hits` counts the refused rows ([`fault_hits`]): sequences are not
/// rolled back.
pub async fn install_fault_injection(pool: &PgPool) {
    sqlx::raw_sql(
        r#"
        CREATE TABLE injected_fault (sensor_identifier uuid);
        CREATE SEQUENCE injected_fault_hits;
        CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (
                SELECT FROM injected_fault
                WHERE sensor_identifier IS NULL OR sensor_identifier = NEW.sensor_identifier
            ) THEN
                PERFORM nextval('injected_fault_hits');
                RAISE EXCEPTION 'injected fault' USING ERRCODE = '40001';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER inject_fault BEFORE INSERT ON measurement
            FOR EACH ROW EXECUTE FUNCTION inject_fault();
        "#,
    )
    .execute(pool)
    .await
    .expect("the fault injection is installed");
}

/// Starts refusing the measurements of `sensor`, or of every sensor with `None`.
pub async fn inject_fault(pool: &PgPool, sensor: Option<Identifier>) {
    sqlx::query("INSERT INTO injected_fault VALUES ($1)")
        .bind(sensor)
        .execute(pool)
        .await
        .expect("the fault is injected");
}

/// Stops refusing the measurements of `sensor`, or ends the outage of every sensor
/// with `None` (the faults of single sensors stay).
pub async fn end_fault(pool: &PgPool, sensor: Option<Identifier>) {
    sqlx::query("DELETE FROM injected_fault WHERE sensor_identifier IS NOT DISTINCT FROM $1")
        .bind(sensor)
        .execute(pool)
        .await
        .expect("the fault ends");
}

/// How many rows the injected faults refused.
pub async fn fault_hits(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM injected_fault_hits",
    )
    .fetch_one(pool)
    .await
    .expect("the hits are counted")
}
