//! `GET /status`: what is deployed and since when.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use sensorium_shared::domain::Timestamp;
use serde::Serialize;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/status", get(read_status))
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub environment: String,
    pub commit_sha: String,
    pub branch_name: String,
    pub start_timestamp: Timestamp,
}

pub async fn read_status(State(state): State<AppState>) -> Json<Status> {
    Json(Status {
        environment: state.deployment.environment.clone(),
        commit_sha: state.deployment.commit_sha.clone(),
        branch_name: state.deployment.branch_name.clone(),
        start_timestamp: Timestamp::from_datetime(state.start_timestamp),
    })
}
