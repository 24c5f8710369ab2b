//! The retention job deletes logs 8 weeks after the server received them, whatever
//! the sensor's clock said.

use sensorium_functions::jobs::retain_logs;
use sensorium_shared::domain::{Identifier, Severity, Timestamp};
use sensorium_shared::queries::logs::{NewLogMessage, create_log_messages};
use sensorium_shared::testing::create_sensor;
use sqlx::PgPool;

const DAY: f64 = 86400.0;
const WEEK: f64 = 7.0 * DAY;

/// A log named `subject`, timestamped `timestamp` by the sensor and received at `receipt`.
fn log_message(sensor: Identifier, subject: &str, timestamp: f64, receipt: f64) -> NewLogMessage {
    NewLogMessage {
        sensor_identifier: sensor,
        timestamp: Timestamp::parse(timestamp).unwrap(),
        severity: Severity::Info,
        subject: subject.into(),
        details: None,
        revision: None,
        receipt_timestamp: Timestamp::parse(receipt).unwrap(),
        position: 0,
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn logs_are_deleted_8_weeks_after_their_receipt_whatever_their_timestamp(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let now = Timestamp::now().as_seconds();
    // A sensor whose clock is unset (1970) or years ahead (2037).
    let unset = 1.0;
    let ahead = 2_145_000_000.0;
    let log_messages = [
        log_message(sensor, "unset clock, received now", unset, now),
        log_message(sensor, "ahead, received now", ahead, now),
        log_message(
            sensor,
            "unset clock, received 9 days ago",
            unset,
            now - 9.0 * DAY,
        ),
        log_message(
            sensor,
            "received 8 weeks less a minute ago",
            now,
            now - 8.0 * WEEK + 60.0,
        ),
        log_message(
            sensor,
            "received 8 weeks and a minute ago",
            now,
            now - 8.0 * WEEK - 60.0,
        ),
        log_message(
            sensor,
            "ahead, received 9 weeks ago",
            ahead,
            now - 9.0 * WEEK,
        ),
        log_message(
            sensor,
            "on time, received 9 weeks ago",
            now - 9.0 * WEEK,
            now - 9.0 * WEEK,
        ),
    ];
    assert_eq!(create_log_messages(&pool, &log_messages).await.unwrap(), 7);
    assert_eq!(retain_logs::run(&pool).await.unwrap(), 3);
    let kept: Vec<String> =
        sqlx::query_scalar("SELECT subject FROM log ORDER BY receipt_timestamp")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        kept,
        [
            "received 8 weeks less a minute ago",
            "unset clock, received 9 days ago",
            "unset clock, received now",
            "ahead, received now",
        ]
    );
}
