//! The `migrate` function: applies the migrations embedded in the binary from inside
//! the VPC; a deploy's custom resource invokes it. Answers
//! `{"applied": [<versions applied now>], "latest": <version>}`.

use sensorium_functions::jobs::migrate;
use sensorium_functions::lambda;
use sensorium_shared::database::Role;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve_job(Role::Maintenance, |pool| async move {
        migrate::run(&pool).await
    })
    .await
}
