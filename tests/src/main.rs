//! `harness [serve | bridge | migrate | maintain | seed | create-queues | redrive]`: runs
//! the local harness (the default); runs only the bridge, to the topic queues; applies
//! the migrations to `DATABASE_URL`; runs the measurement partitions' upkeep once (what
//! `serve` runs hourly and the cloud's retain-logs function daily); loads example data
//! into an empty database (only one `./scripts/develop` started itself: see
//! [`SEED_GUARD`]); creates the topic queues and their dead-letter queues (on an SQS
//! emulator, say); or moves the dead-letter queues' messages back to the topic queues.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sensorium_functions::cloud::SqsQueue;
use sensorium_functions::jobs::{migrate, retain_measurements};
use sensorium_harness::bridge::{self, Destination};
use sensorium_harness::mqtt::MqttOptions;
use sensorium_harness::queues::{self, TopicQueues};
use sensorium_shared::database::Role;
use sensorium_shared::{database, settings, telemetry};
use sqlx::postgres::PgConnectOptions;

const USAGE: &str = "usage: harness [serve | bridge | migrate | maintain | seed --private-database | create-queues [PREFIX] | redrive]";

/// What `seed` must be given: the example account's password is published (it is
/// printed, and in the code), so it may only go into a private database that
/// `./scripts/develop` started itself, never into one a `DATABASE_URL` names, which
/// may be shared or deployed.
const SEED_GUARD: &str = "--private-database";

/// Receives before a message of `create-queues`' queues goes to its dead-letter queue.
const MAX_RECEIVE_COUNT: u32 = 5;
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let mut arguments = std::env::args().skip(1);
    let command = arguments.next();
    match command.as_deref() {
        Some("bridge") => return run_bridge().await,
        Some("create-queues") => {
            let prefix = arguments.next().unwrap_or_else(|| "sensorium".into());
            let client = SqsQueue::client_from_env().await;
            let queues = queues::create_topic_queues(
                &client,
                &prefix,
                MAX_RECEIVE_COUNT,
                VISIBILITY_TIMEOUT,
            )
            .await?;
            for (topic, queue) in queues.iter() {
                println!("{}={}", queues::queue_variable(topic), queue.url());
            }
            return Ok(());
        }
        Some("redrive") => {
            let queues = TopicQueues::from_env()
                .await?
                .context("redrive needs the topic queues' URLs (MEASUREMENTS_QUEUE_URL, ...)")?;
            let moved = queues::redrive_all(&queues).await?;
            println!("moved {moved} messages back from the dead-letter queues");
            return Ok(());
        }
        Some("migrate") => {
            // Without the routes' statement timeout: on a large database a migration
            // that rebuilds a key runs for minutes, and here nothing waits for it.
            // (The cloud's migrate function has its role's timeout.)
            let options = PgConnectOptions::from_str(&settings::database_url()?)?;
            migrate::run(&database::connect_with(options, 1))
                .await
                .context("applying the migrations")?;
            return Ok(());
        }
        Some("maintain") => {
            let options = PgConnectOptions::from_str(&settings::database_url()?)?;
            let pool = database::connect_as(options, 1, Role::Maintenance);
            let upkeep = retain_measurements::run(&pool, settings::measurement_retention()?)
                .await
                .context("the measurement partitions' upkeep")?;
            println!(
                "partitions created {}, months packed {}, dropped {}",
                upkeep.created, upkeep.packed, upkeep.dropped
            );
            return Ok(());
        }
        _ => {}
    }
    let pool = database::connect(
        &settings::database_url()?,
        settings::database_max_connections(16)?,
    )?;
    match command.as_deref() {
        None | Some("serve") => sensorium_harness::server::run(pool).await,
        Some("seed") => {
            anyhow::ensure!(
                arguments.next().as_deref() == Some(SEED_GUARD),
                "the example account has a published password: harness seed loads it only \
                 into the private database ./scripts/develop starts ({SEED_GUARD})"
            );
            let broker = settings::mqtt_url()?;
            let mqtt = MqttOptions::from_url(&broker, &settings::mqtt_client_id())?;
            let credentials = sensorium_harness::server::credentials_provider(&mqtt)?;
            sensorium_harness::seed::run(&pool, credentials.as_ref(), &broker).await
        }
        Some(_) => anyhow::bail!(USAGE),
    }
}

/// `harness bridge`: a self-hosted broker's messages to the topic queues, until Ctrl-C.
async fn run_bridge() -> anyhow::Result<()> {
    let queues = TopicQueues::from_env()
        .await?
        .context("the bridge needs the topic queues' URLs (MEASUREMENTS_QUEUE_URL, ...)")?;
    let mqtt = MqttOptions::from_url(&settings::mqtt_url()?, &settings::mqtt_client_id())?;
    let _bridge = bridge::spawn(mqtt, Destination::Queues(queues))?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
