//! Measurements and their per-bucket counts (aggregates: `queries::aggregates`).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::domain::{Attribute, Identifier, Revision, Timestamp};
use crate::limits::PAGE_SIZE;
use crate::pages::{Direction, PageRequest, ascending};
use crate::queries::partitions::never_packed_since;
use crate::queries::{Duplicates, insert_skipping_stored, write_json};

/// One measurement as received, validated, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMeasurement {
    pub sensor_identifier: Identifier,
    pub timestamp: Timestamp,
    pub revision: Option<Revision>,
    /// 1 to 1024 attributes, each a finite number; sorted, which the fingerprint needs.
    pub value: BTreeMap<Attribute, f64>,
    pub receipt_timestamp: Timestamp,
    /// Index of the measurement in the message that carried it.
    pub position: i32,
}

impl NewMeasurement {
    /// The first 8 bytes of the SHA-256 of revision and value (big-endian), which with
    /// sensor and timestamp identifies a measurement: a redelivered copy has the same, a
    /// different value another (but once in 2^64). The migration to this key took the
    /// same bytes of the fingerprints stored before.
    pub fn fingerprint(&self) -> i64 {
        let mut hasher = Sha256::new();
        hash_revision(&mut hasher, self.revision);
        for (attribute, number) in &self.value {
            hasher.update((attribute.as_str().len() as u32).to_le_bytes());
            hasher.update(attribute.as_str().as_bytes());
            // -0.0 == 0.0, so both hash alike.
            let number = if *number == 0.0 { 0.0 } else { *number };
            hasher.update(number.to_bits().to_le_bytes());
        }
        let digest = hasher.finalize();
        i64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
    }
}

pub(crate) fn hash_revision(hasher: &mut Sha256, revision: Option<Revision>) {
    match revision {
        None => hasher.update([0]),
        Some(revision) => {
            hasher.update([1]);
            hasher.update(revision.get().to_le_bytes());
        }
    }
}

/// Stores measurements, skipping those already stored; the database counts the new
/// ones into their sensor's 4-hour buckets (a trigger of `migrations/`). Returns how
/// many were new. Every sensor must exist (a missing one fails the statement: filter
/// first). A plain insert first; see `queries::insert_skipping_stored`.
pub async fn create_measurements(
    pool: &PgPool,
    measurements: &[NewMeasurement],
) -> Result<u64, sqlx::Error> {
    insert_skipping_stored(|duplicates| insert_measurements(pool, measurements, duplicates)).await
}

/// Stores measurements in one statement; `duplicates` says what becomes of one that is
/// stored already. Returns how many were stored. See [`create_measurements`].
pub async fn insert_measurements(
    executor: impl PgExecutor<'_>,
    measurements: &[NewMeasurement],
    duplicates: Duplicates,
) -> Result<u64, sqlx::Error> {
    let length = measurements.len();
    let mut sensor_identifiers = Vec::with_capacity(length);
    let mut creation_timestamps = Vec::with_capacity(length);
    let mut fingerprints = Vec::with_capacity(length);
    let mut revisions = Vec::with_capacity(length);
    let mut values = Vec::with_capacity(length);
    let mut receipt_timestamps = Vec::with_capacity(length);
    let mut positions = Vec::with_capacity(length);
    for measurement in measurements {
        sensor_identifiers.push(measurement.sensor_identifier.as_uuid());
        creation_timestamps.push(measurement.timestamp.as_datetime());
        fingerprints.push(measurement.fingerprint());
        revisions.push(measurement.revision.map(|revision| revision.get()));
        values.push(
            serde_json::to_string(&measurement.value)
                .map_err(|error| sqlx::Error::Encode(error.into()))?,
        );
        receipt_timestamps.push(measurement.receipt_timestamp.as_datetime());
        positions.push(measurement.position);
    }
    // One statement, in two forms: as it is, and with the clause that skips stored rows
    // (see `Duplicates`). The clause is appended with `+`, which sqlx's macros take, so
    // that both forms are checked and the statement is written once.
    macro_rules! insert {
        ($($clause:literal)?) => {
            sqlx::query!(
                r#"
                INSERT INTO measurement (
                    sensor_identifier, creation_timestamp, fingerprint, revision, value,
                    receipt_timestamp, position
                )
                SELECT * FROM UNNEST(
                    $1::uuid[], $2::timestamptz[], $3::bigint[], $4::integer[],
                    $5::text[]::json[], $6::timestamptz[], $7::integer[]
                )
                "# $(+ $clause)?,
                &sensor_identifiers,
                &creation_timestamps,
                &fingerprints,
                &revisions as _,
                &values,
                &receipt_timestamps,
                &positions,
            )
            .execute(executor)
            .await?
        };
    }
    let result = match duplicates {
        Duplicates::Refuse => insert!(),
        Duplicates::Skip => insert!(" ON CONFLICT DO NOTHING"),
    };
    Ok(result.rows_affected())
}

/// How far from its bound a page reads first: a month, so that the scan touches one or
/// two monthly partitions. A sensor that measures less than a page a month costs a
/// second read, of every partition.
const PAGE_WINDOW: TimeDelta = TimeDelta::days(31);

/// A page of the sensor's measurements by creation time, ascending, as the JSON array
/// of `{value, revision, creation_timestamp}` the REST API answers with. A page that
/// ends inside a run of equal timestamps holds the whole run (see `pages`).
///
/// This is the API's hottest read. A scan of every monthly partition cost PostgreSQL
/// several times what a scan of one does, so the page is first read within
/// [`PAGE_WINDOW`] of its bound, and only when that holds less than a page, from every
/// partition: a window that holds a page holds the page the whole range would give.
/// Without a cursor the window starts at `count_days`' first (or after its last) day
/// instead of the bound. That is only a guess, so `count_days` may be out of date (a
/// copy kept for a while, see [`read_count_days`]): a window is bounded on one side
/// only, its far end, and any window gives the right page.
///
/// The rows are written straight into the answer: each value is copied as the json
/// text PostgreSQL checked when it was stored, instead of being parsed and serialized
/// again.
pub async fn read_measurement_page(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
    page: PageRequest<Timestamp>,
    count_days: CountDays,
) -> Result<String, sqlx::Error> {
    let start = match page.cursor {
        Some(cursor) => Some(cursor.as_datetime()),
        None => count_days.page_start(page.direction),
    };
    let mut rows = Vec::new();
    if let Some(start) = start {
        let window_end = match page.direction {
            Direction::Next => start + PAGE_WINDOW,
            Direction::Previous => start - PAGE_WINDOW,
        };
        rows = read_page_rows(&mut *connection, sensor_identifier, page, window_end).await?;
    }
    if (rows.len() as i64) < PAGE_SIZE {
        let far_end = page.timestamp_limit();
        rows = read_page_rows(&mut *connection, sensor_identifier, page, far_end).await?;
    }
    let mut json = Vec::with_capacity(2 + rows.len() * 128);
    json.push(b'[');
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            json.push(b',');
        }
        json.extend_from_slice(br#"{"value":"#);
        json.extend_from_slice(row.value.as_bytes());
        json.extend_from_slice(br#","revision":"#);
        write_json(&mut json, &row.revision);
        json.extend_from_slice(br#","creation_timestamp":"#);
        write_json(&mut json, &row.creation_timestamp);
        json.push(b'}');
    }
    json.push(b']');
    String::from_utf8(json).map_err(|error| sqlx::Error::Decode(error.into()))
}

/// The first and the last day (UTC) of a sensor's 4-hour counts, where its pages
/// without a cursor start looking; none without counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountDays {
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl CountDays {
    /// The start of the first day (`next`) or the end of the last (`previous`).
    fn page_start(self, direction: Direction) -> Option<DateTime<Utc>> {
        match direction {
            Direction::Next => self.first,
            Direction::Previous => self.last.map(|last| last + TimeDelta::days(1)),
        }
    }
}

/// The sensor's [`CountDays`]. They change only when a day gets its first measurement
/// of the sensor, or a month is dropped, and pages only take them as a guess, so a
/// caller may keep them for a while and spare a page this query.
pub async fn read_count_days(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
) -> Result<CountDays, sqlx::Error> {
    sqlx::query_as!(
        CountDays,
        "SELECT min(day_timestamp) AS first, max(day_timestamp) AS last
         FROM measurement_count WHERE sensor_identifier = $1",
        sensor_identifier.as_uuid(),
    )
    .fetch_one(connection)
    .await
}

/// The rows of the page between its bound and `end` (excluded), ascending: the first
/// [`PAGE_SIZE`] from the bound, and the rest of the run of the last one's timestamp.
///
/// One range scan reads a row more than a page: only when that row continues the run
/// of the page's last timestamp does a second scan read the rest of the run. (One
/// statement that first finds the page's last timestamp and then reads up to it scans
/// the page twice, which cost PostgreSQL a third more.)
///
/// The measurements of a closed month are packed a sensor's day to a row (see the
/// migration `closed_months_packed`). A scan that can reach a packed month (one before
/// [`never_packed_since`]) takes the rows and, from the packed days that hold enough,
/// those up to the last of the rows, and keeps the first of both; other scans, as the
/// newest page's, read rows alone.
async fn read_page_rows(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
    page: PageRequest<Timestamp>,
    end: DateTime<Utc>,
) -> Result<Vec<PageRow>, sqlx::Error> {
    let never_packed = never_packed_since(Utc::now());
    let mut rows = match page.direction {
        Direction::Next if page.timestamp_bound() < never_packed => {
            read_rows_and_packed_days(&mut *connection, sensor_identifier, page, end).await?
        }
        Direction::Next => read_rows(&mut *connection, sensor_identifier, page, end).await?,
        Direction::Previous => {
            let rows = read_rows(&mut *connection, sensor_identifier, page, end).await?;
            // Descending: the scan reached down to its last row, or to its end.
            let reach = match rows.last() {
                Some(last) if rows.len() as i64 > PAGE_SIZE => {
                    last.creation_timestamp.as_datetime()
                }
                _ => end,
            };
            if reach < never_packed {
                read_rows_and_packed_days(&mut *connection, sensor_identifier, page, end).await?
            } else {
                rows
            }
        }
    };
    if rows.len() as i64 > PAGE_SIZE {
        let beyond = rows.pop().expect("more rows than a page");
        let last = rows.last().expect("a page holds rows");
        if beyond.creation_timestamp == last.creation_timestamp {
            let rest =
                read_rest_of_run(connection, sensor_identifier, page.direction, last).await?;
            rows.extend(rest);
        }
    }
    Ok(ascending(page.direction, rows))
}

/// The rows (not the packed days) of the page between its bound and `end` (excluded)
/// in its direction: a row more than a page.
async fn read_rows(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
    page: PageRequest<Timestamp>,
    end: DateTime<Utc>,
) -> Result<Vec<PageRow>, sqlx::Error> {
    let (sensor, bound) = (sensor_identifier.as_uuid(), page.timestamp_bound());
    // Each value comes back as the json text PostgreSQL checked when it was stored.
    let rows = match page.direction {
        Direction::Next => {
            sqlx::query_as!(
                PageRow,
                r#"
                SELECT value::text AS "value!", revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp: _", fingerprint
                FROM measurement
                WHERE sensor_identifier = $1 AND creation_timestamp > $2
                    AND creation_timestamp < $4
                ORDER BY creation_timestamp, fingerprint
                LIMIT $3::bigint + 1
                "#,
                sensor,
                bound,
                PAGE_SIZE,
                end,
            )
            .fetch_all(&mut *connection)
            .await?
        }
        Direction::Previous => {
            sqlx::query_as!(
                PageRow,
                r#"
                SELECT value::text AS "value!", revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp: _", fingerprint
                FROM measurement
                WHERE sensor_identifier = $1 AND creation_timestamp < $2
                    AND creation_timestamp > $4
                ORDER BY creation_timestamp DESC, fingerprint DESC
                LIMIT $3::bigint + 1
                "#,
                sensor,
                bound,
                PAGE_SIZE,
                end,
            )
            .fetch_all(&mut *connection)
            .await?
        }
    };
    Ok(rows)
}

/// As [`read_rows`], with the packed days: the first of the rows, then of the packed
/// measurements up to the last of those (to `end` when there are no more than a page).
async fn read_rows_and_packed_days(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
    page: PageRequest<Timestamp>,
    end: DateTime<Utc>,
) -> Result<Vec<PageRow>, sqlx::Error> {
    let (sensor, bound) = (sensor_identifier.as_uuid(), page.timestamp_bound());
    // Each value comes back as the json text PostgreSQL checked when it was stored.
    let rows = match page.direction {
        Direction::Next => {
            sqlx::query_as!(
                PageRow,
                r#"
                WITH stored AS MATERIALIZED (
                    SELECT value, revision, creation_timestamp, fingerprint
                    FROM measurement
                    WHERE sensor_identifier = $1 AND creation_timestamp > $2
                        AND creation_timestamp < $4
                    ORDER BY creation_timestamp, fingerprint
                    LIMIT $3::bigint + 1
                )
                SELECT value::text AS "value!", revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp!: _", fingerprint AS "fingerprint!"
                FROM (
                    SELECT * FROM stored
                    UNION ALL
                    SELECT value, revision, creation_timestamp, fingerprint
                    FROM packed_measurements_of_page(
                        $1, $2,
                        coalesce(
                            (
                                SELECT max(creation_timestamp) + interval '1 microsecond'
                                FROM stored HAVING count(*) > $3::bigint
                            ),
                            $4
                        ),
                        ($3::bigint + 1)::integer, true
                    )
                ) AS page
                ORDER BY creation_timestamp, fingerprint
                LIMIT $3::bigint + 1
                "#,
                sensor,
                bound,
                PAGE_SIZE,
                end,
            )
            .fetch_all(&mut *connection)
            .await?
        }
        Direction::Previous => {
            sqlx::query_as!(
                PageRow,
                r#"
                WITH stored AS MATERIALIZED (
                    SELECT value, revision, creation_timestamp, fingerprint
                    FROM measurement
                    WHERE sensor_identifier = $1 AND creation_timestamp < $2
                        AND creation_timestamp > $4
                    ORDER BY creation_timestamp DESC, fingerprint DESC
                    LIMIT $3::bigint + 1
                )
                SELECT value::text AS "value!", revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp!: _", fingerprint AS "fingerprint!"
                FROM (
                    SELECT * FROM stored
                    UNION ALL
                    SELECT value, revision, creation_timestamp, fingerprint
                    FROM packed_measurements_of_page(
                        $1, $2,
                        coalesce(
                            (
                                SELECT min(creation_timestamp) - interval '1 microsecond'
                                FROM stored HAVING count(*) > $3::bigint
                            ),
                            $4
                        ),
                        ($3::bigint + 1)::integer, false
                    )
                ) AS page
                ORDER BY creation_timestamp DESC, fingerprint DESC
                LIMIT $3::bigint + 1
                "#,
                sensor,
                bound,
                PAGE_SIZE,
                end,
            )
            .fetch_all(&mut *connection)
            .await?
        }
    };
    Ok(rows)
}

/// The measurements that follow `last` in the page's direction with its timestamp, in
/// that direction.
async fn read_rest_of_run(
    connection: &mut PgConnection,
    sensor_identifier: Identifier,
    direction: Direction,
    last: &PageRow,
) -> Result<Vec<PageRow>, sqlx::Error> {
    let run = sqlx::query_as!(
        PageRow,
        r#"
        SELECT value::text AS "value!", revision AS "revision: _",
            creation_timestamp AS "creation_timestamp!: _", fingerprint AS "fingerprint!"
        FROM measurements_in($1, $2::timestamptz, $2::timestamptz + interval '1 microsecond')
        ORDER BY fingerprint
        "#,
        sensor_identifier.as_uuid(),
        last.creation_timestamp.as_datetime(),
    )
    .fetch_all(connection)
    .await?;
    Ok(match direction {
        Direction::Next => run
            .into_iter()
            .filter(|row| row.fingerprint > last.fingerprint)
            .collect(),
        Direction::Previous => run
            .into_iter()
            .rev()
            .filter(|row| row.fingerprint < last.fingerprint)
            .collect(),
    })
}

/// One measurement of a page, its value as stored JSON text.
struct PageRow {
    value: String,
    revision: Option<Revision>,
    creation_timestamp: Timestamp,
    /// Orders measurements of one timestamp.
    fingerprint: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(value: &[(&str, f64)], revision: Option<i64>) -> NewMeasurement {
        NewMeasurement {
            sensor_identifier: Identifier::new(),
            timestamp: Timestamp::parse(1_683_645_000.0).unwrap(),
            revision: revision.map(|revision| Revision::parse(revision).unwrap()),
            value: value
                .iter()
                .map(|(attribute, number)| (Attribute::parse(*attribute).unwrap(), *number))
                .collect(),
            receipt_timestamp: Timestamp::now(),
            position: 0,
        }
    }

    #[test]
    fn fingerprints_differ_by_value_and_revision_only() {
        let base = measurement(&[("temperature", 20.5), ("humidity", 0.4)], Some(1));
        let mut moved = base.clone();
        moved.position = 7;
        moved.receipt_timestamp = Timestamp::parse(1.0).unwrap();
        assert_eq!(base.fingerprint(), moved.fingerprint());
        let others = [
            measurement(&[("temperature", 20.5), ("humidity", 0.5)], Some(1)),
            measurement(&[("temperature", 20.5), ("humidity", 0.4)], Some(2)),
            measurement(&[("temperature", 20.5), ("humidity", 0.4)], None),
            measurement(&[("temperature", 20.5)], Some(1)),
            measurement(&[("temperaturehumidity", 20.5), ("x", 0.4)], Some(1)),
        ];
        for other in others {
            assert_ne!(base.fingerprint(), other.fingerprint(), "{other:?}");
        }
        assert_eq!(
            measurement(&[("a", 0.0)], None).fingerprint(),
            measurement(&[("a", -0.0)], None).fingerprint()
        );
    }
}
