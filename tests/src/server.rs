//! The harness proper: the HTTP server, the MQTT bridge and the timers, until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sensorium_functions::{AppState, routes};
use sensorium_shared::publisher::ScheduledOnly;
use sensorium_shared::settings::{self, Deployment};
use sqlx::PgPool;
use tokio::net::TcpListener;

pub async fn run(pool: PgPool) -> anyhow::Result<()> {
    let address = settings::http_address()?;
    let mqtt_url = settings::mqtt_url()?;
    let state = AppState::new(pool, Deployment::from_env(), Arc::new(ScheduledOnly));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let mqtt = crate::mqtt::MqttOptions::from_url(&mqtt_url, &settings::mqtt_client_id())?;
    let bridge = tokio::spawn(crate::mqtt::run_connection(mqtt));
    tracing::info!(%address, "serving HTTP");
    let served = serve(listener, state).await;
    bridge.abort();
    served
}

/// Serves every route function's routes on `listener` until shutdown is signalled.
pub async fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<()> {
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
}

/// Binds `address` (port 0 for any) and serves in the background; for tests.
pub async fn spawn_http(address: SocketAddr, state: AppState) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(address).await?;
    let local_address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, routes::router(state)).await });
    Ok(local_address)
}

async fn shutdown_signal() {
    let interrupt = async {
        tokio::signal::ctrl_c().await.ok();
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
