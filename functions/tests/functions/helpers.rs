//! What the functions' tests share.

use std::sync::Arc;

use sensorium_functions::AppState;
use sensorium_shared::publisher::ScheduledOnly;
use sensorium_shared::settings::Deployment;

/// A state whose pool never connects (nothing listens on port 1), for handlers that
/// must answer before a query, in the deployment `environment` of `branch_name`.
pub fn offline_state(environment: &str, branch_name: &str) -> AppState {
    let pool =
        sensorium_shared::database::connect("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
    let deployment = Deployment {
        environment: environment.into(),
        commit_sha: "abc".into(),
        branch_name: branch_name.into(),
    };
    AppState::new(pool, deployment, Arc::new(ScheduledOnly))
}
