//! Applies the migrations embedded in the binary, as `harness migrate` does locally.

use sensorium_shared::database::MIGRATOR;
use sqlx::PgPool;

/// What a migration run did.
#[derive(Debug, serde::Serialize)]
pub struct Migrated {
    /// The versions this run applied, in order; empty when the database was current.
    pub applied: Vec<i64>,
    /// The newest version the binary knows.
    pub latest: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("reading the applied migrations failed")]
    Read(#[from] sqlx::Error),
    #[error("applying the migrations failed")]
    Apply(#[from] sqlx::migrate::MigrateError),
}

pub async fn run(pool: &PgPool) -> Result<Migrated, MigrateError> {
    let before = applied_versions(pool).await?;
    MIGRATOR.run(pool).await?;
    let applied = MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .filter(|version| !before.contains(version))
        .collect::<Vec<_>>();
    let latest = MIGRATOR.iter().map(|migration| migration.version).max();
    tracing::info!(?applied, ?latest, "migrations applied");
    Ok(Migrated { applied, latest })
}

/// The versions already applied; none when sqlx's table does not exist yet.
async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await;
    match versions {
        // 42P01: undefined table, on a database never migrated.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => {
            Ok(Vec::new())
        }
        versions => versions,
    }
}
