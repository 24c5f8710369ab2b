//! Measurement retention and partition upkeep, run with log retention: creates the
//! monthly partitions of `measurement` for the coming months, and, when a retention is
//! set, drops the partitions of the months that lie wholly before it. A partition is
//! dropped whole, so data is kept up to a month longer than the retention, and the cost
//! does not grow with the rows.

use chrono::{TimeDelta, Utc};
use sensorium_shared::queries::partitions::{
    create_measurement_partitions, drop_measurement_partitions,
};
use sqlx::PgPool;

/// How far ahead partitions are created: the job may fail for weeks before a month's
/// measurements land in the default partition.
const PARTITIONS_AHEAD: TimeDelta = TimeDelta::days(93);

/// Returns how many partitions were created and dropped.
pub async fn run(pool: &PgPool, retention: Option<TimeDelta>) -> Result<(i32, i32), sqlx::Error> {
    let now = Utc::now();
    let created = create_measurement_partitions(pool, now, now + PARTITIONS_AHEAD).await?;
    let dropped = match retention {
        Some(retention) => drop_measurement_partitions(pool, now - retention).await?,
        None => 0,
    };
    tracing::info!(
        created,
        dropped,
        "measurement partitions created and dropped"
    );
    Ok((created, dropped))
}
