//! The configuration outbox's sweep: publishes each sensor's newest unpublished
//! configuration to `configurations/<sensor>` (retained, QoS 1) and records the
//! publication once the broker accepted it. A failed publication stays in the outbox
//! with its error and is retried after a backoff of its own, so one configuration
//! the broker refuses never holds up the others; a broker outage only delays them.

use std::time::Duration;

use sensorium_shared::error::ErrorChain;
use sensorium_shared::publisher::Publisher;
use sensorium_shared::queries::outbox::{
    UnpublishedConfiguration, read_oldest_unpublished_age, read_unpublished_configurations,
    update_publication_failure, update_publication_timestamp,
};
use sqlx::PgPool;

/// Most configurations one sweep reads; the next sweep takes the rest.
const SWEEP_LIMIT: i64 = 1000;
/// Failures in a row after which a sweep stops: the broker is down or refuses
/// everything, and trying the rest would only wait for each to fail alike.
const FAILURES_IN_A_ROW_LIMIT: usize = 3;
/// Backoff after a configuration's first failed publication, doubled per failure.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAXIMUM_BACKOFF: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
#[error("reading or updating the outbox failed")]
pub struct SweepError(#[from] sqlx::Error);

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sweep {
    /// Configurations the broker accepted.
    pub published: usize,
    /// Configurations whose publication failed; each backs off and is retried.
    pub failed: usize,
}

/// The backoff after a configuration's `attempt_count`-th failed publication.
pub fn backoff(attempt_count: i32) -> Duration {
    let exponent = attempt_count.clamp(0, 20) as u32;
    INITIAL_BACKOFF
        .saturating_mul(1 << exponent)
        .min(MAXIMUM_BACKOFF)
}

/// One sweep over the due configurations of the outbox.
pub async fn run(pool: &PgPool, publisher: &dyn Publisher) -> Result<Sweep, SweepError> {
    let configurations = read_unpublished_configurations(pool, SWEEP_LIMIT).await?;
    let mut sweep = Sweep::default();
    let mut failures_in_a_row = 0;
    for configuration in configurations {
        if publish(pool, publisher, &configuration).await? {
            sweep.published += 1;
            failures_in_a_row = 0;
        } else {
            sweep.failed += 1;
            failures_in_a_row += 1;
            if failures_in_a_row == FAILURES_IN_A_ROW_LIMIT {
                tracing::warn!(
                    failures_in_a_row,
                    "publications keep failing; the next sweep tries again"
                );
                break;
            }
        }
    }
    Ok(sweep)
}

/// Publishes one configuration and records the outcome; returns whether the broker
/// accepted it.
async fn publish(
    pool: &PgPool,
    publisher: &dyn Publisher,
    configuration: &UnpublishedConfiguration,
) -> Result<bool, SweepError> {
    let topic = format!("configurations/{}", configuration.sensor_identifier);
    let payload = serde_json::json!({
        "revision": configuration.revision,
        "configuration": configuration.value,
    });
    match publisher
        .publish(&topic, payload.to_string().into_bytes())
        .await
    {
        Ok(()) => {
            update_publication_timestamp(
                pool,
                configuration.sensor_identifier,
                configuration.revision,
            )
            .await?;
            Ok(true)
        }
        Err(error) => {
            let retry_after = backoff(configuration.attempt_count);
            let error = ErrorChain(&error).to_string();
            tracing::warn!(
                sensor_identifier = %configuration.sensor_identifier,
                revision = configuration.revision.get(),
                topic,
                error,
                retry_in_s = retry_after.as_secs_f64(),
                "publishing a configuration failed; it is retried after a backoff"
            );
            update_publication_failure(
                pool,
                configuration.sensor_identifier,
                configuration.revision,
                &error,
                retry_after.as_secs_f64(),
            )
            .await?;
            Ok(false)
        }
    }
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
