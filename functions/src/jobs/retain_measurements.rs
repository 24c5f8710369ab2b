//! Measurement retention and partition upkeep, run with log retention: creates the
//! monthly partitions of `measurement` for the coming months, packs the months that have
//! closed (a sensor's day to a row), and, when a retention is set, drops the partitions
//! of the months that lie wholly before it. A partition is dropped whole, so data is
//! kept up to a month longer than the retention, and the cost does not grow with the
//! rows.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
pub use sensorium_shared::queries::partitions::CLOSED_AFTER;
use sensorium_shared::queries::partitions::{
    closed_months, create_measurement_partitions, drop_measurement_partitions,
    pack_measurement_month,
};
use sqlx::PgPool;

/// How far ahead partitions are created: the job may fail for weeks before a month's
/// measurements land in the default partition.
const PARTITIONS_AHEAD: TimeDelta = TimeDelta::days(93);

/// No packing starts after the job has run this long. The job's function may run 300 s
/// and a statement 270 s; packing a month of 4 million measurements takes tens of
/// seconds. What is left waits for the next run (daily), so a database that already
/// holds years of months is packed over a few days.
const PACKING_BUDGET: Duration = Duration::from_secs(120);

/// What a run of the job did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Partitions created for the coming months.
    pub created: i32,
    /// Closed months whose rows were packed.
    pub packed: usize,
    /// Partitions dropped by the retention.
    pub dropped: i32,
}

pub async fn run(pool: &PgPool, retention: Option<TimeDelta>) -> Result<Upkeep, sqlx::Error> {
    let began = Instant::now();
    let now = Utc::now();
    let created = create_measurement_partitions(pool, now, now + PARTITIONS_AHEAD).await?;
    let dropped = match retention {
        Some(retention) => drop_measurement_partitions(pool, now - retention).await?,
        None => 0,
    };
    let months = closed_months(pool, now - CLOSED_AFTER).await?;
    let mut packed = 0;
    for month in &months {
        if began.elapsed() > PACKING_BUDGET {
            tracing::info!(from = %month, "measurement packing left for the next run");
            break;
        }
        let started = Instant::now();
        let rows = pack_measurement_month(pool, *month).await?;
        if rows > 0 {
            tracing::info!(
                %month,
                rows,
                seconds = started.elapsed().as_secs_f64(),
                "closed month's measurements packed"
            );
            packed += 1;
        }
    }
    tracing::info!(
        created,
        packed,
        dropped,
        "measurement partitions created, packed and dropped"
    );
    Ok(Upkeep {
        created,
        packed,
        dropped,
    })
}
