//! Log messages of sensors.

use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};

use crate::domain::{Identifier, Revision, Severity, Timestamp};
use crate::limits::{LOG_RETENTION_DAYS, PAGE_SIZE};
use crate::pages::{Direction, PageRequest};
use crate::queries::measurements::hash_revision;
use crate::queries::{Duplicates, insert_skipping_stored};

/// One log message as received, validated (subject and details already cut to
/// their limits), ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLogMessage {
    pub sensor_identifier: Identifier,
    pub timestamp: Timestamp,
    pub severity: Severity,
    pub subject: String,
    pub details: Option<String>,
    pub revision: Option<Revision>,
    pub receipt_timestamp: Timestamp,
    pub position: i32,
}

impl NewLogMessage {
    /// SHA-256 of revision, severity, subject and details: with sensor and timestamp,
    /// what makes two log messages the same.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut hasher = Sha256::new();
        hash_revision(&mut hasher, self.revision);
        hasher.update(self.severity.as_str().as_bytes());
        hasher.update((self.subject.len() as u64).to_le_bytes());
        hasher.update(self.subject.as_bytes());
        match &self.details {
            None => hasher.update([0]),
            Some(details) => {
                hasher.update([1]);
                hasher.update(details.as_bytes());
            }
        }
        hasher.finalize().to_vec()
    }
}

/// Stores log messages, skipping those already stored. Returns how many were new.
/// Every sensor must exist (filter first). A plain insert first; see
/// `queries::insert_skipping_stored`.
pub async fn create_log_messages(
    pool: &PgPool,
    log_messages: &[NewLogMessage],
) -> Result<u64, sqlx::Error> {
    insert_skipping_stored(|duplicates| insert_log_messages(pool, log_messages, duplicates)).await
}

/// Stores log messages in one statement; `duplicates` says what becomes of one that
/// is stored already. Returns how many were stored.
pub async fn insert_log_messages(
    executor: impl PgExecutor<'_>,
    log_messages: &[NewLogMessage],
    duplicates: Duplicates,
) -> Result<u64, sqlx::Error> {
    let length = log_messages.len();
    let mut sensor_identifiers = Vec::with_capacity(length);
    let mut creation_timestamps = Vec::with_capacity(length);
    let mut fingerprints = Vec::with_capacity(length);
    let mut severities = Vec::with_capacity(length);
    let mut subjects = Vec::with_capacity(length);
    let mut details = Vec::with_capacity(length);
    let mut revisions = Vec::with_capacity(length);
    let mut receipt_timestamps = Vec::with_capacity(length);
    let mut positions = Vec::with_capacity(length);
    for log_message in log_messages {
        sensor_identifiers.push(log_message.sensor_identifier.as_uuid());
        creation_timestamps.push(log_message.timestamp.as_datetime());
        fingerprints.push(log_message.fingerprint());
        severities.push(log_message.severity.as_str());
        subjects.push(log_message.subject.as_str());
        details.push(log_message.details.as_deref());
        revisions.push(log_message.revision.map(|revision| revision.get()));
        receipt_timestamps.push(log_message.receipt_timestamp.as_datetime());
        positions.push(log_message.position);
    }
    // One statement, in two forms: as it is, and with the clause that skips stored rows
    // (see `Duplicates`). The clause is appended with `+`, which sqlx's macros take, so
    // that both forms are checked and the statement is written once.
    macro_rules! insert {
        ($($clause:literal)?) => {
            sqlx::query!(
                r#"
                INSERT INTO log (
                    sensor_identifier, creation_timestamp, fingerprint, severity, subject,
                    details, revision, receipt_timestamp, position
                )
                SELECT * FROM UNNEST(
                    $1::uuid[], $2::timestamptz[], $3::bytea[], $4::text[]::severity[],
                    $5::text[], $6::text[], $7::integer[], $8::timestamptz[], $9::integer[]
                )
                "# $(+ $clause)?,
                &sensor_identifiers,
                &creation_timestamps,
                &fingerprints,
                &severities as _,
                &subjects as _,
                &details as _,
                &revisions as _,
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

/// Deletes the logs received longer ago than the retention window. Their age counts
/// from the server's receipt, as the sensor's clock may be unset or far ahead. Returns
/// how many were deleted.
pub async fn delete_expired_logs(executor: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let result = sqlx::query!(
        "DELETE FROM log WHERE receipt_timestamp < now() - make_interval(days => $1)",
        LOG_RETENTION_DAYS as i32,
    )
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// A stored log message as the REST API returns it.
#[derive(Debug, serde::Serialize)]
pub struct LogMessage {
    pub severity: Severity,
    pub subject: String,
    pub details: Option<String>,
    pub revision: Option<Revision>,
    pub creation_timestamp: Timestamp,
}

/// A page of the sensor's log messages by creation time, ascending. A page that ends
/// inside a run of equal timestamps holds the whole run (see `pages`).
pub async fn read_log_messages(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    page: PageRequest<Timestamp>,
) -> Result<Vec<LogMessage>, sqlx::Error> {
    let (sensor, bound) = (sensor_identifier.as_uuid(), page.timestamp_bound());
    match page.direction {
        Direction::Next => {
            sqlx::query_as!(
                LogMessage,
                r#"
                SELECT severity AS "severity: _", subject, details, revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp: _"
                FROM log
                WHERE sensor_identifier = $1 AND creation_timestamp > $2
                    AND creation_timestamp <= coalesce(
                        (
                            SELECT creation_timestamp
                            FROM log
                            WHERE sensor_identifier = $1 AND creation_timestamp > $2
                            ORDER BY creation_timestamp
                            OFFSET $3::bigint - 1 LIMIT 1
                        ),
                        'infinity'
                    )
                ORDER BY creation_timestamp, fingerprint
                "#,
                sensor,
                bound,
                PAGE_SIZE,
            )
            .fetch_all(executor)
            .await
        }
        Direction::Previous => {
            sqlx::query_as!(
                LogMessage,
                r#"
                SELECT severity AS "severity: _", subject, details, revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp: _"
                FROM log
                WHERE sensor_identifier = $1 AND creation_timestamp < $2
                    AND creation_timestamp >= coalesce(
                        (
                            SELECT creation_timestamp
                            FROM log
                            WHERE sensor_identifier = $1 AND creation_timestamp < $2
                            ORDER BY creation_timestamp DESC
                            OFFSET $3::bigint - 1 LIMIT 1
                        ),
                        '-infinity'
                    )
                ORDER BY creation_timestamp, fingerprint
                "#,
                sensor,
                bound,
                PAGE_SIZE,
            )
            .fetch_all(executor)
            .await
        }
    }
}

/// The sensor's warnings or errors of one subject, summarized.
#[derive(Debug, serde::Serialize)]
pub struct LogAggregate {
    pub severity: Severity,
    pub subject: String,
    /// The revision of the group's oldest log message.
    pub min_revision: Option<Revision>,
    /// The revision of the group's newest log message.
    pub max_revision: Option<Revision>,
    pub min_creation_timestamp: Timestamp,
    pub max_creation_timestamp: Timestamp,
    pub count: i64,
}

/// The sensor's warnings and errors grouped by severity and subject, ordered by the
/// time of each group's newest log message.
pub async fn read_log_aggregates(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
) -> Result<Vec<LogAggregate>, sqlx::Error> {
    sqlx::query_as!(
        LogAggregate,
        r#"
        SELECT
            severity AS "severity: _",
            subject,
            (array_agg(revision ORDER BY creation_timestamp, position))[1]
                AS "min_revision: _",
            (array_agg(revision ORDER BY creation_timestamp DESC, position DESC))[1]
                AS "max_revision: _",
            min(creation_timestamp) AS "min_creation_timestamp!: _",
            max(creation_timestamp) AS "max_creation_timestamp!: _",
            count(*) AS "count!"
        FROM log
        WHERE sensor_identifier = $1 AND severity <> 'info'
        GROUP BY severity, subject
        ORDER BY max(creation_timestamp), severity, subject
        "#,
        sensor_identifier.as_uuid(),
    )
    .fetch_all(executor)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_message(subject: &str, details: Option<&str>) -> NewLogMessage {
        NewLogMessage {
            sensor_identifier: Identifier::new(),
            timestamp: Timestamp::parse(1_683_645_000.0).unwrap(),
            severity: Severity::Error,
            subject: subject.into(),
            details: details.map(Into::into),
            revision: None,
            receipt_timestamp: Timestamp::now(),
            position: 0,
        }
    }

    #[test]
    fn fingerprints_tell_subject_from_details() {
        assert_ne!(
            log_message("ab", Some("c")).fingerprint(),
            log_message("a", Some("bc")).fingerprint()
        );
        assert_ne!(
            log_message("a", None).fingerprint(),
            log_message("a", Some("")).fingerprint()
        );
        let mut warning = log_message("a", None);
        warning.severity = Severity::Warning;
        assert_ne!(warning.fingerprint(), log_message("a", None).fingerprint());
        let mut moved = log_message("a", None);
        moved.position = 3;
        assert_eq!(moved.fingerprint(), log_message("a", None).fingerprint());
    }
}
