//! The scheduled log retention function: any event runs it.

use sensorium_functions::jobs::retain_logs;
use sensorium_functions::lambda;
use sensorium_shared::database::Role;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve_job(Role::Maintenance, |pool| async move {
        retain_logs::run(&pool)
            .await
            .map(|deleted| serde_json::json!({ "deleted": deleted }))
    })
    .await
}
