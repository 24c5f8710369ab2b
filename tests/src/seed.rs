//! Example data for `./scripts/develop`: loaded only into an empty database.

use sqlx::PgPool;

pub async fn run(pool: &PgPool) -> anyhow::Result<()> {
    let users: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "user""#)
        .fetch_one(pool)
        .await?;
    if users > 0 {
        tracing::info!("the database holds data already; no example data loaded");
        return Ok(());
    }
    tracing::info!("example data comes with the REST API");
    Ok(())
}
