//! What the topic functions ask before storing: which sensors exist. The measurement
//! and log inserts fail on a sensor that does not exist, so a batch is filtered first.

use std::collections::HashSet;

use sqlx::PgExecutor;

use crate::domain::Identifier;

/// Of `sensor_identifiers`, those of sensors that exist.
pub async fn read_existing_sensor_identifiers(
    executor: impl PgExecutor<'_>,
    sensor_identifiers: &[Identifier],
) -> Result<HashSet<Identifier>, sqlx::Error> {
    let sensor_identifiers: Vec<uuid::Uuid> =
        sensor_identifiers.iter().map(Identifier::as_uuid).collect();
    let existing: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT identifier FROM sensor WHERE identifier = ANY($1::uuid[])")
            .bind(sensor_identifiers)
            .fetch_all(executor)
            .await?;
    Ok(existing.into_iter().map(Identifier::from).collect())
}
