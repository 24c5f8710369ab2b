//! Log retention: deletes the logs received more than 8 weeks ago.

use sensorium_shared::queries::logs::delete_expired_logs;
use sqlx::PgPool;

/// Returns how many logs were deleted.
pub async fn run(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let deleted = delete_expired_logs(pool).await?;
    tracing::info!(deleted, "deleted expired logs");
    Ok(deleted)
}
