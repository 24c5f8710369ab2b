//! The monthly partitions of `measurement` (see its migration): created ahead of the
//! data, packed once their month has closed, and dropped whole by measurement
//! retention.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// Creates the partitions of the UTC months from the one holding `first` to the one
/// holding `last` that do not exist yet; returns how many it created.
pub async fn create_measurement_partitions(
    executor: impl PgExecutor<'_>,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT create_measurement_partitions($1, $2) AS "created!""#,
        first,
        last,
    )
    .fetch_one(executor)
    .await
}

/// Drops the months that lie wholly before `cutoff`: their partitions, the few rows of
/// the default partition in them, their packed days, and their 4-hour counts and hourly
/// and daily rollups; returns how many partitions it dropped.
pub async fn drop_measurement_partitions(
    executor: impl PgExecutor<'_>,
    cutoff: DateTime<Utc>,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT drop_measurement_partitions($1) AS "dropped!""#,
        cutoff,
    )
    .fetch_one(executor)
    .await
}

/// The months whose partitions of `measurement` ended at or before `closed_before`,
/// oldest first, as the first instant of each (UTC): those [`pack_measurement_month`]
/// packs.
pub async fn closed_months(
    executor: impl PgExecutor<'_>,
    closed_before: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT to_date(substring(child.relname FROM 13), 'YYYY_MM')::timestamp
            AT TIME ZONE 'UTC' AS "month!"
        FROM pg_inherits
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = 'measurement'::regclass
            AND child.relname ~ '^measurement_[0-9]{4}_[0-9]{2}$'
            AND (to_date(substring(child.relname FROM 13), 'YYYY_MM') + interval '1 month')
                AT TIME ZONE 'UTC' <= $1
        ORDER BY 1
        "#,
        closed_before,
    )
    .fetch_all(executor)
    .await
}

/// Packs the rows of the UTC month that starts at `month` a sensor's day to a row,
/// merged with the days packed before (see the migration `closed_months_packed`);
/// returns how many rows it packed, none when the month's partition holds none.
/// Inserts into the month wait until it is done (seconds for a month of 4 million
/// rows); reads do not.
pub async fn pack_measurement_month(
    executor: impl PgExecutor<'_>,
    month: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT pack_measurement_month($1::timestamptz AT TIME ZONE 'UTC') AS "packed!""#,
        month,
    )
    .fetch_one(executor)
    .await
}
