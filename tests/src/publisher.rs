//! The configuration outbox in the harness: an MQTT `Publisher`, the trigger that
//! wakes the sweep, and the sweep's loop.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use sensorium_functions::jobs::publish_configurations;
use sensorium_shared::error::ErrorChain;
use sensorium_shared::publisher::{BoxFuture, OutboxTrigger, PublishError, Publisher};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::mqtt::MqttOptions;

/// How long one publication may take, connection included.
const PUBLICATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two sweeps when nothing wakes the outbox: how long a broker outage can
/// delay a configuration beyond the broker's return.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Publishes over a connection of its own per publication: the broker's PUBACK then
/// surely answers this message, and a lost connection leaves nothing half-sent to
/// pair with later ones. Configurations are rare enough for the extra round trip.
pub struct MqttPublisher {
    options: MqttOptions,
}

impl MqttPublisher {
    /// `options` are the bridge's: the publisher connects as `<client id>-publisher`,
    /// since a connection under the bridge's own id would take over its session.
    pub fn new(mut options: MqttOptions) -> Self {
        let inner = options.inner_mut();
        let client_id = format!("{}-publisher", inner.client_id());
        // Nothing to resume: a publication that failed is retried by the next sweep.
        inner.set_client_id(client_id).set_clean_session(true);
        Self { options }
    }

    async fn publish_once(&self, topic: &str, payload: Vec<u8>) -> Result<(), PublishError> {
        let (client, mut event_loop) = AsyncClient::new(self.options.clone().into_inner(), 1);
        client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .map_err(|error| PublishError(error.into()))?;
        let acknowledged = async {
            loop {
                match event_loop.poll().await {
                    // The only QoS 1 message of this connection.
                    Ok(Event::Incoming(Packet::PubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(error) => return Err(PublishError(error.into())),
                }
            }
        };
        let result = tokio::time::timeout(PUBLICATION_TIMEOUT, acknowledged)
            .await
            .unwrap_or_else(|elapsed| Err(PublishError(elapsed.into())));
        if result.is_ok() {
            // A polite goodbye; the broker cleans up after a dropped socket anyway.
            if client.try_disconnect().is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(1), event_loop.poll()).await;
            }
        }
        result
    }
}

impl Publisher for MqttPublisher {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(self.publish_once(topic, payload))
    }
}

/// Wakes the sweep loop; a wake during a sweep runs one more sweep after it.
#[derive(Default)]
pub struct OutboxWaker(Notify);

impl OutboxTrigger for OutboxWaker {
    fn wake(&self) -> BoxFuture<'_, ()> {
        self.0.notify_one();
        Box::pin(std::future::ready(()))
    }
}

/// Sweeps the outbox when woken and every `SWEEP_INTERVAL`, one sweep at a time, so
/// that a newer configuration is never overtaken by an older one.
pub async fn run_outbox(pool: PgPool, publisher: Arc<dyn Publisher>, waker: Arc<OutboxWaker>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = waker.0.notified() => {}
        }
        match publish_configurations::run(&pool, publisher.as_ref()).await {
            // The job logged each failed publication; each is retried after its backoff.
            Ok(sweep) if sweep.published == 0 => {}
            Ok(sweep) => tracing::info!(published = sweep.published, "published configurations"),
            Err(error) => tracing::warn!(error = %ErrorChain(&error), "the outbox sweep failed"),
        }
    }
}
