//! The payloads of the sensor topics (API.md's MQTT section), parsed element by
//! element: the envelope `{"<key>": [element, ...]}` must be exactly right, while a
//! bad element only costs itself.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use sensorium_shared::domain::{Attribute, Revision, Severity, Timestamp};
use sensorium_shared::limits::{
    MAXIMUM_ATTRIBUTE_COUNT, MAXIMUM_DETAILS_LENGTH, MAXIMUM_SUBJECT_LENGTH,
};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;
use serde_json::value::RawValue;

/// Why a whole payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not a JSON object with the single key {0:?}")]
    WrongShape(&'static str),
    #[error("{0:?} does not hold a non-empty array")]
    NotAList(&'static str),
}

/// The elements of a payload `{"<key>": [...]}`, each parsed on its own: `Ok` for a
/// good element, `Err` with the reason for a bad one, in payload order.
pub fn parse_elements<T: Element>(payload: &[u8]) -> Result<Vec<Result<T, String>>, PayloadError> {
    // The elements are first borrowed as raw JSON text, without building a tree of
    // the whole payload, and then parsed one at a time. serde_json checks UTF-8
    // itself, so bytes that are not UTF-8 are "not JSON".
    let Object(object) =
        serde_json::from_slice(payload).map_err(|error| match error.classify() {
            Category::Data => PayloadError::WrongShape(T::KEY),
            _ => PayloadError::NotJson(error),
        })?;
    let mut entries = object.into_iter();
    let (Some((key, elements)), None) = (entries.next(), entries.next()) else {
        return Err(PayloadError::WrongShape(T::KEY));
    };
    if key != T::KEY {
        return Err(PayloadError::WrongShape(T::KEY));
    }
    match serde_json::from_str::<Vec<&RawValue>>(elements.get()) {
        Ok(elements) if !elements.is_empty() => Ok(elements.into_iter().map(T::parse).collect()),
        _ => Err(PayloadError::NotAList(T::KEY)),
    }
}

/// A payload's object, its values borrowed as raw JSON text. A key given twice makes it
/// the wrong shape: it holds two keys, not one.
#[derive(Deserialize)]
#[serde(transparent)]
struct Object<'a>(
    #[serde(borrow, deserialize_with = "unique_keys")] BTreeMap<String, &'a RawValue>,
);

/// Deserializes an object into a map, refusing a key that appears twice: serde's maps
/// silently keep the last value, while which one the sensor meant is anyone's guess.
fn unique_keys<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct UniqueKeys<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for UniqueKeys<K, V>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("an object with no key twice")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut object: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((key, value)) = object.next_entry()? {
                if map.insert(key, value).is_some() {
                    return Err(serde::de::Error::custom("a key appears twice"));
                }
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(UniqueKeys(PhantomData))
}

/// One element type of a sensor topic.
pub trait Element: Sized {
    /// The payload's single key.
    const KEY: &'static str;

    fn parse(element: &RawValue) -> Result<Self, String>;
}

/// Longest reason logged for a bad element: serde's message quotes the offending
/// value, which a sensor may make a megabyte long.
const MAXIMUM_REASON_LENGTH: usize = 200;

fn deserialize<'a, T: Deserialize<'a>>(element: &'a RawValue) -> Result<T, String> {
    serde_json::from_str(element.get()).map_err(|error| {
        let mut reason = error.to_string();
        cut(&mut reason, MAXIMUM_REASON_LENGTH);
        reason
    })
}

/// A measurement: `timestamp`, optional `revision`, and 1 to 1024 finite numbers, each
/// attribute once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    pub timestamp: Timestamp,
    #[serde(default)]
    pub revision: Option<Revision>,
    // JSON numbers are finite (serde_json refuses 1e400), and `f64` refuses strings,
    // booleans and null.
    #[serde(deserialize_with = "unique_keys")]
    pub value: BTreeMap<Attribute, f64>,
}

impl Element for Measurement {
    const KEY: &'static str = "measurements";

    fn parse(element: &RawValue) -> Result<Self, String> {
        let measurement: Self = deserialize(element)?;
        if (1..=MAXIMUM_ATTRIBUTE_COUNT).contains(&measurement.value.len()) {
            Ok(measurement)
        } else {
            Err(format!(
                "value holds {} attributes, not 1 to {MAXIMUM_ATTRIBUTE_COUNT}",
                measurement.value.len()
            ))
        }
    }
}

/// A log message; `subject` and `details` are cut to their limits, and hold no U+0000.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogMessage {
    pub severity: Severity,
    pub timestamp: Timestamp,
    pub subject: String,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub revision: Option<Revision>,
}

impl Element for LogMessage {
    const KEY: &'static str = "log_messages";

    fn parse(element: &RawValue) -> Result<Self, String> {
        let mut log_message: Self = deserialize(element)?;
        // PostgreSQL cannot store it in text, and would refuse the whole batch.
        let holds_nul = |text: &str| text.contains('\0');
        if holds_nul(&log_message.subject) || log_message.details.as_deref().is_some_and(holds_nul)
        {
            return Err("subject or details hold U+0000".into());
        }
        cut(&mut log_message.subject, MAXIMUM_SUBJECT_LENGTH);
        if let Some(details) = &mut log_message.details {
            cut(details, MAXIMUM_DETAILS_LENGTH);
        }
        Ok(log_message)
    }
}

/// Cuts `text` to `length` characters (not bytes: never inside a character).
fn cut(text: &mut String, length: usize) {
    if let Some((index, _)) = text.char_indices().nth(length) {
        text.truncate(index);
    }
}

/// A heartbeat: the sensor's acknowledgement of a configuration revision.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub revision: Revision,
    pub timestamp: Timestamp,
    pub success: bool,
}

impl Element for Heartbeat {
    const KEY: &'static str = "heartbeats";

    fn parse(element: &RawValue) -> Result<Self, String> {
        deserialize(element)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse<T: Element>(payload: serde_json::Value) -> Vec<Result<T, String>> {
        parse_elements(payload.to_string().as_bytes()).unwrap()
    }

    fn accepted<T: Element>(element: serde_json::Value) -> bool {
        parse::<T>(json!({ T::KEY: [element] }))[0].is_ok()
    }

    #[test]
    fn payloads_must_be_an_object_with_the_one_key_holding_a_non_empty_array() {
        let refused: [&[u8]; 11] = [
            b"\xff\xfe",
            b"not json",
            b"[]",
            b"[{\"measurements\": []}]",
            b"{}",
            b"{\"measurements\": []}",
            b"{\"measurements\": {}}",
            b"{\"log_messages\": [{}]}",
            b"{\"measurements\": [{}], \"other\": 1}",
            b"{\"measurements\": [{}], \"measurements\": [{}]}",
            b"null",
        ];
        for payload in refused {
            assert!(
                parse_elements::<Measurement>(payload).is_err(),
                "{payload:?} was accepted"
            );
        }
        let elements = parse::<Measurement>(json!({"measurements": [{}, 1]}));
        assert_eq!(elements.len(), 2);
        assert!(elements.iter().all(Result::is_err));
    }

    #[test]
    fn refused_payloads_say_whether_they_are_json_of_the_wrong_shape_or_not_json() {
        let reason = |payload: &[u8]| parse_elements::<Measurement>(payload).unwrap_err();
        for payload in [&b"[]"[..], b"null", b"{\"log_messages\": [{}]}"] {
            assert!(matches!(reason(payload), PayloadError::WrongShape(_)));
        }
        for payload in [&b"{\"measurements\": 1}"[..], b"{\"measurements\": []}"] {
            assert!(matches!(reason(payload), PayloadError::NotAList(_)));
        }
        for payload in [&b"{\"measurements\": [1"[..], b"\xff", b""] {
            assert!(matches!(reason(payload), PayloadError::NotJson(_)));
        }
    }

    #[test]
    fn measurements_need_a_timestamp_and_1_to_1024_finite_numbers() {
        let good = json!({"timestamp": 1.5, "value": {"temperature": 20.5, "co2": 400}});
        assert!(accepted::<Measurement>(good));
        assert!(accepted::<Measurement>(
            json!({"timestamp": 1, "revision": null, "value": {"a": 1}})
        ));
        assert!(accepted::<Measurement>(
            json!({"timestamp": 1, "revision": 3, "value": {"a": -1e300}})
        ));
        let most: serde_json::Map<_, _> = (0..1024).map(|i| (format!("a{i}"), json!(i))).collect();
        assert!(accepted::<Measurement>(
            json!({"timestamp": 1, "value": most})
        ));
        let too_many: serde_json::Map<_, _> =
            (0..1025).map(|i| (format!("a{i}"), json!(i))).collect();
        let refused = [
            json!({"timestamp": 1, "value": too_many}),
            json!({"value": {"a": 1}}),
            json!({"timestamp": 1}),
            json!({"timestamp": 1, "value": {}}),
            json!({"timestamp": 1, "value": {"a": "1"}}),
            json!({"timestamp": 1, "value": {"a": null}}),
            json!({"timestamp": 1, "value": {"A": 1}}),
            json!({"timestamp": 1, "value": {"a__b": 1}}),
            json!({"timestamp": 1, "value": [1]}),
            json!({"timestamp": -1, "value": {"a": 1}}),
            json!({"timestamp": 2147483648_u64, "value": {"a": 1}}),
            json!({"timestamp": "1", "value": {"a": 1}}),
            json!({"timestamp": 1, "revision": -1, "value": {"a": 1}}),
            json!({"timestamp": 1, "revision": 1.5, "value": {"a": 1}}),
            json!({"timestamp": 1, "value": {"a": 1}, "unit": "C"}),
            json!("measurement"),
        ];
        for element in refused {
            assert!(!accepted::<Measurement>(element.clone()), "{element}");
        }
    }

    #[test]
    fn log_messages_are_cut_to_their_limits() {
        let subject = "ä".repeat(300);
        let details = "d".repeat(20000);
        let elements = parse::<LogMessage>(json!({"log_messages": [
            {"severity": "error", "timestamp": 1, "subject": subject, "details": details, "revision": 2},
            {"severity": "info", "timestamp": 1, "subject": "s"},
            {"severity": "warning", "timestamp": 1, "subject": "s", "details": null, "revision": null},
        ]}));
        let first = elements[0].as_ref().unwrap();
        assert_eq!(first.subject, "ä".repeat(256));
        assert_eq!(first.details.as_deref(), Some("d".repeat(16384).as_str()));
        assert!(elements[1].is_ok() && elements[2].is_ok());
        let refused = [
            json!({"severity": "fatal", "timestamp": 1, "subject": "s"}),
            json!({"severity": "ERROR", "timestamp": 1, "subject": "s"}),
            json!({"timestamp": 1, "subject": "s"}),
            json!({"severity": "info", "subject": "s"}),
            json!({"severity": "info", "timestamp": 1}),
            json!({"severity": "info", "timestamp": 1, "subject": 1}),
            json!({"severity": "info", "timestamp": 1, "subject": "s", "details": 1}),
            json!({"severity": "info", "timestamp": 1, "subject": "s", "revision": "1"}),
            json!({"severity": "info", "timestamp": 1, "subject": "s", "extra": true}),
        ];
        for element in refused {
            assert!(!accepted::<LogMessage>(element.clone()), "{element}");
        }
    }

    #[test]
    fn log_messages_holding_u0000_are_bad_elements() {
        let elements = parse::<LogMessage>(json!({"log_messages": [
            {"severity": "info", "timestamp": 1, "subject": "a\u{0}"},
            {"severity": "info", "timestamp": 1, "subject": "s", "details": "\u{0}"},
            // Beyond the length a subject is cut to, still refused.
            {"severity": "info", "timestamp": 1, "subject": format!("{}\u{0}", "s".repeat(300))},
            {"severity": "info", "timestamp": 1, "subject": "s", "details": "\\u0000"},
        ]}));
        assert!(elements[..3].iter().all(Result::is_err), "{elements:?}");
        assert!(elements[3].is_ok());
    }

    #[test]
    fn reasons_for_bad_elements_stay_short() {
        let huge = "x".repeat(1 << 20);
        let elements = parse::<Heartbeat>(json!({"heartbeats": [{"revision": huge}]}));
        let reason = elements[0].as_ref().unwrap_err();
        assert!(
            reason.chars().count() <= MAXIMUM_REASON_LENGTH,
            "{}",
            reason.len()
        );
    }

    #[test]
    fn heartbeats_need_revision_timestamp_and_success() {
        assert!(accepted::<Heartbeat>(
            json!({"revision": 0, "timestamp": 1.25, "success": false})
        ));
        let refused = [
            json!({"timestamp": 1, "success": true}),
            json!({"revision": null, "timestamp": 1, "success": true}),
            json!({"revision": 0, "success": true}),
            json!({"revision": 0, "timestamp": 1}),
            json!({"revision": 0, "timestamp": 1, "success": 1}),
            json!({"revision": 0, "timestamp": 1, "success": true, "extra": 1}),
        ];
        for element in refused {
            assert!(!accepted::<Heartbeat>(element.clone()), "{element}");
        }
    }
}
