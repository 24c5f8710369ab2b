//! The scheduled retention function (logs, and measurement partitions): any event
//! runs it.

use sensorium_functions::jobs::{retain_logs, retain_measurements};
use sensorium_functions::lambda;
use sensorium_shared::database::Role;
use sensorium_shared::settings;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let measurement_retention = lambda::init(settings::measurement_retention()).await?;
    lambda::serve_job(Role::Maintenance, |pool| async move {
        let deleted = retain_logs::run(&pool).await?;
        let upkeep = retain_measurements::run(&pool, measurement_retention).await?;
        Ok::<_, sqlx::Error>(serde_json::json!({
            "deleted": deleted,
            "partitions_created": upkeep.created,
            "months_packed": upkeep.packed,
            "partitions_dropped": upkeep.dropped,
        }))
    })
    .await
}
