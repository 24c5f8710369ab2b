//! Configurations of sensors, numbered per sensor by revision.

use sqlx::PgExecutor;

use crate::domain::{Identifier, Revision, Timestamp};
use crate::limits::PAGE_SIZE;
use crate::pages::{Direction, PageRequest, ascending};

/// Stores a configuration under the sensor's next revision, unpublished, and returns
/// the revision; `None` if the sensor does not exist.
///
/// Bumping the sensor's counter and inserting in one statement makes revisions
/// distinct and gap-free under concurrency: the counter's row lock orders concurrent
/// creates, and a failed insert rolls the bump back.
pub async fn create_configuration(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    value: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Revision>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        WITH next AS (
            UPDATE sensor
            SET next_revision = next_revision + 1
            WHERE identifier = $1
            RETURNING next_revision - 1 AS revision
        ), inserted AS (
            INSERT INTO configuration (sensor_identifier, revision, value)
            SELECT $1, revision, $2 FROM next
            RETURNING revision
        ), waiting AS (
            -- Into the outbox, replacing an older configuration still waiting there.
            INSERT INTO configuration_outbox (sensor_identifier, revision)
            SELECT $1, revision FROM inserted
            ON CONFLICT (sensor_identifier) DO UPDATE
            SET revision = excluded.revision,
                attempt_count = 0,
                next_attempt_timestamp = now(),
                last_error = NULL
        )
        SELECT revision AS "revision!: Revision" FROM inserted
        "#,
        sensor_identifier.as_uuid(),
        sqlx::types::Json(value) as _,
    )
    .fetch_optional(executor)
    .await
}

/// A stored configuration as the REST API returns it; what has not happened yet
/// (publication, acknowledgement) is `None`.
#[derive(Debug, serde::Serialize)]
pub struct Configuration {
    pub value: Box<serde_json::value::RawValue>,
    pub revision: Revision,
    pub creation_timestamp: Timestamp,
    pub publication_timestamp: Option<Timestamp>,
    pub acknowledgement_timestamp: Option<Timestamp>,
    pub receipt_timestamp: Option<Timestamp>,
    pub success: Option<bool>,
}

/// A page of the sensor's configurations by revision, ascending.
pub async fn read_configurations(
    executor: impl PgExecutor<'_>,
    sensor_identifier: Identifier,
    page: PageRequest<Revision>,
) -> Result<Vec<Configuration>, sqlx::Error> {
    let (sensor, bound) = (sensor_identifier.as_uuid(), page.revision_bound());
    // The same columns in both directions; only the comparison and the order differ.
    // The bound is a bigint: without a cursor it lies just outside the revisions.
    let rows = match page.direction {
        Direction::Next => {
            sqlx::query_as!(
                Configuration,
                r#"
                SELECT
                    value AS "value: _", revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp: _",
                    publication_timestamp AS "publication_timestamp: _",
                    acknowledgement_timestamp AS "acknowledgement_timestamp: _",
                    receipt_timestamp AS "receipt_timestamp: _", success
                FROM configuration
                WHERE sensor_identifier = $1 AND revision > $2::bigint
                ORDER BY revision
                LIMIT $3
                "#,
                sensor,
                bound,
                PAGE_SIZE,
            )
            .fetch_all(executor)
            .await?
        }
        Direction::Previous => {
            sqlx::query_as!(
                Configuration,
                r#"
                SELECT
                    value AS "value: _", revision AS "revision: _",
                    creation_timestamp AS "creation_timestamp: _",
                    publication_timestamp AS "publication_timestamp: _",
                    acknowledgement_timestamp AS "acknowledgement_timestamp: _",
                    receipt_timestamp AS "receipt_timestamp: _", success
                FROM configuration
                WHERE sensor_identifier = $1 AND revision < $2::bigint
                ORDER BY revision DESC
                LIMIT $3
                "#,
                sensor,
                bound,
                PAGE_SIZE,
            )
            .fetch_all(executor)
            .await?
        }
    };
    Ok(ascending(page.direction, rows))
}
