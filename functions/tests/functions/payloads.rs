//! Property tests of the MQTT payload parsers: whatever bytes a sensor or the bridge
//! sends (random bytes, deep nesting, huge numbers, odd unicode, duplicated keys,
//! U+0000), parsing never panics, and the good elements of a message are always
//! parsed as good, with the values they hold, beside any bad ones.

use std::collections::BTreeMap;
use std::fmt::Debug;

use proptest::prelude::*;
use sensorium_functions::topics::envelope;
use sensorium_functions::topics::{Element, Heartbeat, LogMessage, Measurement, parse_elements};
use sensorium_shared::domain::{Attribute, Revision, Severity, Timestamp};
use serde_json::json;

/// Enough cases to meet each kind of input, few enough to run in seconds.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    }
}

/// A timestamp the contract accepts: `0 <= t < 2^31`.
fn timestamp() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(2_147_483_647.0),
        0.0..2_147_483_647.0,
        (0_u32..(1 << 31)).prop_map(f64::from),
    ]
}

fn revision() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(i64::from(i32::MAX)), 0..i64::from(i32::MAX)]
}

/// Any finite number, extremes and subnormals included.
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(f64::from_bits(1)),
        Just(-0.0),
        any::<f64>().prop_filter("finite", |number| number.is_finite()),
    ]
}

/// Text of any characters but U+0000, sometimes longer than a subject is kept.
fn text(longest: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..longest)
        .prop_map(|characters| characters.into_iter().filter(|&c| c != '\0').collect())
}

fn cut(text: &str, length: usize) -> String {
    text.chars().take(length).collect()
}

/// A good element as JSON text, with the value it must parse to.
type Good<T> = (String, T);

fn measurement() -> impl Strategy<Value = Good<Measurement>> {
    let attributes = prop::collection::btree_map("[a-z0-9](_?[a-z0-9]){0,8}", finite(), 1..6);
    (timestamp(), prop::option::of(revision()), attributes).prop_map(
        |(timestamp, revision, value)| {
            let text = json!({"timestamp": timestamp, "revision": revision, "value": value});
            let expected = Measurement {
                timestamp: Timestamp::parse(timestamp).unwrap(),
                revision: revision.map(|revision| Revision::parse(revision).unwrap()),
                value: value
                    .into_iter()
                    .map(|(attribute, number)| (Attribute::parse(attribute).unwrap(), number))
                    .collect::<BTreeMap<_, _>>(),
            };
            (text.to_string(), expected)
        },
    )
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Info),
        Just(Severity::Warning),
        Just(Severity::Error)
    ]
}

fn log_message() -> impl Strategy<Value = Good<LogMessage>> {
    (
        severity(),
        timestamp(),
        text(300),
        prop::option::of(text(40)),
        prop::option::of(revision()),
    )
        .prop_map(|(severity, timestamp, subject, details, revision)| {
            let text = json!({
                "severity": severity.as_str(), "timestamp": timestamp, "subject": subject,
                "details": details, "revision": revision,
            });
            let expected = LogMessage {
                severity,
                timestamp: Timestamp::parse(timestamp).unwrap(),
                subject: cut(&subject, 256),
                details,
                revision: revision.map(|revision| Revision::parse(revision).unwrap()),
            };
            (text.to_string(), expected)
        })
}

fn heartbeat() -> impl Strategy<Value = Good<Heartbeat>> {
    (revision(), timestamp(), any::<bool>()).prop_map(|(revision, timestamp, success)| {
        let text = json!({"revision": revision, "timestamp": timestamp, "success": success});
        let expected = Heartbeat {
            revision: Revision::parse(revision).unwrap(),
            timestamp: Timestamp::parse(timestamp).unwrap(),
            success,
        };
        (text.to_string(), expected)
    })
}

/// Number text serde cannot hold exactly, or at all: huge, tiny, long, negative zero.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e400".to_string()),
        Just("-1e400".to_string()),
        Just("1e-400".to_string()),
        Just("-0".to_string()),
        Just("18446744073709551616".to_string()),
        Just("2147483648".to_string()),
        "-?(0|[1-9][0-9]{0,399})(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,5})?",
    ]
}

/// A JSON string as text, with the escapes and characters that trip parsers: U+0000,
/// lone and paired surrogates, noncharacters, the byte order mark.
fn string_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\\u0000".to_string()),
        Just("\\ud800".to_string()),
        Just("\\udfff".to_string()),
        Just("\\ud83d\\ude00".to_string()),
        Just("\\uffff".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{10ffff}".to_string()),
        Just("\\\\u0000".to_string()),
        // Any character, escaped as JSON needs it, without the quotes.
        any::<char>().prop_map(|character| {
            let quoted = serde_json::to_string(&character.to_string()).unwrap();
            quoted[1..quoted.len() - 1].to_string()
        }),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

/// Any JSON text, built as text so that it holds what a serde value cannot: duplicated
/// keys, huge numbers, lone surrogates.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        number_text(),
        string_text(),
        finite().prop_map(|number| json!(number).to_string()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6)
                .prop_map(|values| format!("[{}]", values.join(","))),
            prop::collection::vec(
                (
                    prop_oneof![
                        string_text(),
                        Just("\"timestamp\"".to_string()),
                        Just("\"value\"".to_string()),
                        Just("\"subject\"".to_string()),
                        Just("\"revision\"".to_string()),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| {
                let entries: Vec<String> = entries
                    .into_iter()
                    .map(|(key, value)| format!("{key}:{value}"))
                    .collect();
                format!("{{{}}}", entries.join(","))
            }),
        ]
    })
}

/// Arrays or objects nested deeper than any parser's recursion limit.
fn deep_nesting() -> impl Strategy<Value = String> {
    (1_usize..100_000, any::<bool>()).prop_map(|(depth, arrays)| {
        if arrays {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
        }
    })
}

/// A good measurement's fields spoilt one way: each must be refused.
fn bad_measurement() -> impl Strategy<Value = String> {
    let spoilt = prop_oneof![
        Just(r#""value": {"a": 1, "a": 1}"#.to_string()),
        Just(r#""value": {"a": 1}, "value": {"a": 1}"#.to_string()),
        Just(r#""value": {"a": 1}, "timestamp": 1"#.to_string()),
        Just(r#""value": {"a": 1e400}"#.to_string()),
        Just(r#""value": {"a": "1"}"#.to_string()),
        Just(r#""value": {"a\u0000": 1}"#.to_string()),
        Just(r#""value": {"a": 1}, "unit": "C""#.to_string()),
        deep_nesting().prop_map(|nested| format!(r#""value": {{"a": {nested}}}"#)),
    ];
    (timestamp(), spoilt).prop_map(|(timestamp, spoilt)| {
        format!(r#"{{"timestamp": {}, {spoilt}}}"#, json!(timestamp))
    })
}

/// A JSON string with U+0000 somewhere in it, escaped as JSON must.
fn text_holding_nul() -> impl Strategy<Value = String> {
    (text(20), text(20)).prop_map(|(before, after)| {
        let quoted = |text: &str| serde_json::to_string(text).unwrap();
        let (before, after) = (quoted(&before), quoted(&after));
        format!("{}\\u0000{}", &before[..before.len() - 1], &after[1..])
    })
}

/// A good log message's fields spoilt one way: each must be refused.
fn bad_log_message() -> impl Strategy<Value = String> {
    let spoilt = prop_oneof![
        text_holding_nul().prop_map(|subject| format!(r#""subject": {subject}"#)),
        text_holding_nul().prop_map(|details| format!(r#""subject": "s", "details": {details}"#)),
        Just(r#""subject": "s", "subject": "s""#.to_string()),
        Just(r#""subject": "\ud800""#.to_string()),
        Just(r#""subject": "s", "revision": 2147483648"#.to_string()),
        Just(r#""subject": "s", "revision": -1"#.to_string()),
    ];
    (timestamp(), spoilt).prop_map(|(timestamp, spoilt)| {
        format!(
            r#"{{"severity": "info", "timestamp": {}, {spoilt}}}"#,
            json!(timestamp)
        )
    })
}

/// A good heartbeat's fields spoilt one way: each must be refused.
fn bad_heartbeat() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"revision": 0, "timestamp": 1, "success": true, "success": true}"#),
        Just(r#"{"revision": 0, "timestamp": 1e400, "success": true}"#),
        Just(r#"{"revision": 0, "timestamp": 2147483648, "success": true}"#),
        Just(r#"{"revision": 0, "timestamp": 1, "success": "true"}"#),
        Just(r#"{"revision": null, "timestamp": 1, "success": true}"#),
    ]
    .prop_map(str::to_string)
}

/// An element of a payload: good with its value, known to be bad, or any other JSON.
#[derive(Debug, Clone)]
enum Item<T> {
    Good(Good<T>),
    Bad(String),
    Other(String),
}

fn items<T: Debug + Clone + 'static>(
    good: impl Strategy<Value = Good<T>> + 'static,
    bad: impl Strategy<Value = String> + 'static,
) -> impl Strategy<Value = Vec<Item<T>>> {
    let item = prop_oneof![
        3 => good.prop_map(Item::Good),
        2 => bad.prop_map(Item::Bad),
        2 => json_text().prop_map(Item::Other),
        1 => deep_nesting().prop_map(Item::Other),
    ];
    prop::collection::vec(item, 1..10)
}

/// Parses a payload of `items` and checks that each good one is parsed to its value,
/// and each bad one refused.
fn check_elements<T: Element + PartialEq + Debug>(items: &[Item<T>]) -> Result<(), TestCaseError> {
    let texts: Vec<&str> = items
        .iter()
        .map(|item| match item {
            Item::Good((text, _)) => text.as_str(),
            Item::Bad(text) | Item::Other(text) => text.as_str(),
        })
        .collect();
    let payload = format!("{{\"{}\": [{}]}}", T::KEY, texts.join(", "));
    let elements = parse_elements::<T>(payload.as_bytes())
        .map_err(|error| TestCaseError::fail(format!("payload refused: {error}")))?;
    prop_assert_eq!(elements.len(), items.len());
    for (item, element) in items.iter().zip(&elements) {
        match item {
            Item::Good((text, expected)) => {
                prop_assert_eq!(element.as_ref(), Ok(expected), "{}", text)
            }
            Item::Bad(text) => prop_assert!(element.is_err(), "{} was accepted", text),
            Item::Other(_) => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_elements::<Measurement>(&bytes);
        let _ = parse_elements::<LogMessage>(&bytes);
        let _ = parse_elements::<Heartbeat>(&bytes);
        let _ = envelope::decode(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_json_never_panics(text in json_text()) {
        let _ = parse_elements::<Measurement>(text.as_bytes());
        let payload = format!("{{\"log_messages\": {text}}}");
        let _ = parse_elements::<LogMessage>(payload.as_bytes());
        let payload = format!("{{\"heartbeats\": [{text}]}}");
        let _ = parse_elements::<Heartbeat>(payload.as_bytes());
        let _ = envelope::decode(&text);
    }

    #[test]
    fn good_measurements_are_parsed_beside_anything(
        items in items(measurement(), bad_measurement())
    ) {
        check_elements(&items)?;
    }

    #[test]
    fn good_log_messages_are_parsed_beside_anything(
        items in items(log_message(), bad_log_message())
    ) {
        check_elements(&items)?;
    }

    #[test]
    fn good_heartbeats_are_parsed_beside_anything(items in items(heartbeat(), bad_heartbeat())) {
        check_elements(&items)?;
    }

    #[test]
    fn payloads_with_their_key_twice_are_refused(
        first in measurement(),
        second in measurement(),
    ) {
        let payload = format!(
            r#"{{"measurements": [{}], "measurements": [{}]}}"#,
            first.0, second.0
        );
        prop_assert!(parse_elements::<Measurement>(payload.as_bytes()).is_err());
    }

    #[test]
    fn envelopes_carry_any_topic_and_payload(
        topic in text(80),
        payload in prop::collection::vec(any::<u8>(), 0..512),
        received_at in 0_i64..2_147_483_647_000,
    ) {
        let decoded = envelope::decode(&envelope::encode(&topic, &payload, received_at)).unwrap();
        prop_assert_eq!(decoded.topic, topic);
        prop_assert_eq!(decoded.payload, payload);
        prop_assert_eq!(
            decoded.receipt_timestamp,
            Timestamp::parse(received_at as f64 / 1000.0).unwrap()
        );
    }
}
