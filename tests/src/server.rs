//! The harness proper: the HTTP server, the MQTT bridge, the configuration outbox and
//! the timers, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sensorium_functions::jobs::{retain_logs, retain_measurements};
use sensorium_functions::{AppState, routes};
use sensorium_shared::credentials::{CredentialsProvider, NoCredentials};
use sensorium_shared::database::{self, Role};
use sensorium_shared::error::ErrorChain;
use sensorium_shared::settings::{self, CredentialsProviderKind, Deployment};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::bridge::{self, BridgeThread, Destination};
use crate::credentials::MosquittoCredentials;
use crate::mqtt::MqttOptions;
use crate::publisher::{MqttPublisher, OutboxWaker};
use crate::queues::{EventSourceMapping, TopicQueues};

/// How often the retention jobs run (and once at start).
const RETENTION_INTERVAL: Duration = Duration::from_secs(60 * 60);

pub async fn run(pool: PgPool) -> anyhow::Result<()> {
    let address = settings::http_address()?;
    let token_lifetime = settings::token_lifetime()?;
    let mqtt = MqttOptions::from_url(&settings::mqtt_url()?, &settings::mqtt_client_id())?;
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let credentials = credentials_provider(&mqtt)?;
    let queues = TopicQueues::from_env().await?;
    let background = spawn_background(pool.clone(), mqtt, queues)?;
    let state = AppState::new(pool, Deployment::from_env(), background.outbox.clone())
        .with_credentials(credentials)
        .with_token_lifetime(token_lifetime);
    tracing::info!(%address, "serving HTTP");
    let served = serve(listener, state).await;
    drop(background);
    served
}

/// The provider `CREDENTIALS_PROVIDER` names, for the broker of `mqtt`.
pub fn credentials_provider(mqtt: &MqttOptions) -> anyhow::Result<Arc<dyn CredentialsProvider>> {
    Ok(match settings::credentials_provider()? {
        CredentialsProviderKind::Mosquitto => Arc::new(MosquittoCredentials::new(mqtt.clone())),
        CredentialsProviderKind::None => Arc::new(NoCredentials),
        CredentialsProviderKind::AwsIot => anyhow::bail!(
            "CREDENTIALS_PROVIDER=aws-iot is for the cloud's credentials function; the harness manages a Mosquitto (mosquitto) or none"
        ),
    })
}

/// What runs beside the HTTP server: the bridge, the outbox with its sweep, and the
/// log retention timer. Dropping it stops them.
pub struct Background {
    pub tasks: JoinSet<()>,
    pub bridge: BridgeThread,
    /// Wakes the outbox; what route handlers call after creating a configuration.
    pub outbox: Arc<OutboxWaker>,
    /// True once the bridge is subscribed to the sensor topics.
    pub subscribed: watch::Receiver<bool>,
    /// The broker's count of dropped messages, once it reported one.
    pub broker_dropped: watch::Receiver<Option<u64>>,
}

/// Starts the background, each part with a pool of its own to the database of `pool`,
/// whose statements may run as long as the cloud function doing that part may. With
/// `queues`, the bridge sends to them and a consumer per queue feeds the topic
/// functions, as in the cloud; without, the bridge calls the functions itself.
pub fn spawn_background(
    pool: PgPool,
    mqtt: MqttOptions,
    queues: Option<TopicQueues>,
) -> anyhow::Result<Background> {
    let database = (*pool.connect_options()).clone();
    let waker = Arc::new(OutboxWaker::default());
    let publisher = Arc::new(MqttPublisher::new(mqtt.clone()));
    let mut tasks = JoinSet::new();
    let destination = match queues {
        Some(queues) => {
            let topic_pool = database::connect_as(database.clone(), 3, Role::Topic);
            for (topic, queue) in queues.iter() {
                tracing::info!(
                    topic = topic.prefix(),
                    queue = queue.url(),
                    "consuming a topic queue"
                );
                tasks.spawn(crate::queues::consume(
                    topic,
                    queue.clone(),
                    topic_pool.clone(),
                    EventSourceMapping::default(),
                ));
            }
            Destination::Queues(queues)
        }
        None => Destination::Functions(Box::new(database.clone())),
    };
    let (bridge, status) =
        bridge::spawn(mqtt, destination).context("starting the bridge's thread")?;
    tasks.spawn(crate::publisher::run_outbox(
        database::connect_as(database.clone(), 1, Role::Publisher),
        publisher,
        waker.clone(),
    ));
    let measurement_retention = settings::measurement_retention()?;
    tasks.spawn(run_retention(
        database::connect_as(database, 1, Role::Maintenance),
        measurement_retention,
    ));
    Ok(Background {
        tasks,
        bridge,
        outbox: waker,
        subscribed: status.subscribed,
        broker_dropped: status.broker_dropped,
    })
}

async fn run_retention(pool: PgPool, measurement_retention: Option<chrono::TimeDelta>) {
    let mut interval = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        interval.tick().await;
        if let Err(error) = retain_logs::run(&pool).await {
            tracing::warn!(error = %ErrorChain(&error), "the log retention job failed");
        }
        if let Err(error) = retain_measurements::run(&pool, measurement_retention).await {
            tracing::warn!(error = %ErrorChain(&error), "the measurement retention job failed");
        }
    }
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
