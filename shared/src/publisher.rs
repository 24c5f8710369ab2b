//! The cloud edge that carries configurations to sensors: MQTT in the local harness,
//! the AWS IoT data plane in the cloud. Domain code sees only this trait.

use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a publication failed; the outbox keeps the configuration and tries again later.
#[derive(Debug, thiserror::Error)]
#[error("publication failed: {0}")]
pub struct PublishError(pub Box<dyn std::error::Error + Send + Sync>);

/// Publishes a retained QoS 1 message and resolves once the broker accepted it.
pub trait Publisher: Send + Sync {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), PublishError>>;
}

/// Tells the configuration outbox that a new configuration waits, so it publishes
/// now rather than at its next scheduled sweep. Resolves once the request is on its
/// way; a failure is logged by the implementation, and the schedule's next sweep
/// publishes anyway.
pub trait OutboxTrigger: Send + Sync {
    fn wake(&self) -> BoxFuture<'_, ()>;
}

/// For functions whose outbox runs only on its schedule.
pub struct ScheduledOnly;

impl OutboxTrigger for ScheduledOnly {
    fn wake(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}
