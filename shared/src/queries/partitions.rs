//! The monthly partitions of `measurement` (see its migration): created ahead of the
//! data, packed once their month has closed, and dropped whole by measurement
//! retention.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use sqlx::PgExecutor;

/// How long after its end a month counts as closed and may be packed: a sensor that was
/// offline sends its backlog when it comes back, and the rows that arrive after the
/// packing wait as rows for the next packing. `pack_measurement_month` refuses a month
/// closed for less (see the migration `months_packed_once_closed`), which
/// [`never_packed_since`] relies on.
pub const CLOSED_AFTER: TimeDelta = TimeDelta::days(7);

/// The first instant of the UTC month from which no measurement is packed at `now`:
/// the month that holds `now` less [`CLOSED_AFTER`], with a day's margin for clocks
/// that differ between the job's host and this one. A read of later measurements reads
/// rows alone.
pub fn never_packed_since(now: DateTime<Utc>) -> DateTime<Utc> {
    let moment = now - CLOSED_AFTER + TimeDelta::days(1);
    NaiveDate::from_ymd_opt(moment.year(), moment.month(), 1)
        .expect("the first of a month is a date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight is a time")
        .and_utc()
}

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
/// rows); reads do not. A month closed for less than [`CLOSED_AFTER`] is refused.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn no_month_the_job_may_pack_ends_after_never_packed_since() {
        // Every hour of 70 days: the newest month the job may pack then (the last that
        // ended CLOSED_AFTER ago or earlier) ends at or before never_packed_since, and
        // that is the start of a month.
        let mut now = at("2026-10-20T00:00:00Z");
        while now < at("2026-12-30T00:00:00Z") {
            let since = never_packed_since(now);
            assert_eq!((since.day(), since.timestamp() % 86_400), (1, 0), "{now}");
            let closed_before = now - CLOSED_AFTER;
            let newest_packable_end =
                NaiveDate::from_ymd_opt(closed_before.year(), closed_before.month(), 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    .and_utc();
            assert!(newest_packable_end <= since, "{now}");
            now += TimeDelta::hours(1);
        }
        assert_eq!(
            never_packed_since(at("2026-12-08T01:00:00Z")),
            at("2026-12-01T00:00:00Z")
        );
        assert_eq!(
            never_packed_since(at("2026-12-06T12:00:00Z")),
            at("2026-11-01T00:00:00Z")
        );
    }
}
