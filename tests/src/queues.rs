//! The harness's SQS edge (docs/mqtt.md, "Inside the server"): the topic queues, the consumer that
//! feeds the topic functions from them as Lambda's SQS event-source mapping does, and
//! the redrive of their dead-letter queues.
//!
//! With `MEASUREMENTS_QUEUE_URL`, `HEARTBEATS_QUEUE_URL` and `LOG_MESSAGES_QUEUE_URL`
//! set, the bridge sends envelopes to those queues instead of calling the topic
//! functions in-process, and `harness serve` consumes them; `harness bridge` only sends
//! (a self-hosted broker in front of the cloud's queues, which Lambda consumes).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::QueueAttributeName;
use lambda_runtime::{Context as LambdaContext, LambdaEvent};
use sensorium_functions::cloud::SqsQueue;
use sensorium_functions::topics::Topic;
use sensorium_shared::error::ErrorChain;
use sensorium_shared::queue::{Outgoing, Queue, Received};
use sqlx::PgPool;

/// The environment variable naming the queue of `topic`.
pub fn queue_variable(topic: Topic) -> &'static str {
    match topic {
        Topic::Measurements => "MEASUREMENTS_QUEUE_URL",
        Topic::Heartbeats => "HEARTBEATS_QUEUE_URL",
        Topic::LogMessages => "LOG_MESSAGES_QUEUE_URL",
    }
}

/// Each topic's queue.
#[derive(Clone)]
pub struct TopicQueues(Vec<(Topic, Arc<dyn Queue>)>);

impl TopicQueues {
    pub fn new(queues: Vec<(Topic, Arc<dyn Queue>)>) -> Self {
        Self(queues)
    }

    /// The queues the environment names; `None` when it names none, an error when it
    /// names only some.
    pub async fn from_env() -> anyhow::Result<Option<Self>> {
        let urls: Vec<(Topic, Option<String>)> = Topic::ALL
            .into_iter()
            .map(|topic| {
                let url = std::env::var(queue_variable(topic))
                    .ok()
                    .filter(|url| !url.is_empty());
                (topic, url)
            })
            .collect();
        if urls.iter().all(|(_, url)| url.is_none()) {
            return Ok(None);
        }
        let missing: Vec<&str> = urls
            .iter()
            .filter(|(_, url)| url.is_none())
            .map(|&(topic, _)| queue_variable(topic))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "queue mode needs every topic's queue; missing: {}",
            missing.join(", ")
        );
        let client = SqsQueue::client_from_env().await;
        Ok(Some(Self(
            urls.into_iter()
                .map(|(topic, url)| {
                    let queue: Arc<dyn Queue> =
                        Arc::new(SqsQueue::new(client.clone(), url.unwrap_or_default()));
                    (topic, queue)
                })
                .collect(),
        )))
    }

    pub fn queue(&self, topic: Topic) -> &Arc<dyn Queue> {
        &self
            .0
            .iter()
            .find(|(known, _)| *known == topic)
            .expect("every topic has a queue")
            .1
    }

    pub fn iter(&self) -> impl Iterator<Item = (Topic, &Arc<dyn Queue>)> {
        self.0.iter().map(|(topic, queue)| (*topic, queue))
    }
}

/// Creates (or finds) `<prefix>-<topic>` and its dead-letter queue
/// `<prefix>-<topic>-dead-letter` for every topic, the first redriving to the second
/// after `max_receive_count` receives, as the cloud template declares them.
pub async fn create_topic_queues(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
    max_receive_count: u32,
    visibility_timeout: Duration,
) -> anyhow::Result<TopicQueues> {
    let mut queues = Vec::new();
    for topic in Topic::ALL {
        let name = format!("{prefix}-{}", topic.prefix().replace('_', "-"));
        let dead_letter = client
            .create_queue()
            .queue_name(format!("{name}-dead-letter"))
            .send()
            .await
            .with_context(|| format!("creating the queue {name}-dead-letter"))?;
        let dead_letter_url = dead_letter.queue_url.unwrap_or_default();
        let attributes = client
            .get_queue_attributes()
            .queue_url(&dead_letter_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .context("reading the dead-letter queue's ARN")?;
        let dead_letter_arn = attributes
            .attributes()
            .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
            .context("the dead-letter queue has no ARN")?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": max_receive_count,
        });
        let queue = client
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().to_string(),
            )
            .send()
            .await
            .with_context(|| format!("creating the queue {name}"))?;
        let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(
            client.clone(),
            queue.queue_url.unwrap_or_default(),
        ));
        queues.push((topic, queue));
    }
    Ok(TopicQueues(queues))
}

/// How the consumer batches, as the settings of an SQS event-source mapping.
#[derive(Debug, Clone, Copy)]
pub struct EventSourceMapping {
    /// Most messages in one invocation (`BatchSize`).
    pub batch_size: usize,
    /// How long a batch waits to fill after its first message (`MaximumBatchingWindowInSeconds`).
    /// A failed message comes back after the queue's visibility timeout, as in Lambda.
    pub batching_window: Duration,
    /// How long one receive waits for messages (long polling).
    pub wait: Duration,
}

impl Default for EventSourceMapping {
    /// The template's mapping: batches of 10, no window.
    fn default() -> Self {
        Self {
            batch_size: 10,
            batching_window: Duration::ZERO,
            wait: Duration::from_secs(1),
        }
    }
}

/// Feeds `topic`'s function from `queue` forever: receives a batch, invokes the
/// function with it as an SQS event, deletes the messages it handled and leaves those
/// it names in `batchItemFailures` to come back after the visibility timeout (and to
/// go to the dead-letter queue after the queue's `maxReceiveCount`).
pub async fn consume(
    topic: Topic,
    queue: Arc<dyn Queue>,
    pool: PgPool,
    mapping: EventSourceMapping,
) {
    let mut failures_in_a_row = 0u32;
    loop {
        let batch = match receive_batch(queue.as_ref(), &mapping).await {
            Ok(batch) => {
                failures_in_a_row = 0;
                batch
            }
            Err(error) => {
                failures_in_a_row += 1;
                let delay = Duration::from_millis(100 << failures_in_a_row.min(6));
                tracing::warn!(
                    queue = queue.url(),
                    error = %ErrorChain(&*error),
                    retry_in_ms = delay.as_millis() as u64,
                    "receiving from a topic queue failed"
                );
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        invoke(topic, queue.as_ref(), &pool, batch).await;
    }
}

/// Up to `batch_size` messages: what one receive returns, topped up within the
/// batching window.
async fn receive_batch(
    queue: &dyn Queue,
    mapping: &EventSourceMapping,
) -> anyhow::Result<Vec<Received>> {
    let mut batch = queue
        .receive(mapping.batch_size.min(10), mapping.wait, None)
        .await?;
    if batch.is_empty() {
        return Ok(batch);
    }
    let deadline = tokio::time::Instant::now() + mapping.batching_window;
    while batch.len() < mapping.batch_size && tokio::time::Instant::now() < deadline {
        let wanted = (mapping.batch_size - batch.len()).min(10);
        let more = queue.receive(wanted, Duration::ZERO, None).await?;
        if more.is_empty() {
            tokio::time::sleep_until(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
            )
            .await;
        }
        batch.extend(more);
    }
    Ok(batch)
}

/// One invocation of the topic function with `batch`, then the deletes.
async fn invoke(topic: Topic, queue: &dyn Queue, pool: &PgPool, batch: Vec<Received>) {
    let mut event = SqsEvent::default();
    event.records = batch
        .iter()
        .map(|message| sqs_record(queue, message))
        .collect();
    let response = topic
        .handle(pool, LambdaEvent::new(event, LambdaContext::default()))
        .await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    if !failed.is_empty() {
        tracing::warn!(
            queue = queue.url(),
            failed = failed.len(),
            of = batch.len(),
            "the topic function failed messages; they come back after the visibility timeout"
        );
    }
    let handled: Vec<String> = batch
        .iter()
        .filter(|message| !failed.contains(&message.message_id.as_str()))
        .map(|message| message.receipt_handle.clone())
        .collect();
    for chunk in handled.chunks(10) {
        match queue.delete_batch(chunk).await {
            Ok(left) if left.is_empty() => {}
            // Handled but not deleted: it comes back, and storing it again is a no-op.
            Ok(left) => tracing::warn!(
                queue = queue.url(),
                left = left.len(),
                "the queue did not delete handled messages; they will be handled again"
            ),
            Err(error) => tracing::warn!(
                queue = queue.url(),
                error = %ErrorChain(&error),
                "deleting handled messages failed; they will be handled again"
            ),
        }
    }
}

/// A received message as Lambda's event-source mapping presents it.
fn sqs_record(queue: &dyn Queue, message: &Received) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message.message_id.clone());
    record.receipt_handle = Some(message.receipt_handle.clone());
    record.body = Some(message.body.clone());
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(queue.url().to_owned());
    record.attributes.insert(
        "ApproximateReceiveCount".into(),
        message.receive_count.to_string(),
    );
    record
        .attributes
        .insert("SentTimestamp".into(), message.sent_timestamp.to_string());
    record
}

/// Moves every message of `queue`'s dead-letter queue back to `queue`, a batch at a
/// time (sent before deleted: a crash between the two leaves a copy in both, never
/// none). Returns how many it moved.
pub async fn redrive(queue: &dyn Queue, dead_letter: &dyn Queue) -> anyhow::Result<usize> {
    let mut moved = 0;
    loop {
        let batch = dead_letter
            .receive(10, Duration::ZERO, Some(Duration::from_secs(30)))
            .await
            .context("receiving from the dead-letter queue")?;
        if batch.is_empty() {
            return Ok(moved);
        }
        let outgoing: Vec<Outgoing> = batch
            .iter()
            .enumerate()
            .map(|(index, message)| Outgoing {
                id: index.to_string(),
                body: message.body.clone(),
            })
            .collect();
        let refused = queue
            .send_batch(&outgoing)
            .await
            .context("sending to the source queue")?;
        let sent: Vec<String> = batch
            .iter()
            .enumerate()
            .filter(|(index, _)| !refused.contains(&index.to_string()))
            .map(|(_, message)| message.receipt_handle.clone())
            .collect();
        let left = dead_letter
            .delete_batch(&sent)
            .await
            .context("deleting moved messages from the dead-letter queue")?;
        anyhow::ensure!(
            refused.is_empty() && left.is_empty(),
            "the queues refused {} of {} messages; they stay in the dead-letter queue",
            refused.len() + left.len(),
            batch.len()
        );
        moved += batch.len();
        tracing::info!(moved, "redriving");
    }
}

/// `harness redrive`: every topic queue's dead-letter messages back to it.
pub async fn redrive_all(queues: &TopicQueues) -> anyhow::Result<usize> {
    let client = SqsQueue::client_from_env().await;
    let mut total = 0;
    for (topic, queue) in queues.iter() {
        let Some(url) = queue.dead_letter_queue_url().await? else {
            tracing::warn!(queue = queue.url(), "the queue has no dead-letter queue");
            continue;
        };
        let dead_letter = SqsQueue::new(client.clone(), url);
        let moved = redrive(queue.as_ref(), &dead_letter).await?;
        tracing::info!(
            topic = topic.prefix(),
            moved,
            from = dead_letter.url(),
            "redrove the dead-letter queue"
        );
        total += moved;
    }
    Ok(total)
}
