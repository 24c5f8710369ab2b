//! `harness [serve|migrate|seed]`: runs the local harness (the default), applies the
//! migrations to `DATABASE_URL`, or loads example data into an empty database.

use anyhow::Context;
use sensorium_harness::mqtt::MqttOptions;
use sensorium_shared::{database, settings, telemetry};

const USAGE: &str = "usage: harness [serve | migrate | seed]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let command = std::env::args().nth(1);
    let pool = database::connect(
        &settings::database_url()?,
        settings::database_max_connections(16)?,
    )?;
    match command.as_deref() {
        None | Some("serve") => sensorium_harness::server::run(pool).await,
        Some("migrate") => {
            database::MIGRATOR
                .run(&pool)
                .await
                .context("applying the migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some("seed") => {
            let broker = settings::mqtt_url()?;
            let mqtt = MqttOptions::from_url(&broker, &settings::mqtt_client_id())?;
            let credentials = sensorium_harness::server::credentials_provider(&mqtt)?;
            sensorium_harness::seed::run(&pool, credentials.as_ref(), &broker).await
        }
        Some(_) => anyhow::bail!(USAGE),
    }
}
