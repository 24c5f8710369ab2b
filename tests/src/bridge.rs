//! The bridge: what IoT Core's topic rules and SQS do in the cloud. An MQTT client of
//! the broker with a persistent session subscribes with QoS 1 to the sensor topics,
//! wraps each message into the envelope, groups them per topic into queue-shaped
//! batches and calls the topic functions. A message is acknowledged to the broker only
//! once its batch item succeeded, so a crash means redelivery, never loss; the
//! acknowledgements of a batch go out together. Each topic
//! has a few lanes that store in parallel; a sensor's messages always take the same
//! lane, and failed items are retried with backoff before the lane's next batch, which
//! keeps the messages of a sensor in order.
//!
//! In queue mode ([`Destination::Queues`]) the batches go to the topics' SQS queues
//! instead (`SendMessageBatch`, within SQS's limits), and a message is acknowledged
//! once its queue accepted it; the queues' consumer calls the functions.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS, SubscribeFilter, SubscribeReasonCode};
use sensorium_functions::topics::{Topic, envelope};
use sensorium_shared::database::{self, Role};
use sensorium_shared::error::ErrorChain;
use sensorium_shared::limits::MAXIMUM_MESSAGE_SIZE;
use sensorium_shared::queue::{self, MAXIMUM_BATCH_BYTES, Outgoing, Queue};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::mqtt::{self, Delivery, MqttOptions};
use crate::queues::TopicQueues;

/// Where the bridge hands the sensors' messages.
pub enum Destination {
    /// The topic functions, called in-process with a pool of the bridge's own (one
    /// connection per lane) to this database.
    Functions(Box<PgConnectOptions>),
    /// The topics' queues, whose consumer calls the functions.
    Queues(TopicQueues),
}

/// What a lane hands its batches to.
#[derive(Clone)]
enum Sink {
    Function(PgPool),
    Queue(std::sync::Arc<dyn Queue>),
}

/// Most messages in one batch, like an SQS event source's batch size.
const BATCH_SIZE: usize = 500;
/// Most payload bytes in one batch: large messages make smaller batches, so that
/// one statement does not hold up its lane for long.
const BATCH_BYTES: usize = 1 << 20;
/// Batches of one topic stored at the same time, each by a connection of its own.
const LANES: usize = 2;
/// How long a batch waits for more messages after its first one arrived.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// The largest MQTT packet the bridge takes: the largest valid message and its topic.
/// The broker must refuse bigger ones from sensors (Mosquitto's `max_packet_size`,
/// set to this in the harness's broker; IoT Core refuses them on its own): a packet
/// over this limit makes the bridge drop the connection, and the broker would deliver
/// it again at every reconnection.
pub const MAXIMUM_PACKET_SIZE: usize = MAXIMUM_MESSAGE_SIZE + 1024;
/// Messages waiting for a lane. When a lane is full the bridge stops reading from the
/// broker, whose queue holds the backlog (TCP back-pressure), rather than buffering
/// without limit (QoS 0 messages during a database outage would).
const LANE_CAPACITY: usize = BATCH_SIZE;
const INITIAL_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAXIMUM_RETRY_DELAY: Duration = Duration::from_secs(5);

/// A message as it came from the broker, with the time it arrived and what
/// acknowledges it (nothing for a QoS 0 message).
struct Received {
    publish: Publish,
    received_at: i64,
    delivery: Option<Delivery>,
}

/// The broker's count of the messages it dropped since it started (Mosquitto's; a
/// broker without `$SYS` topics, such as IoT Core, refuses the subscription).
const BROKER_DROPPED_TOPIC: &str = "$SYS/broker/publish/messages/dropped";

/// What the bridge reports while it runs.
pub struct BridgeStatus {
    /// True once the broker confirmed the subscriptions to the sensor topics.
    pub subscribed: watch::Receiver<bool>,
    /// The broker's count of dropped messages, once it reported one.
    pub broker_dropped: watch::Receiver<Option<u64>>,
}

/// The bridge on its thread; dropping this stops it.
pub struct BridgeThread {
    /// Dropped, it ends the thread's runtime and with it the bridge.
    _stop: oneshot::Sender<()>,
}

/// Starts the bridge on a thread of its own, with a single-threaded runtime, handing
/// messages to `destination`.
///
/// The bridge spends a few microseconds on a message, tens of thousands of times a
/// second. On the harness's multi-threaded runtime, handing each message from one
/// worker thread to another (parking one, waking the other) took about a quarter of
/// its CPU time in the ingest benchmark; alone on its thread it never does,
/// and it neither waits for the HTTP server nor holds it up. The cloud runs it alike:
/// each topic function is a process of its own, with a pool of its own.
pub fn spawn(
    options: MqttOptions,
    destination: Destination,
) -> std::io::Result<(BridgeThread, BridgeStatus)> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (subscribed, subscribed_receiver) = watch::channel(false);
    let (broker_dropped, broker_dropped_receiver) = watch::channel(None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bridge".into())
        .spawn(move || {
            runtime.block_on(async move {
                let sinks = match destination {
                    Destination::Functions(database) => {
                        let pool = database::connect_as(
                            *database,
                            (Topic::ALL.len() * LANES) as u32,
                            Role::Topic,
                        );
                        Topic::ALL.map(|topic| (topic, Sink::Function(pool.clone())))
                    }
                    Destination::Queues(queues) => {
                        Topic::ALL.map(|topic| (topic, Sink::Queue(queues.queue(topic).clone())))
                    }
                };
                tokio::select! {
                    () = run(options, sinks, subscribed, broker_dropped) => {}
                    _ = stopped => {}
                }
            });
        })?;
    let status = BridgeStatus {
        subscribed: subscribed_receiver,
        broker_dropped: broker_dropped_receiver,
    };
    Ok((BridgeThread { _stop: stop }, status))
}

/// Runs the bridge until the future is dropped: the connection, and the lanes of each
/// topic that batch, call the topic function and acknowledge.
/// `subscribed` turns true once the broker confirmed the subscriptions;
/// `broker_dropped` follows the broker's count of dropped messages.
async fn run(
    mut options: MqttOptions,
    sinks: [(Topic, Sink); Topic::ALL.len()],
    subscribed: watch::Sender<bool>,
    broker_dropped: watch::Sender<Option<u64>>,
) {
    options
        .inner_mut()
        .set_manual_acks(true)
        .set_max_packet_size(MAXIMUM_PACKET_SIZE, MAXIMUM_PACKET_SIZE);
    // The client only subscribes; acknowledgements go to `mqtt::drive` directly.
    let (client, event_loop) = AsyncClient::new(options.into_inner(), 8);
    // Unbounded, yet bounded in effect: it holds at most one delivery per message in
    // the lanes and their batches. Bounded, a lane blocked on it would wait for
    // `drive`, which may wait for the lane.
    let (acknowledgements, acknowledgements_receiver) = mpsc::unbounded_channel();
    let mut workers = JoinSet::new();
    let mut lanes = Vec::new();
    for (topic, sink) in sinks {
        let mut senders = Vec::with_capacity(LANES);
        for _ in 0..LANES {
            let (sender, receiver) = mpsc::channel(LANE_CAPACITY);
            senders.push(sender);
            workers.spawn(work(
                topic,
                receiver,
                acknowledgements.clone(),
                sink.clone(),
            ));
        }
        lanes.push((topic, senders));
    }
    // The sensor topics, then the broker's dropped-message count, which is optional.
    let subscriptions: Vec<SubscribeFilter> = Topic::ALL
        .iter()
        .map(|topic| SubscribeFilter::new(topic.filter(), QoS::AtLeastOnce))
        .chain([SubscribeFilter::new(
            BROKER_DROPPED_TOPIC.into(),
            QoS::AtMostOnce,
        )])
        .collect();
    let subscriber = client.clone();
    mqtt::drive(
        event_loop,
        acknowledgements_receiver,
        async move |event, connection| match event {
            // Again on every connection: a broker that lost the session (restarted
            // without persistence) has forgotten the subscriptions.
            Event::Incoming(Packet::ConnAck(_)) => {
                if let Err(error) = subscriber.try_subscribe_many(subscriptions.clone()) {
                    tracing::error!(%error, "subscribing to the sensor topics failed");
                }
            }
            Event::Incoming(Packet::SubAck(suback)) => {
                let granted =
                    |code: &SubscribeReasonCode| matches!(code, SubscribeReasonCode::Success(_));
                let (sensor_topics, broker_topics) = suback
                    .return_codes
                    .split_at(Topic::ALL.len().min(suback.return_codes.len()));
                if sensor_topics.len() == Topic::ALL.len() && sensor_topics.iter().all(granted) {
                    tracing::info!("subscribed to the sensor topics");
                    subscribed.send_replace(true);
                } else {
                    tracing::error!(?suback.return_codes, "the broker refused a subscription");
                }
                if !broker_topics.iter().all(granted) {
                    tracing::info!(
                        topic = BROKER_DROPPED_TOPIC,
                        "the broker does not report dropped messages"
                    );
                }
            }
            Event::Incoming(Packet::Publish(publish)) if publish.topic == BROKER_DROPPED_TOPIC => {
                watch_broker_drops(&publish.payload, &broker_dropped);
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let delivery = (publish.qos == QoS::AtLeastOnce).then_some(Delivery {
                    connection,
                    packet_id: publish.pkid,
                });
                let received = Received {
                    publish,
                    received_at: chrono::Utc::now().timestamp_millis(),
                    delivery,
                };
                let topic = Topic::of(&received.publish.topic);
                match lanes.iter().find(|(known, _)| Some(*known) == topic) {
                    Some((_, senders)) => {
                        let lane = lane_of(&received.publish.topic);
                        // Waits while the lane is full; fails only while the harness
                        // shuts down, and the broker redelivers.
                        let _ = senders[lane].send(received).await;
                    }
                    None => {
                        tracing::warn!(
                            topic = received.publish.topic,
                            "dropped a message of an unknown topic"
                        );
                        if let Some(delivery) = received.delivery {
                            // Fails only while the harness shuts down; the broker
                            // redelivers.
                            let _ = acknowledgements.send(vec![delivery]);
                        }
                    }
                }
            }
            _ => {}
        },
    )
    .await;
}

/// Warns when the broker's count of dropped messages grows (or is not 0 when first
/// seen): a broker that drops messages for the server's session loses sensor data
/// silently, and only its configuration can stop it.
fn watch_broker_drops(payload: &[u8], broker_dropped: &watch::Sender<Option<u64>>) {
    let Some(count) = std::str::from_utf8(payload)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
    else {
        return;
    };
    let previous = broker_dropped.send_replace(Some(count));
    let new = count.saturating_sub(previous.unwrap_or(0));
    if new > 0 {
        tracing::warn!(
            dropped = new,
            dropped_since_start = count,
            "the broker dropped messages: its queues are too small for the backlog, and \
             what it drops is lost; set max_queued_messages 0 and max_queued_bytes 0 (no \
             limit) in mosquitto.conf (README, What the broker must be)"
        );
    }
}

/// The lane of a topic's messages: by the whole topic, so by sensor.
fn lane_of(topic: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    topic.hash(&mut hasher);
    (hasher.finish() % LANES as u64) as usize
}

/// Batches the messages of one lane, hands each batch to the topic function and
/// acknowledges what it stored, retrying what failed until it succeeds.
async fn work(
    topic: Topic,
    mut receiver: mpsc::Receiver<Received>,
    acknowledgements: mpsc::UnboundedSender<Vec<Delivery>>,
    sink: Sink,
) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while let Some(first) = receiver.recv().await {
        let mut bytes = first.publish.payload.len();
        batch.push(first);
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < BATCH_SIZE && bytes < BATCH_BYTES {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(received)) => {
                    bytes += received.publish.payload.len();
                    batch.push(received);
                }
                Ok(None) | Err(_) => break,
            }
        }
        deliver(topic, &mut batch, &acknowledgements, &sink).await;
    }
}

/// Hands `batch` to `sink` until every message of it is handled, acknowledging what
/// each attempt handled as soon as it returns. Empties `batch`.
async fn deliver(
    topic: Topic,
    batch: &mut Vec<Received>,
    acknowledgements: &mpsc::UnboundedSender<Vec<Delivery>>,
    sink: &Sink,
) {
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut delay = INITIAL_RETRY_DELAY;
    loop {
        let failed = match sink {
            Sink::Function(pool) => call_function(topic, batch, &pending, pool).await,
            Sink::Queue(queue) => send_to_queue(batch, &pending, queue.as_ref()).await,
        };
        let handled: Vec<Delivery> = pending
            .iter()
            .filter(|index| !failed.contains(index))
            .filter_map(|&index| batch[index].delivery)
            .collect();
        if !handled.is_empty() {
            // Fails only while the harness shuts down: the broker then redelivers the
            // messages, which are stored only once.
            let _ = acknowledgements.send(handled);
        }
        if failed.is_empty() {
            break;
        }
        pending.retain(|index| failed.contains(index));
        tracing::warn!(
            topic = topic.prefix(),
            failed = pending.len(),
            retry_in_ms = delay.as_millis() as u64,
            "messages were not handled; retrying them"
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAXIMUM_RETRY_DELAY);
    }
    batch.clear();
}

/// The envelope of a received message.
fn envelope_of(received: &Received) -> String {
    envelope::encode(
        &received.publish.topic,
        &received.publish.payload,
        received.received_at,
    )
}

/// Calls the topic function with the `pending` messages of `batch` as one SQS event;
/// returns the indices of those it failed.
async fn call_function(
    topic: Topic,
    batch: &[Received],
    pending: &[usize],
    pool: &PgPool,
) -> Vec<usize> {
    // The record ids are the messages' indices in the batch.
    let mut event = SqsEvent::default();
    event.records = pending
        .iter()
        .map(|&index| {
            let mut record = SqsMessage::default();
            record.message_id = Some(index.to_string());
            record.body = Some(envelope_of(&batch[index]));
            record
        })
        .collect();
    let response = topic
        .handle(pool, LambdaEvent::new(event, Context::default()))
        .await;
    response
        .batch_item_failures
        .iter()
        .filter_map(|failure| failure.item_identifier.parse().ok())
        .collect()
}

/// Sends the `pending` messages of `batch` to `queue` in batches within SQS's limits;
/// returns the indices of those not accepted. A message too big for SQS ever to take
/// is dropped (logged), as IoT Core drops messages over its own limit.
async fn send_to_queue(batch: &[Received], pending: &[usize], queue: &dyn Queue) -> Vec<usize> {
    let outgoing: Vec<Outgoing> = pending
        .iter()
        .filter_map(|&index| {
            let body = envelope_of(&batch[index]);
            if body.len() > MAXIMUM_BATCH_BYTES {
                tracing::error!(
                    topic = batch[index].publish.topic,
                    bytes = body.len(),
                    "dropped a message too large for a queue"
                );
                return None;
            }
            Some(Outgoing {
                id: index.to_string(),
                body,
            })
        })
        .collect();
    let mut failed = Vec::new();
    for chunk in queue::batches(&outgoing) {
        let refused = match queue.send_batch(chunk).await {
            Ok(refused) => refused,
            Err(error) => {
                tracing::warn!(queue = queue.url(), error = %ErrorChain(&error), "sending to a queue failed");
                chunk.iter().map(|message| message.id.clone()).collect()
            }
        };
        failed.extend(refused.iter().filter_map(|id| id.parse::<usize>().ok()));
    }
    failed
}
