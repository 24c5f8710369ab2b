//! The AsyncAPI document (`docs/asyncapi.json`) and the code describe the same MQTT
//! protocol: every sensor topic the server subscribes to has a channel with its address
//! and every receiving channel is such a topic; each topic's valid examples pass its
//! schema and its parser, and its invalid examples fail both; the publisher sends
//! configurations to the documented address in the documented shape; and the size
//! limits are the code's and the broker's.

use std::collections::BTreeSet;
use std::sync::Mutex;

use sensorium_functions::jobs::publish_configurations;
use sensorium_functions::topics::Topic;
use sensorium_functions::topics::{Element, Heartbeat, LogMessage, Measurement, parse_elements};
use sensorium_shared::limits::{MAXIMUM_CONFIGURATION_SIZE, MAXIMUM_MESSAGE_SIZE};
use sensorium_shared::publisher::{BoxFuture, PublishError, Publisher};
use sensorium_shared::queries::configurations;
use sensorium_shared::testing::create_sensor;
use serde_json::{Value, json};
use sqlx::PgPool;

const ASYNCAPI: &str = include_str!("../../../docs/asyncapi.json");
const MOSQUITTO_CONFIGURATION: &str = include_str!("../../../scripts/mosquitto.conf.template");
const SENSOR_PARAMETER: &str = "{sensor_identifier}";
const A_SENSOR: &str = "5d4f8a3c-2b1e-4c7d-9f0a-1b2c3d4e5f60";

fn document() -> Value {
    serde_json::from_str(ASYNCAPI).expect("docs/asyncapi.json is JSON")
}

/// Follows `$ref`s (local JSON pointers) until `value` is not one.
fn resolve<'a>(document: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference} is not a local reference"));
        value = document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} leads nowhere"));
    }
    value
}

/// A channel of the document: its key, address and only message, and what the
/// server does on it (`send` or `receive`, from the operations).
#[derive(Clone, Copy)]
struct Channel<'a> {
    key: &'a str,
    address: &'a str,
    message: &'a Value,
    action: &'a str,
}

fn channels(document: &Value) -> Vec<Channel<'_>> {
    let operations = document["operations"].as_object().unwrap();
    document["channels"]
        .as_object()
        .expect("the document has channels")
        .iter()
        .map(|(key, channel)| {
            let channel = resolve(document, channel);
            let messages: Vec<&Value> = channel["messages"]
                .as_object()
                .unwrap_or_else(|| panic!("channel {key} has no messages"))
                .values()
                .collect();
            assert_eq!(messages.len(), 1, "channel {key} has one message");
            let reference = format!("#/channels/{key}");
            let actions: Vec<&str> = operations
                .values()
                .filter(|operation| operation["channel"]["$ref"] == reference.as_str())
                .map(|operation| operation["action"].as_str().unwrap())
                .collect();
            assert_eq!(actions.len(), 1, "channel {key} has one operation");
            Channel {
                key,
                address: channel["address"].as_str().unwrap(),
                message: resolve(document, messages[0]),
                action: actions[0],
            }
        })
        .collect()
}

/// The one channel the server sends on: its address and message.
fn sending_channel(document: &Value) -> (&str, &Value) {
    let channels = channels(document);
    let sending: Vec<&Channel> = channels
        .iter()
        .filter(|channel| channel.action == "send")
        .collect();
    assert_eq!(sending.len(), 1, "the server sends on one channel");
    (sending[0].address, sending[0].message)
}

/// The address of a topic's channel, as the code names the topic.
fn address_of(topic: Topic) -> String {
    format!("{}/{SENSOR_PARAMETER}", topic.prefix())
}

/// The channel the server receives `topic` on.
fn receiving_channel<'a>(channels: &[Channel<'a>], topic: Topic) -> Channel<'a> {
    channels
        .iter()
        .find(|channel| channel.action == "receive" && channel.address == address_of(topic))
        .copied()
        .unwrap_or_else(|| panic!("no channel receives {}", address_of(topic)))
}

/// The topic's parser on a payload: the whole payload's refusal, or each element's
/// outcome.
fn parse(topic: Topic, payload: &[u8]) -> Result<Vec<Result<(), String>>, String> {
    fn elements<T: Element>(payload: &[u8]) -> Result<Vec<Result<(), String>>, String> {
        parse_elements::<T>(payload)
            .map(|elements| {
                elements
                    .into_iter()
                    .map(|element| element.map(drop))
                    .collect()
            })
            .map_err(|error| error.to_string())
    }
    match topic {
        Topic::Measurements => elements::<Measurement>(payload),
        Topic::Heartbeats => elements::<Heartbeat>(payload),
        Topic::LogMessages => elements::<LogMessage>(payload),
    }
}

/// An example's payload as a sensor would send it: `payload` as JSON text, or
/// `rawPayload` as it is (for what JSON values cannot hold, such as a key twice).
fn example_bytes(example: &Value) -> Vec<u8> {
    match (example.get("payload"), example.get("rawPayload")) {
        (Some(payload), None) => payload.to_string().into_bytes(),
        (None, Some(Value::String(raw))) => raw.clone().into_bytes(),
        _ => panic!(
            "example {} has one of payload and rawPayload",
            example["name"]
        ),
    }
}

fn examples<'a>(message: &'a Value, key: &str) -> &'a [Value] {
    message
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

// --- A JSON Schema checker for the keywords the document uses --------------------------

/// Why `value` does not match `schema` (empty when it does). Panics on a keyword it
/// does not know, so that the document cannot use one this test would ignore.
fn violations(document: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(document, schema);
    // Those of nested values, and this value's own.
    let mut found = Vec::new();
    let mut reasons = Vec::new();
    let mut fail = |reason: String| reasons.push(format!("{at}: {reason}"));
    for (keyword, argument) in schema.as_object().expect("a schema is an object") {
        match keyword.as_str() {
            "type" => {
                let types: Vec<&str> = match argument {
                    Value::String(name) => vec![name.as_str()],
                    Value::Array(names) => {
                        names.iter().map(|name| name.as_str().unwrap()).collect()
                    }
                    _ => panic!("{at}: type is {argument}"),
                };
                if !types.iter().any(|name| has_type(value, name)) {
                    fail(format!("{value} is not of type {argument}"));
                }
            }
            "enum" => {
                if !argument.as_array().unwrap().contains(value) {
                    fail(format!("{value} is not one of {argument}"));
                }
            }
            "minimum" | "maximum" | "exclusiveMaximum" => {
                if let Some(number) = value.as_f64() {
                    let bound = argument.as_f64().unwrap();
                    let holds = match keyword.as_str() {
                        "minimum" => number >= bound,
                        "maximum" => number <= bound,
                        _ => number < bound,
                    };
                    if !holds {
                        fail(format!("{number} breaks {keyword} {bound}"));
                    }
                }
            }
            "pattern" | "maxLength" => {
                if let Some(text) = value.as_str() {
                    check_string(keyword, argument, text, &mut fail);
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, property) in argument.as_object().unwrap() {
                        if let Some(field) = object.get(name) {
                            found.extend(violations(
                                document,
                                property,
                                field,
                                &format!("{at}.{name}"),
                            ));
                        }
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in argument.as_array().unwrap() {
                        if !object.contains_key(name.as_str().unwrap()) {
                            fail(format!("{name} is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    let listed = schema.get("properties").and_then(Value::as_object);
                    for (name, field) in object {
                        if listed.is_some_and(|listed| listed.contains_key(name)) {
                            continue;
                        }
                        match argument {
                            Value::Bool(true) => {}
                            Value::Bool(false) => fail(format!("{name} is not a listed field")),
                            property => found.extend(violations(
                                document,
                                property,
                                field,
                                &format!("{at}.{name}"),
                            )),
                        }
                    }
                }
            }
            "propertyNames" => {
                if let Some(object) = value.as_object() {
                    for name in object.keys() {
                        found.extend(violations(
                            document,
                            argument,
                            &Value::String(name.clone()),
                            &format!("{at} key {name:?}"),
                        ));
                    }
                }
            }
            "minProperties" | "maxProperties" => {
                if let Some(object) = value.as_object() {
                    let bound = argument.as_u64().unwrap() as usize;
                    if (keyword == "minProperties" && object.len() < bound)
                        || (keyword == "maxProperties" && object.len() > bound)
                    {
                        fail(format!("{} fields break {keyword} {bound}", object.len()));
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (index, item) in items.iter().enumerate() {
                        found.extend(violations(
                            document,
                            argument,
                            item,
                            &format!("{at}[{index}]"),
                        ));
                    }
                }
            }
            "minItems" => {
                if value
                    .as_array()
                    .is_some_and(|items| items.len() < argument.as_u64().unwrap() as usize)
                {
                    fail(format!("fewer than {argument} items"));
                }
            }
            "description" | "title" | "examples" => {}
            extension if extension.starts_with("x-") => {}
            unknown => panic!("{at}: this test does not check the keyword {unknown}"),
        }
    }
    found.extend(reasons);
    found
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|number| number.fract() == 0.0),
        other => panic!("unknown type {other}"),
    }
}

fn check_string(keyword: &str, argument: &Value, text: &str, fail: &mut impl FnMut(String)) {
    if keyword == "pattern" {
        let pattern = argument.as_str().unwrap();
        let expression = regex_lite::Regex::new(pattern)
            .unwrap_or_else(|error| panic!("pattern {pattern}: {error}"));
        if !expression.is_match(text) {
            fail(format!("{text:?} does not match {pattern}"));
        }
    } else if text.chars().count() as u64 > argument.as_u64().unwrap() {
        fail(format!("{text:?} is longer than {argument}"));
    }
}

fn payload_violations(document: &Value, message: &Value, payload: &Value) -> Vec<String> {
    violations(document, &message["payload"], payload, "payload")
}

// --- The tests -------------------------------------------------------------------------

#[test]
fn every_sensor_topic_has_a_receiving_channel_and_every_receiving_channel_is_a_topic() {
    let document = document();
    assert_eq!(document["asyncapi"].as_str(), Some("3.0.0"));
    let channels = channels(&document);
    for topic in Topic::ALL {
        let channel = receiving_channel(&channels, topic);
        let published_to = channel.address.replace(SENSOR_PARAMETER, A_SENSOR);
        assert_eq!(Topic::of(&published_to), Some(topic), "{published_to}");
        assert_eq!(
            channel.address.replace(SENSOR_PARAMETER, "+"),
            topic.filter()
        );
    }
    let receiving: BTreeSet<String> = channels
        .iter()
        .filter(|channel| channel.action == "receive")
        .map(|channel| channel.address.to_owned())
        .collect();
    let topics: BTreeSet<String> = Topic::ALL.into_iter().map(address_of).collect();
    assert_eq!(receiving, topics, "the receiving channels are the topics");
    let sending: Vec<&str> = channels
        .iter()
        .filter(|channel| channel.action == "send")
        .map(|channel| channel.key)
        .collect();
    assert_eq!(
        sending,
        ["configurations"],
        "the server sends only configurations"
    );
}

/// Each sensor topic's examples under `key` (each topic has some), with the topic and
/// its message.
fn topic_examples<'a>(document: &'a Value, key: &str) -> Vec<(Topic, &'a Value, &'a Value)> {
    let channels = channels(document);
    let mut found = Vec::new();
    for topic in Topic::ALL {
        let message = receiving_channel(&channels, topic).message;
        let examples = examples(message, key);
        assert!(!examples.is_empty(), "{} has {key}", topic.prefix());
        found.extend(examples.iter().map(|example| (topic, message, example)));
    }
    found
}

#[test]
fn every_valid_example_passes_its_schema_and_its_topics_parser() {
    let document = document();
    for (topic, message, example) in topic_examples(&document, "examples") {
        let name = &example["name"];
        let problems = payload_violations(&document, message, &example["payload"]);
        assert!(problems.is_empty(), "{name}: {problems:?}");
        let elements = parse(topic, &example_bytes(example))
            .unwrap_or_else(|error| panic!("{name} was refused: {error}"));
        let sent = example["payload"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        assert_eq!(elements.len(), sent.as_array().unwrap().len(), "{name}");
        for (position, element) in elements.iter().enumerate() {
            assert!(element.is_ok(), "{name}, element {position}: {element:?}");
        }
    }
}

#[test]
fn every_invalid_example_fails_its_schema_and_stores_nothing() {
    let document = document();
    for (topic, message, example) in topic_examples(&document, "x-invalid-examples") {
        let name = &example["name"];
        // Nothing stored: the payload refused, or each of its elements.
        if let Ok(elements) = parse(topic, &example_bytes(example)) {
            for (position, element) in elements.iter().enumerate() {
                assert!(element.is_err(), "{name}: element {position} was accepted");
            }
        }
        if let Some(payload) = example.get("payload") {
            let problems = payload_violations(&document, message, payload);
            assert!(!problems.is_empty(), "{name} passes its schema");
        }
    }
}

#[test]
fn the_size_limits_are_the_codes_and_the_brokers() {
    let document = document();
    for channel in channels(&document) {
        assert_eq!(
            channel.message["x-maximum-payload-bytes"].as_u64(),
            Some(MAXIMUM_MESSAGE_SIZE as u64),
            "{}",
            channel.key
        );
    }
    let configuration = resolve(
        &document,
        &document["components"]["schemas"]["ConfigurationPayload"],
    );
    assert_eq!(
        configuration["properties"]["configuration"]["x-maximum-bytes"].as_u64(),
        Some(MAXIMUM_CONFIGURATION_SIZE as u64)
    );
    let broker_limit = MOSQUITTO_CONFIGURATION
        .lines()
        .find_map(|line| line.strip_prefix("max_packet_size "))
        .expect("the broker's configuration limits packets");
    assert_eq!(
        document["servers"]["local"]["bindings"]["mqtt"]["maximumPacketSize"].as_u64(),
        Some(broker_limit.trim().parse().unwrap())
    );
}

#[test]
fn the_configuration_examples_pass_their_schema() {
    let document = document();
    let (_, message) = sending_channel(&document);
    for example in examples(message, "examples") {
        let problems = payload_violations(&document, message, &example["payload"]);
        assert!(problems.is_empty(), "{}: {problems:?}", example["name"]);
    }
    let refused = json!({"revision": -1, "configuration": [], "extra": true});
    assert_eq!(
        payload_violations(&document, message, &refused).len(),
        3,
        "the schema refuses a bad revision, a configuration that is not an object and another field"
    );
}

/// A broker that accepts everything and keeps what it was sent.
#[derive(Default)]
struct RecordingBroker(Mutex<Vec<(String, Vec<u8>)>>);

impl Publisher for RecordingBroker {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        self.0.lock().unwrap().push((topic.to_owned(), payload));
        Box::pin(std::future::ready(Ok(())))
    }
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_publisher_sends_configurations_to_the_documented_address_in_the_documented_shape(
    pool: PgPool,
) {
    let document = document();
    let (address, message) = sending_channel(&document);
    let sensor = create_sensor(&pool).await;
    let value = json!({"measurement_interval_s": 60, "sensors": {"co2": {"enabled": true}}});
    configurations::create_configuration(&pool, sensor, value.as_object().unwrap())
        .await
        .unwrap();
    let broker = RecordingBroker::default();
    let sweep = publish_configurations::run(&pool, &broker).await.unwrap();
    assert_eq!(sweep.published, 1);

    let published = broker.0.into_inner().unwrap();
    let [(topic, payload)] = published.as_slice() else {
        panic!("one publication expected: {published:?}");
    };
    assert_eq!(
        *topic,
        address.replace(SENSOR_PARAMETER, &sensor.to_string())
    );
    let payload: Value = serde_json::from_slice(payload).unwrap();
    let problems = payload_violations(&document, message, &payload);
    assert!(problems.is_empty(), "{payload}: {problems:?}");
    assert_eq!(payload, json!({"revision": 0, "configuration": value}));
}
