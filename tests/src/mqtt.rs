//! The harness's connection to the broker at `MQTT_URL`. The bridge and the
//! configuration publisher build on it.

use std::time::Duration;

use anyhow::Context;
use rumqttc::{Event, EventLoop, Packet, Transport};

/// Longest wait between two connection attempts.
const MAXIMUM_BACKOFF: Duration = Duration::from_secs(10);
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// Connection options parsed from `mqtt://[user:password@]host:port` (or `mqtts://`).
#[derive(Clone)]
pub struct MqttOptions(rumqttc::MqttOptions);

impl MqttOptions {
    pub fn from_url(url: &url::Url, client_id: &str) -> anyhow::Result<Self> {
        let host = url.host_str().context("MQTT_URL has no host")?;
        let tls = url.scheme() == "mqtts";
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        let mut options = rumqttc::MqttOptions::new(client_id, host, port);
        options
            .set_keep_alive(Duration::from_secs(30))
            // A persistent session: the broker queues QoS 1 messages while we are away.
            .set_clean_session(false)
            .set_max_packet_size(2 * 1024 * 1024, 2 * 1024 * 1024);
        if !url.username().is_empty() {
            options.set_credentials(url.username(), url.password().unwrap_or_default());
        }
        if tls {
            // rustls needs a process-wide crypto provider; a second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            options.set_transport(Transport::tls_with_default_config());
        }
        Ok(Self(options))
    }

    pub fn inner_mut(&mut self) -> &mut rumqttc::MqttOptions {
        &mut self.0
    }

    pub fn into_inner(self) -> rumqttc::MqttOptions {
        self.0
    }
}

/// Polls `event_loop` forever, reconnecting with exponential backoff whenever the
/// broker goes away, and hands every event to `on_event`.
pub async fn drive(mut event_loop: EventLoop, mut on_event: impl FnMut(Event)) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        match event_loop.poll().await {
            Ok(event) => {
                if let Event::Incoming(Packet::ConnAck(_)) = &event {
                    tracing::info!("connected to the MQTT broker");
                    backoff = INITIAL_BACKOFF;
                }
                on_event(event);
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "MQTT connection failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAXIMUM_BACKOFF);
            }
        }
    }
}
