//! `infra/template.json` and the code agree: the HTTP API declares exactly the route
//! table the harness serves, every function it deploys has a binary, and the topic
//! rules forward the bridge envelope of every sensor topic to a queue whose function
//! reports partial batch failures.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.json");
    let text = std::fs::read_to_string(&path).expect("infra/template.json exists");
    serde_json::from_str(&text).expect("infra/template.json is JSON")
}

/// The resources of `template` of the given type.
fn resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"]
        .as_object()
        .expect("a Resources object")
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .collect()
}

/// The binary a function resource deploys: the last part of its `CodeUri`.
fn binary_of(function: &Value) -> String {
    let code_uri = function["Properties"]["CodeUri"]
        .as_str()
        .expect("a CodeUri");
    let binary = code_uri.trim_end_matches('/').rsplit('/').next().unwrap();
    binary.to_owned()
}

#[test]
fn the_http_api_declares_exactly_the_route_table() {
    let template = template();
    let mut declared = BTreeSet::new();
    for (_, function) in resources(&template, "AWS::Serverless::Function") {
        let binary = binary_of(function);
        let Some(events) = function["Properties"]["Events"].as_object() else {
            continue;
        };
        for event in events.values().filter(|event| event["Type"] == "HttpApi") {
            let method = event["Properties"]["Method"].as_str().unwrap().to_owned();
            let path = event["Properties"]["Path"].as_str().unwrap().to_owned();
            declared.insert((method, path, binary.clone()));
        }
    }
    let served: BTreeSet<_> = sensorium_functions::routes::ROUTES
        .iter()
        .map(|(method, path, function)| {
            (method.to_string(), path.to_string(), function.to_string())
        })
        .collect();
    assert_eq!(declared, served);
}

#[test]
fn every_deployed_function_has_a_binary() {
    let template = template();
    let binaries = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let functions = resources(&template, "AWS::Serverless::Function");
    assert!(!functions.is_empty());
    for (name, function) in functions {
        let binary = binaries.join(format!("{}.rs", binary_of(function)));
        assert!(binary.exists(), "{name} deploys {}", binary.display());
    }
}

#[test]
fn every_sensor_topic_reaches_a_queue_with_partial_batch_failures() {
    let template = template();
    let rules = resources(&template, "AWS::IoT::TopicRule");
    let mut topics = BTreeSet::new();
    for (name, rule) in rules {
        let payload = &rule["Properties"]["TopicRulePayload"];
        let sql = payload["Sql"].as_str().unwrap();
        assert!(
            sql.starts_with(
                "SELECT topic() AS topic, encode(*, 'base64') AS payload, \
                 timestamp() AS received_at FROM '"
            ),
            "{name} does not send the bridge envelope: {sql}"
        );
        let topic = sql.rsplit_once("FROM '").unwrap().1.trim_end_matches('\'');
        topics.insert(topic.to_owned());
        let queue = payload["Actions"][0]["Sqs"]["QueueUrl"]["Ref"]
            .as_str()
            .expect("an SQS action");
        let consumers: Vec<_> = resources(&template, "AWS::Serverless::Function")
            .into_iter()
            .filter_map(|(_, function)| {
                let event = function["Properties"]["Events"]["Queue"].clone();
                (event["Properties"]["Queue"]["Fn::GetAtt"][0] == queue).then_some(event)
            })
            .collect();
        assert_eq!(consumers.len(), 1, "{queue} has one consumer");
        assert_eq!(
            consumers[0]["Properties"]["FunctionResponseTypes"][0],
            "ReportBatchItemFailures"
        );
        let queue_resource = &template["Resources"][queue];
        assert!(
            queue_resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"].is_object(),
            "{queue} has a dead-letter queue"
        );
    }
    let expected: BTreeSet<String> = ["heartbeats/+", "log-messages/+", "measurements/+"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(topics, expected);
}
