//! Every measurement or log message of a sensor in a time range, ascending, as a stream
//! of rows read as PostgreSQL sends them: memory stays constant whatever the count.

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::BoxStream;
use sqlx::PgConnection;

use crate::domain::{Identifier, Revision, Timestamp};
use crate::limits::TIMESTAMP_LIMIT;
use crate::queries::logs::LogMessage;
use crate::queries::partitions::never_packed_since;

/// A time range of an export, `from <= creation_timestamp < to`; unbounded where unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl ExportRange {
    /// The bounds of the scan; unset, those of the contract's timestamps.
    fn bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = DateTime::UNIX_EPOCH + TimeDelta::seconds(TIMESTAMP_LIMIT as i64);
        (
            self.from
                .map_or(DateTime::UNIX_EPOCH, |from| from.as_datetime()),
            self.to.map_or(end, |to| to.as_datetime()),
        )
    }
}

/// Sets `connection` up for an export: its statements may run for `statement_timeout`
/// (PostgreSQL's syntax, such as `870s`), and its plans read the rows in the order of
/// the key instead of sorting them. Left to itself, the planner reads a sensor's year of
/// measurements (one heap page a row, at 1,000 sensors) with bitmap scans and sorts them:
/// nothing is sent before the last row is read, and past `work_mem` the sort writes the
/// whole export to disk first. Read in the key's order (an index scan of each monthly
/// partition, merged), the first row goes out at once and nothing is sorted but the
/// packed days (see [`stream_measurements`]).
/// [`reset_after_export`] gives the connection its settings back.
pub async fn set_up_export(
    connection: &mut PgConnection,
    statement_timeout: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('statement_timeout', $1, false), set_config('enable_sort', 'off', false)",
    )
    .bind(statement_timeout)
    .execute(connection)
    .await
    .map(drop)
}

/// Gives `connection` back the settings it had before [`set_up_export`].
pub async fn reset_after_export(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("RESET statement_timeout; RESET enable_sort")
        .execute(connection)
        .await
        .map(drop)
}

/// A stored measurement with its value as the json text stored (checked on ingest).
#[derive(Debug)]
pub struct ExportedMeasurement {
    pub value: String,
    pub revision: Option<Revision>,
    pub creation_timestamp: Timestamp,
}

/// The sensor's measurements in `range` by creation time (and fingerprint, so that the
/// order is the same on every read), as the pages order them.
///
/// A range that may reach a packed month (one that starts before
/// [`never_packed_since`]) is read a day at a time, in the order of the sensor's 4-hour
/// counts (a row a day with measurements): a day without packed measurements is read in
/// the key's order, and a packed day (a closed month's, see the migration
/// `closed_months_packed`) is sorted with the few rows that arrived after it was packed.
/// Nothing larger than a day is sorted. A range that cannot reach one is read in the
/// key's order by a statement of the rows alone, as before months were packed: each
/// execution of the days' join starts up the partitions of four tables and rescans its
/// days, which cost a 1-day export of a sensor's 140 rows more than half its rate in
/// `./scripts/bench scale` (at 1 million rows, 17,669 rows a second against 41,162
/// before months were packed).
pub fn stream_measurements(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
    range: ExportRange,
) -> BoxStream<'_, Result<ExportedMeasurement, sqlx::Error>> {
    let (from, to) = range.bounds();
    if from >= never_packed_since(Utc::now()) {
        return sqlx::query_as!(
            ExportedMeasurement,
            r#"
            SELECT value::text AS "value!", revision AS "revision: _",
                creation_timestamp AS "creation_timestamp!: _"
            FROM measurement
            WHERE sensor_identifier = $1 AND creation_timestamp >= $2 AND creation_timestamp < $3
            ORDER BY creation_timestamp, fingerprint
            "#,
            sensor_identifier.as_uuid(),
            from,
            to,
        )
        .fetch(connection);
    }
    sqlx::query_as!(
        ExportedMeasurement,
        r#"
        SELECT measurement.value::text AS "value!", measurement.revision AS "revision: _",
            measurement.creation_timestamp AS "creation_timestamp!: _"
        FROM measurement_count AS day
        LEFT JOIN measurement_packed AS packed
            ON packed.sensor_identifier = day.sensor_identifier
                AND packed.day_timestamp = day.day_timestamp
        CROSS JOIN LATERAL (
            (
                SELECT value, revision, creation_timestamp, fingerprint
                FROM measurement
                WHERE packed.day_timestamp IS NULL AND sensor_identifier = $1
                    AND creation_timestamp >= greatest(day.day_timestamp, $2)
                    AND creation_timestamp < least(day.day_timestamp + interval '1 day', $3)
                ORDER BY creation_timestamp, fingerprint
            )
            UNION ALL
            (
                SELECT value, revision, creation_timestamp, fingerprint
                FROM measurements_in($1, greatest(day.day_timestamp, $2),
                    least(day.day_timestamp + interval '1 day', $3))
                WHERE packed.day_timestamp IS NOT NULL
                ORDER BY creation_timestamp, fingerprint
            )
        ) AS measurement
        WHERE day.sensor_identifier = $1
            AND day.day_timestamp > $2::timestamptz - interval '1 day'
            AND day.day_timestamp < $3
        ORDER BY day.day_timestamp
        "#,
        sensor_identifier.as_uuid(),
        from,
        to,
    )
    .fetch(connection)
}

/// The sensor's log messages in `range` by creation time, as the pages order them.
pub fn stream_log_messages(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
    range: ExportRange,
) -> BoxStream<'_, Result<LogMessage, sqlx::Error>> {
    let (from, to) = range.bounds();
    sqlx::query_as!(
        LogMessage,
        r#"
        SELECT severity AS "severity: _", subject, details, revision AS "revision: _",
            creation_timestamp AS "creation_timestamp: _"
        FROM log
        WHERE sensor_identifier = $1 AND creation_timestamp >= $2 AND creation_timestamp < $3
        ORDER BY creation_timestamp, fingerprint
        "#,
        sensor_identifier.as_uuid(),
        from,
        to,
    )
    .fetch(connection)
}
