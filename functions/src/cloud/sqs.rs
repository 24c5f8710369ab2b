//! Amazon SQS through `aws-sdk-sqs`: the [`Queue`] of bridge envelopes, and the FIFO
//! queue that wakes the configuration publisher.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use sensorium_shared::publisher::{BoxFuture, OutboxTrigger};
use sensorium_shared::queue::{Outgoing, Queue, QueueError, Received};

/// The message group of the publish queue: one group, so sweeps run one at a time.
const OUTBOX_MESSAGE_GROUP: &str = "outbox";

/// One SQS queue.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// A client from the environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn client_from_env() -> Client {
        Client::new(&super::sdk_config().await)
    }
}

fn failed<E: std::error::Error>(error: E) -> QueueError {
    QueueError(DisplayErrorContext(error).to_string().into())
}

impl Queue for SqsQueue {
    fn url(&self) -> &str {
        &self.url
    }

    fn send_batch<'a>(
        &'a self,
        messages: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<String>, QueueError>> {
        Box::pin(async move {
            let entries = messages
                .iter()
                .map(|message| {
                    SendMessageBatchRequestEntry::builder()
                        .id(&message.id)
                        .message_body(&message.body)
                        .build()
                        .map_err(failed)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(failed)?;
            for refused in output.failed() {
                tracing::warn!(
                    queue = self.url,
                    id = refused.id(),
                    code = refused.code(),
                    sender_fault = refused.sender_fault(),
                    reason = refused.message().unwrap_or_default(),
                    "the queue refused a message"
                );
            }
            Ok(output
                .failed()
                .iter()
                .map(|refused| refused.id().to_owned())
                .collect())
        })
    }

    fn receive(
        &self,
        maximum: usize,
        wait: Duration,
        visibility_timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Vec<Received>, QueueError>> {
        Box::pin(async move {
            let output = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(maximum.clamp(1, 10) as i32)
                .wait_time_seconds(wait.as_secs().min(20) as i32)
                .set_visibility_timeout(visibility_timeout.map(|timeout| timeout.as_secs() as i32))
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(failed)?;
            Ok(output
                .messages
                .unwrap_or_default()
                .into_iter()
                .map(|message| {
                    let attribute = |name: MessageSystemAttributeName| {
                        message
                            .attributes()
                            .and_then(|attributes| attributes.get(&name))
                            .and_then(|value| value.parse().ok())
                    };
                    Received {
                        receive_count: attribute(
                            MessageSystemAttributeName::ApproximateReceiveCount,
                        )
                        .unwrap_or(1) as u32,
                        sent_timestamp: attribute(MessageSystemAttributeName::SentTimestamp)
                            .unwrap_or(0),
                        message_id: message.message_id.unwrap_or_default(),
                        receipt_handle: message.receipt_handle.unwrap_or_default(),
                        body: message.body.unwrap_or_default(),
                    }
                })
                .collect())
        })
    }

    fn delete_batch<'a>(
        &'a self,
        receipt_handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, QueueError>> {
        Box::pin(async move {
            if receipt_handles.is_empty() {
                return Ok(Vec::new());
            }
            let entries = receipt_handles
                .iter()
                .enumerate()
                .map(|(index, handle)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(handle)
                        .build()
                        .map_err(failed)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(failed)?;
            Ok(output
                .failed()
                .iter()
                .filter_map(|refused| refused.id().parse::<usize>().ok())
                .filter_map(|index| receipt_handles.get(index).cloned())
                .collect())
        })
    }

    fn dead_letter_queue_url(&self) -> BoxFuture<'_, Result<Option<String>, QueueError>> {
        Box::pin(async move {
            let output = self
                .client
                .get_queue_attributes()
                .queue_url(&self.url)
                .attribute_names(QueueAttributeName::RedrivePolicy)
                .send()
                .await
                .map_err(failed)?;
            let Some(policy) = output
                .attributes()
                .and_then(|attributes| attributes.get(&QueueAttributeName::RedrivePolicy))
            else {
                return Ok(None);
            };
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct RedrivePolicy {
                dead_letter_target_arn: String,
            }
            let policy: RedrivePolicy = serde_json::from_str(policy)
                .map_err(|error| QueueError(format!("the redrive policy: {error}").into()))?;
            // arn:aws:sqs:<region>:<account>:<name>
            let mut parts = policy.dead_letter_target_arn.rsplit(':');
            let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
                return Err(QueueError("the redrive policy's ARN is malformed".into()));
            };
            let output = self
                .client
                .get_queue_url()
                .queue_name(name)
                .queue_owner_aws_account_id(account)
                .send()
                .await
                .map_err(failed)?;
            Ok(output.queue_url)
        })
    }
}

/// Wakes the cloud's configuration publisher: a message on its FIFO queue (one message
/// group, so sweeps never overlap), which the publisher function consumes.
pub struct SqsOutboxTrigger {
    client: Client,
    url: String,
}

impl SqsOutboxTrigger {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

impl OutboxTrigger for SqsOutboxTrigger {
    fn wake(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let sent = self
                .client
                .send_message()
                .queue_url(&self.url)
                .message_body(r#"{"sweep":true}"#)
                .message_group_id(OUTBOX_MESSAGE_GROUP)
                // Every wake counts: a sweep already running may not see the newest row.
                .message_deduplication_id(uuid::Uuid::new_v4().to_string())
                .send()
                .await;
            if let Err(error) = sent {
                tracing::warn!(
                    queue = self.url,
                    error = %DisplayErrorContext(&error),
                    "waking the configuration publisher failed; its schedule publishes within a minute"
                );
            }
        })
    }
}
