//! The monthly partitions of `measurement` (see its migration): created ahead of the
//! data, their keys compacted once their month has closed, and dropped whole by
//! measurement retention.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgExecutor, PgPool};

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

/// A monthly partition whose key is to be compacted: see
/// [`partitions_to_compact`].
#[derive(Debug)]
pub struct PartitionToCompact {
    /// The partition's table, `measurement_YYYY_MM`.
    pub name: String,
    /// Its primary key, as SQL names it (quoted where it must be).
    pub key: String,
    /// Indexes of the partition that a compaction interrupted left invalid, as SQL
    /// names them.
    pub invalid_indexes: Vec<String>,
    /// PostgreSQL's estimate of its rows.
    pub row_count: i64,
}

/// The monthly partitions whose months ended at or before `closed_before` and whose key
/// is not compacted: never compacted, grown by more than a quarter since, or left with
/// an invalid index by a compaction that did not finish. Oldest first.
pub async fn partitions_to_compact(
    executor: impl PgExecutor<'_>,
    closed_before: DateTime<Utc>,
) -> Result<Vec<PartitionToCompact>, sqlx::Error> {
    sqlx::query_as!(
        PartitionToCompact,
        r#"
        SELECT
            child.relname::text AS "name!",
            key.oid::regclass::text AS "key!",
            invalid.indexes AS "invalid_indexes!",
            greatest(child.reltuples, 0)::bigint AS "row_count!"
        FROM pg_inherits
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        JOIN pg_index ON pg_index.indrelid = child.oid AND pg_index.indisprimary
        JOIN pg_class AS key ON key.oid = pg_index.indexrelid
        CROSS JOIN LATERAL (
            SELECT array(
                SELECT indexrelid::regclass::text FROM pg_index
                WHERE indrelid = child.oid AND NOT indisvalid
                ORDER BY 1
            ) AS indexes
        ) AS invalid
        LEFT JOIN measurement_compaction AS compaction ON compaction.partition_name = child.relname
        WHERE pg_inherits.inhparent = 'measurement'::regclass
            AND child.relname ~ '^measurement_[0-9]{4}_[0-9]{2}$'
            AND (to_date(substring(child.relname FROM 13), 'YYYY_MM') + interval '1 month')
                AT TIME ZONE 'UTC' <= $1
            AND (
                compaction.row_count IS NULL
                OR child.reltuples > compaction.row_count * 1.25
                OR cardinality(invalid.indexes) > 0
            )
        ORDER BY child.relname
        "#,
        closed_before,
    )
    .fetch_all(executor)
    .await
}

/// Rebuilds `partition`'s key packed full, without blocking ingest or reads (`REINDEX
/// INDEX CONCURRENTLY`, which cannot run in a transaction), after dropping the invalid
/// indexes an interrupted compaction left; then records it as compacted.
pub async fn compact_partition(
    pool: &PgPool,
    partition: &PartitionToCompact,
) -> Result<(), sqlx::Error> {
    // The names come from PostgreSQL's catalog, quoted by regclass.
    for index in &partition.invalid_indexes {
        let statement = format!("DROP INDEX CONCURRENTLY IF EXISTS {index}");
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(pool)
            .await?;
    }
    // A closed month receives few rows: its leaves are packed full. The setting stays
    // with the index and is carried to the rebuilt one.
    let key = &partition.key;
    for statement in [
        format!("ALTER INDEX {key} SET (fillfactor = 100)"),
        format!("REINDEX INDEX CONCURRENTLY {key}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(pool)
            .await?;
    }
    sqlx::query!(
        "INSERT INTO measurement_compaction (partition_name, row_count, compaction_timestamp)
         VALUES ($1, $2, now())
         ON CONFLICT (partition_name) DO UPDATE
         SET row_count = excluded.row_count, compaction_timestamp = excluded.compaction_timestamp",
        partition.name,
        partition.row_count,
    )
    .execute(pool)
    .await?;
    Ok(())
}
