//! The bridge envelope (docs/mqtt.md, "Inside the server"), the body of every queue message:
//! `{"topic": "<topic>", "payload": "<base64 of the raw MQTT payload>", "received_at": <ms>}`.
//! Raw bytes travel, so a payload that is not JSON still reaches the handler to be
//! logged and dropped.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sensorium_shared::domain::Timestamp;
use serde::{Deserialize, Serialize};

/// A decoded envelope: where the message was published, its bytes, and when the
/// broker's side received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub topic: String,
    pub payload: Vec<u8>,
    pub receipt_timestamp: Timestamp,
}

/// Borrowed from the queue message where its strings hold no escapes, as always here.
#[derive(Serialize, Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
    received_at: i64,
}

/// The body for a message received at `received_at` (milliseconds since the epoch),
/// as the IoT topic rule writes it.
pub fn encode(topic: &str, payload: &[u8], received_at: i64) -> String {
    let body = Body {
        topic: Cow::Borrowed(topic),
        payload: Cow::Owned(STANDARD.encode(payload)),
        received_at,
    };
    serde_json::to_string(&body).expect("the envelope serializes")
}

/// Why a queue message's body is not an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is not an envelope: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("the payload is not base64: {0}")]
    Payload(#[from] base64::DecodeError),
    #[error("received_at is out of range")]
    ReceivedAt,
}

pub fn decode(body: &str) -> Result<Envelope, EnvelopeError> {
    let body: Body = serde_json::from_str(body)?;
    let payload = STANDARD.decode(body.payload.as_bytes())?;
    let receipt_timestamp = Timestamp::parse(body.received_at as f64 / 1000.0)
        .map_err(|_| EnvelopeError::ReceivedAt)?;
    Ok(Envelope {
        topic: body.topic.into_owned(),
        payload,
        receipt_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_carry_any_bytes_and_the_receipt_time() {
        let payload = [0xff, 0x00, b'{'];
        let body = encode("measurements/x", &payload, 1_683_645_000_123);
        let envelope = decode(&body).unwrap();
        assert_eq!(envelope.topic, "measurements/x");
        assert_eq!(envelope.payload, payload);
        assert_eq!(envelope.receipt_timestamp.as_seconds(), 1_683_645_000.123);
    }

    #[test]
    fn bodies_that_are_not_envelopes_are_refused() {
        for body in [
            "",
            "[]",
            r#"{"topic": "t", "payload": "!!", "received_at": 1}"#,
            r#"{"topic": "t", "payload": "", "received_at": -1}"#,
            r#"{"topic": "t", "received_at": 1}"#,
        ] {
            assert!(decode(body).is_err(), "{body:?} was accepted");
        }
    }
}
