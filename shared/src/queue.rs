//! The queue edge: what carries bridge envelopes from a broker to the topic functions
//! where IoT Core's topic rules do not (a self-hosted broker in front of the cloud's
//! queues, or the local harness emulating the cloud). Amazon SQS in production and
//! SQS-compatible servers (moto) locally; domain code sees only this trait.

use std::time::Duration;

pub use crate::publisher::BoxFuture;

/// SQS's limits on one `SendMessageBatch`: entries, and bytes of all bodies together.
pub const MAXIMUM_BATCH_MESSAGES: usize = 10;
pub const MAXIMUM_BATCH_BYTES: usize = 256 * 1024;

/// Why a queue call failed as a whole (the network, the service, permissions).
#[derive(Debug, thiserror::Error)]
#[error("queue request failed: {0}")]
pub struct QueueError(pub Box<dyn std::error::Error + Send + Sync>);

/// A message to send; `id` names it within its batch.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub body: String,
}

/// A received message, invisible to other receivers until its visibility timeout
/// ends or it is deleted.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times the queue has handed it out, this time included.
    pub receive_count: u32,
    /// When it was sent, in milliseconds since the epoch.
    pub sent_timestamp: i64,
}

/// One queue, by its URL.
pub trait Queue: Send + Sync {
    /// The queue's URL, as the service names it.
    fn url(&self) -> &str;

    /// Sends at most [`MAXIMUM_BATCH_MESSAGES`] messages of at most
    /// [`MAXIMUM_BATCH_BYTES`] together; returns the ids of those the queue refused.
    fn send_batch<'a>(
        &'a self,
        messages: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<String>, QueueError>>;

    /// Waits up to `wait` for at most `maximum` messages (at most 10), hiding them for
    /// `visibility_timeout`, or for the queue's own visibility timeout if `None`.
    fn receive(
        &self,
        maximum: usize,
        wait: Duration,
        visibility_timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Vec<Received>, QueueError>>;

    /// Deletes received messages (at most 10) by their receipt handles; returns the
    /// handles the queue did not delete.
    fn delete_batch<'a>(
        &'a self,
        receipt_handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, QueueError>>;

    /// The URL of the dead-letter queue this queue's redrive policy names, if any.
    fn dead_letter_queue_url(&self) -> BoxFuture<'_, Result<Option<String>, QueueError>>;
}

/// Splits `messages` into batches within SQS's limits, in order. A message bigger than
/// [`MAXIMUM_BATCH_BYTES`] makes a batch of its own, which the queue refuses.
pub fn batches(messages: &[Outgoing]) -> Vec<&[Outgoing]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, message) in messages.iter().enumerate() {
        let size = message.body.len();
        let full = index - start == MAXIMUM_BATCH_MESSAGES || bytes + size > MAXIMUM_BATCH_BYTES;
        if full && index > start {
            batches.push(&messages[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < messages.len() {
        batches.push(&messages[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(sizes: &[usize]) -> Vec<Outgoing> {
        sizes
            .iter()
            .enumerate()
            .map(|(index, &size)| Outgoing {
                id: index.to_string(),
                body: "x".repeat(size),
            })
            .collect()
    }

    fn shape(messages: &[Outgoing]) -> Vec<usize> {
        batches(messages).iter().map(|batch| batch.len()).collect()
    }

    #[test]
    fn batches_hold_at_most_ten_messages() {
        assert_eq!(shape(&messages(&[1; 25])), [10, 10, 5]);
        assert_eq!(shape(&messages(&[1; 10])), [10]);
        assert!(shape(&messages(&[])).is_empty());
    }

    #[test]
    fn batches_hold_at_most_256_kib() {
        let half = MAXIMUM_BATCH_BYTES / 2;
        assert_eq!(shape(&messages(&[half, half, 1])), [2, 1]);
        assert_eq!(shape(&messages(&[half + 1, half])), [1, 1]);
    }

    #[test]
    fn an_oversized_message_is_alone_in_its_batch() {
        assert_eq!(
            shape(&messages(&[1, MAXIMUM_BATCH_BYTES + 1, 1])),
            [1, 1, 1]
        );
    }
}
