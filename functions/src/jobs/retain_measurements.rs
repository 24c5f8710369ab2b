//! Measurement retention and partition upkeep, run with log retention: creates the
//! monthly partitions of `measurement` for the coming months, compacts the keys of the
//! months that have closed, and, when a retention is set, drops the partitions of the
//! months that lie wholly before it. A partition is dropped whole, so data is kept up
//! to a month longer than the retention, and the cost does not grow with the rows.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sensorium_shared::queries::partitions::{
    compact_partition, create_measurement_partitions, drop_measurement_partitions,
    partitions_to_compact,
};
use sqlx::PgPool;

/// How far ahead partitions are created: the job may fail for weeks before a month's
/// measurements land in the default partition.
const PARTITIONS_AHEAD: TimeDelta = TimeDelta::days(93);

/// How long after its end a month counts as closed and its key is compacted: a sensor
/// that was offline sends its backlog when it comes back, and a key compacted before
/// that backlog would split again under it.
pub const CLOSED_AFTER: TimeDelta = TimeDelta::days(7);

/// No compaction starts after the job has run this long. The job's function may run 300
/// s and a statement 270 s; rebuilding the key of a month of 4 million measurements
/// takes seconds. What is left waits for the next run (daily), so a database that
/// already holds years of months is compacted over a few days.
const COMPACTION_BUDGET: Duration = Duration::from_secs(120);

/// What a run of the job did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Partitions created for the coming months.
    pub created: i32,
    /// Keys of closed months compacted.
    pub compacted: usize,
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
    let to_compact = partitions_to_compact(pool, now - CLOSED_AFTER).await?;
    let mut compacted = 0;
    for partition in &to_compact {
        if began.elapsed() > COMPACTION_BUDGET {
            break;
        }
        let started = Instant::now();
        compact_partition(pool, partition).await?;
        tracing::info!(
            partition = partition.name,
            rows = partition.row_count,
            seconds = started.elapsed().as_secs_f64(),
            "measurement partition's key compacted"
        );
        compacted += 1;
    }
    tracing::info!(
        created,
        compacted,
        left_to_compact = to_compact.len() - compacted,
        dropped,
        "measurement partitions created, compacted and dropped"
    );
    Ok(Upkeep {
        created,
        compacted,
        dropped,
    })
}
