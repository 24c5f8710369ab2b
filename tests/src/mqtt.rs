//! The harness's connection to the broker at `MQTT_URL`. The bridge and the
//! configuration publisher build on it.

use std::time::Duration;

use anyhow::Context;
use std::collections::{HashSet, VecDeque};

use rumqttc::{AsyncClient, Event, EventLoop, Packet, PubAck, QoS, SubscribeFilter, Transport};
use sensorium_functions::topics::Topic;
use tokio::sync::mpsc;

/// Longest wait between two connection attempts.
const MAXIMUM_BACKOFF: Duration = Duration::from_secs(10);
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait for the broker to take our acknowledgements.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection options parsed from `mqtt://[user:password@]host:port` (or `mqtts://`).
#[derive(Clone)]
pub struct MqttOptions(rumqttc::MqttOptions);

impl MqttOptions {
    pub fn from_url(url: &url::Url, client_id: &str) -> anyhow::Result<Self> {
        let mut options = client_options(url, client_id)?;
        options
            .set_keep_alive(Duration::from_secs(30))
            // A persistent session: the broker queues QoS 1 messages while we are away.
            .set_clean_session(false)
            .set_max_packet_size(2 * 1024 * 1024, 2 * 1024 * 1024);
        Ok(Self(options))
    }

    pub fn inner_mut(&mut self) -> &mut rumqttc::MqttOptions {
        &mut self.0
    }

    pub fn into_inner(self) -> rumqttc::MqttOptions {
        self.0
    }
}

/// Options of any client of the broker at `url` (`mqtt://[user:password@]host:port`,
/// `mqtts://` for TLS): address, credentials (percent-decoded, as URLs carry them)
/// and transport; rumqttc's defaults otherwise.
pub fn client_options(url: &url::Url, client_id: &str) -> anyhow::Result<rumqttc::MqttOptions> {
    let host = url.host_str().context("MQTT_URL has no host")?;
    let tls = url.scheme() == "mqtts";
    let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
    let mut options = rumqttc::MqttOptions::new(client_id, host, port);
    if !url.username().is_empty() {
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|text| text.into_owned())
                .context("MQTT_URL's user or password is not UTF-8 once percent-decoded")
        };
        options.set_credentials(
            decode(url.username())?,
            decode(url.password().unwrap_or_default())?,
        );
    }
    if tls {
        // rustls needs a process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        options.set_transport(Transport::tls_with_default_config());
    }
    Ok(options)
}

/// Options of a client that publishes or reads many messages at once (the benchmarks,
/// the fault-injection suite): a thousand QoS 1 messages in flight, and a keep-alive
/// long enough for a loaded machine.
pub fn bulk_client_options(
    url: &url::Url,
    client_id: &str,
    clean_session: bool,
) -> anyhow::Result<rumqttc::MqttOptions> {
    let mut options = client_options(url, client_id)?;
    options
        .set_clean_session(clean_session)
        .set_inflight(1000)
        .set_keep_alive(std::time::Duration::from_secs(30));
    Ok(options)
}

/// Opens the persistent session of the bridge `client_id` on the broker at `url` with
/// the bridge's subscriptions, and leaves: as a bridge that ran before leaves them, so
/// the broker queues the sensors' messages for it from the first one on. For the
/// tests, the benchmark and the fault injection, which start the harness after the
/// stream.
pub async fn open_bridge_session(url: &url::Url, client_id: &str) -> anyhow::Result<()> {
    let mut options = client_options(url, client_id)?;
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(30));
    let (client, mut event_loop) = AsyncClient::new(options, 10);
    client
        .subscribe_many(
            Topic::ALL.map(|topic| SubscribeFilter::new(topic.filter(), QoS::AtLeastOnce)),
        )
        .await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = event_loop.poll().await? {
            break;
        }
    }
    client.disconnect().await?;
    while event_loop.poll().await.is_ok() {}
    Ok(())
}

/// A QoS 1 message to acknowledge: its packet identifier, and the number of the
/// connection it came on (see [`drive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub connection: u64,
    pub packet_id: u16,
}

/// Polls `event_loop` forever, reconnecting with exponential backoff whenever the
/// broker goes away, and hands every event to `on_event` with the number of the
/// connection it came on (counted from 1, one more after every ConnAck).
///
/// The deliveries sent to `acknowledgements` are acknowledged to the broker: all that
/// are waiting with one write. rumqttc's own `AsyncClient::ack` writes and flushes
/// every PUBACK by itself, one system call and one TCP segment per message: 51,672
/// `writev` calls by the harness in one run of the ingest benchmark, 630 this way.
/// Deliveries of an earlier
/// connection are not acknowledged: the broker redelivers their messages on the new
/// one, and a packet identifier may by then name another message.
///
/// PUBACKs go out in the order their messages arrived, as MQTT 3.1.1 requires
/// (section 4.6): a message handled early waits for those that came before it.
/// `on_event` may wait (a full lane): `drive` then stops reading from the broker.
pub async fn drive(
    mut event_loop: EventLoop,
    mut acknowledgements: mpsc::UnboundedReceiver<Vec<Delivery>>,
    mut on_event: impl AsyncFnMut(Event, u64),
) {
    let mut backoff = INITIAL_BACKOFF;
    let mut connection = 0;
    let mut order = AcknowledgementOrder::default();
    loop {
        tokio::select! {
            // Acknowledgements first: they let the broker send more.
            biased;
            Some(deliveries) = acknowledgements.recv() => {
                acknowledge(&mut event_loop, connection, deliveries, &mut acknowledgements, &mut order).await;
            }
            // Cancelling `poll` is safe: it keeps partly read packets and events that
            // it did not return yet for the next call.
            polled = event_loop.poll() => match polled {
                Ok(event) => {
                    match &event {
                        Event::Incoming(Packet::ConnAck(_)) => {
                            tracing::info!("connected to the MQTT broker");
                            connection += 1;
                            backoff = INITIAL_BACKOFF;
                            order = AcknowledgementOrder::default();
                        }
                        Event::Incoming(Packet::Publish(publish)) if publish.qos == QoS::AtLeastOnce => {
                            order.arrived(publish.pkid);
                        }
                        _ => {}
                    }
                    on_event(event, connection).await;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "MQTT connection failed");
                    forget_connection_events(&mut event_loop);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAXIMUM_BACKOFF);
                }
            }
        }
    }
}

/// The QoS 1 messages of the current connection, in arrival order, until their
/// PUBACKs go out.
#[derive(Default)]
struct AcknowledgementOrder {
    arrived: VecDeque<u16>,
    /// The packet identifiers in `arrived`: a broker resending one (with DUP) before
    /// its PUBACK must not make it wait behind itself.
    outstanding: HashSet<u16>,
    /// Handled, waiting for an earlier message's PUBACK to go first.
    handled: HashSet<u16>,
}

impl AcknowledgementOrder {
    fn arrived(&mut self, packet_id: u16) {
        if self.outstanding.insert(packet_id) {
            self.arrived.push_back(packet_id);
        }
    }

    fn handled(&mut self, packet_id: u16) {
        if self.outstanding.contains(&packet_id) {
            self.handled.insert(packet_id);
        }
    }

    /// The packet identifiers whose PUBACKs may go out now, in order.
    fn take_ready(&mut self, ready: &mut Vec<u16>) {
        while let Some(&first) = self.arrived.front() {
            if !self.handled.remove(&first) {
                break;
            }
            self.arrived.pop_front();
            self.outstanding.remove(&first);
            ready.push(first);
        }
    }
}

/// Records `deliveries` and those waiting behind them that came on `connection` as
/// handled, then writes the PUBACKs that may go out and flushes them together. A
/// connection that fails doing so is dropped; `poll` then reconnects.
async fn acknowledge(
    event_loop: &mut EventLoop,
    connection: u64,
    deliveries: Vec<Delivery>,
    waiting: &mut mpsc::UnboundedReceiver<Vec<Delivery>>,
    order: &mut AcknowledgementOrder,
) {
    let mut next = Some(deliveries);
    while let Some(deliveries) = next.take().or_else(|| waiting.try_recv().ok()) {
        for delivery in deliveries {
            if delivery.connection == connection {
                order.handled(delivery.packet_id);
            }
        }
    }
    let mut ready = Vec::new();
    order.take_ready(&mut ready);
    // `network` is rumqttc's connection, `None` while there is none.
    let (false, Some(network)) = (ready.is_empty(), event_loop.network.as_mut()) else {
        return;
    };
    let written = async {
        for packet_id in ready {
            network
                .write(Packet::PubAck(PubAck::new(packet_id)))
                .await?;
        }
        network.flush().await
    };
    let error = match tokio::time::timeout(WRITE_TIMEOUT, written).await {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no progress in {} s", WRITE_TIMEOUT.as_secs()),
    };
    tracing::warn!(%error, "acknowledging messages failed; reconnecting");
    event_loop.clean();
    event_loop.network = None;
    forget_connection_events(event_loop);
}

/// Drops what `event_loop` read from a connection that failed and did not hand over
/// yet: rumqttc would hand it over after the next ConnAck, as if it came on the new
/// connection. Its messages were not acknowledged; the broker redelivers them.
fn forget_connection_events(event_loop: &mut EventLoop) {
    event_loop.state.events.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(order: &mut AcknowledgementOrder) -> Vec<u16> {
        let mut ready = Vec::new();
        order.take_ready(&mut ready);
        ready
    }

    #[test]
    fn pubacks_go_out_in_arrival_order() {
        let mut order = AcknowledgementOrder::default();
        for packet_id in [7, 3, 9, 1] {
            order.arrived(packet_id);
        }
        order.handled(9);
        order.handled(3);
        assert!(
            ready(&mut order).is_empty(),
            "7 came first and is not handled"
        );
        order.handled(7);
        assert_eq!(ready(&mut order), [7, 3, 9]);
        order.handled(1);
        assert_eq!(ready(&mut order), [1]);
        assert!(ready(&mut order).is_empty());
    }

    #[test]
    fn a_resent_message_does_not_wait_behind_itself() {
        let mut order = AcknowledgementOrder::default();
        order.arrived(5);
        order.arrived(5);
        order.handled(5);
        assert_eq!(ready(&mut order), [5]);
        // A packet identifier used again later is a new message.
        order.arrived(5);
        order.handled(5);
        assert_eq!(ready(&mut order), [5]);
    }

    #[test]
    fn a_delivery_of_no_known_message_is_ignored() {
        let mut order = AcknowledgementOrder::default();
        order.handled(4);
        order.arrived(4);
        assert!(
            ready(&mut order).is_empty(),
            "4 was handled before it arrived: another message"
        );
    }

    #[test]
    fn credentials_in_the_url_are_percent_decoded() {
        let url = "mqtt://server%40site:p%40ss%3Aw%2Fd@127.0.0.1:1884"
            .parse()
            .unwrap();
        let options = client_options(&url, "client").unwrap();
        let login = options.credentials().unwrap();
        assert_eq!(login.username, "server@site");
        assert_eq!(login.password, "p@ss:w/d");
        assert_eq!(options.broker_address(), ("127.0.0.1".to_string(), 1884));
    }
}
