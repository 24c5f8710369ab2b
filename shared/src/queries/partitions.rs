//! The monthly partitions of `measurement` (see its migration): created ahead of the
//! data, and dropped whole by measurement retention.

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
/// the default partition in them, and their 4-hour counts and hourly and daily rollups;
/// returns how many partitions it dropped.
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
