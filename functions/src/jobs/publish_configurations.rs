//! The configuration outbox's sweep: publishes each sensor's newest unpublished
//! configuration to `configurations/<sensor>` (retained, QoS 1) and records the
//! publication once the broker accepted it. A failed publication leaves the row
//! unpublished for the next sweep, so a broker outage only delays it.

use sensorium_shared::error::ErrorChain;
use sensorium_shared::publisher::{PublishError, Publisher};
use sensorium_shared::queries::outbox::{
    read_oldest_unpublished_age, read_unpublished_configurations, update_publication_timestamp,
};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("reading or updating the outbox failed")]
    Database(#[from] sqlx::Error),
    #[error("the broker did not accept a configuration")]
    Publish(#[from] PublishError),
}

/// One sweep over the outbox. Returns how many configurations were published; stops
/// at the first publication that fails, as the others would fail alike.
pub async fn run(pool: &PgPool, publisher: &dyn Publisher) -> Result<usize, SweepError> {
    let configurations = read_unpublished_configurations(pool).await?;
    let mut published = 0;
    for configuration in configurations {
        let topic = format!("configurations/{}", configuration.sensor_identifier);
        let payload = serde_json::json!({
            "revision": configuration.revision,
            "configuration": configuration.value,
        });
        if let Err(error) = publisher
            .publish(&topic, payload.to_string().into_bytes())
            .await
        {
            tracing::warn!(
                sensor_identifier = %configuration.sensor_identifier,
                topic,
                error = %ErrorChain(&error),
                "publishing a configuration failed; the next sweep retries"
            );
            return Err(error.into());
        }
        update_publication_timestamp(
            pool,
            configuration.sensor_identifier,
            configuration.revision,
        )
        .await?;
        published += 1;
    }
    Ok(published)
}

/// Prints the age in seconds of the oldest configuration still waiting for the broker
/// (0 when none waits) as a CloudWatch embedded-metric line: namespace `Sensorium`,
/// metric `OldestUnpublishedConfigurationAge`, dimension `Environment`. The template's
/// alarm watches it; a failure to read it is only logged.
pub async fn report_oldest_unpublished(pool: &PgPool, environment: &str) {
    match read_oldest_unpublished_age(pool).await {
        Ok(age) => println!(
            "{}",
            oldest_unpublished_metric(environment, age, chrono::Utc::now())
        ),
        Err(error) => tracing::warn!(
            error = %ErrorChain(&error),
            "reading the age of the oldest unpublished configuration failed"
        ),
    }
}

/// The embedded-metric JSON of [`report_oldest_unpublished`].
pub fn oldest_unpublished_metric(
    environment: &str,
    age_seconds: f64,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    serde_json::json!({
        "_aws": {
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "Sensorium",
                "Dimensions": [["Environment"]],
                "Metrics": [{"Name": "OldestUnpublishedConfigurationAge", "Unit": "Seconds"}],
            }],
        },
        "Environment": environment,
        "OldestUnpublishedConfigurationAge": age_seconds,
    })
}
