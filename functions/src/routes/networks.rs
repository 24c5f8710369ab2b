//! `/networks`: create networks, list the caller's, and a network's overview.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sensorium_shared::domain::{Identifier, NetworkName};
use sensorium_shared::queries::networks::{self, Network};
use serde::{Deserialize, Serialize};
use sqlx::Connection;

use crate::AppState;
use crate::auth::{authenticate, authorize_network};
use crate::error::Error;
use crate::extract::{
    Authorization, JsonBody, NetworkPath, NoQuery, PathParameters, QueryParameters,
};
use crate::routes::JsonText;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/networks", get(read_networks).post(create_network))
        .route("/networks/{network_identifier}", get(read_network))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNetwork {
    pub network_name: NetworkName,
}

#[derive(Debug, Serialize)]
pub struct CreatedNetwork {
    pub network_identifier: Identifier,
}

/// Creates the network and gives its creator permission on it: 409 if the name is taken.
pub async fn create_network(
    State(state): State<AppState>,
    authorization: Authorization,
    JsonBody(network): JsonBody<NewNetwork>,
) -> Result<(StatusCode, Json<CreatedNetwork>), Error> {
    let mut authorized = authenticate(&state, &authorization).await?;
    let network_identifier = Identifier::new();
    let mut transaction = authorized.connection.begin().await?;
    networks::create_network(&mut *transaction, network_identifier, &network.network_name).await?;
    networks::create_permission(
        &mut *transaction,
        authorized.user_identifier,
        network_identifier,
    )
    .await?;
    transaction.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedNetwork { network_identifier }),
    ))
}

/// The networks the caller has permission on.
pub async fn read_networks(
    State(state): State<AppState>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<Json<Vec<Network>>, Error> {
    let mut authorized = authenticate(&state, &authorization).await?;
    Ok(Json(
        networks::read_networks(&mut *authorized.connection, authorized.user_identifier).await?,
    ))
}

/// Per sensor of the network, its measurement counts per 4-hour bucket. Concurrent
/// requests for one network share a query (`crate::coalesce`): an overview of 1,000
/// sensors is 168,000 buckets.
pub async fn read_network(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<NetworkPath>,
    QueryParameters(NoQuery {}): QueryParameters<NoQuery>,
    authorization: Authorization,
) -> Result<JsonText, Error> {
    let authorized = authorize_network(&state, &authorization, path.network_identifier).await?;
    // Its connection goes back to the pool first: the shared query takes one, and
    // waiting requests holding theirs could leave it none.
    drop(authorized);
    let overview = state
        .network_activity
        .get(path.network_identifier)
        .await
        .ok_or_else(|| Error::internal("the network overview's query ended without an answer"))?;
    Ok(JsonText(overview?))
}
