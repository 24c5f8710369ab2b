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

/// Where function binaries live: every function's but one here, and `credentials`,
/// the only one linking aws-sdk-iot, in the crate that keeps it from the others.
const BINARY_DIRECTORIES: [&str; 2] = ["src/bin", "../iot/src/bin"];

#[test]
fn every_deployed_function_has_a_binary() {
    let template = template();
    let functions = resources(&template, "AWS::Serverless::Function");
    assert!(!functions.is_empty());
    for (name, function) in functions {
        let file = format!("{}.rs", binary_of(function));
        let found = BINARY_DIRECTORIES.iter().any(|directory| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(directory)
                .join(&file)
                .exists()
        });
        assert!(
            found,
            "{name} deploys {file}, which is in none of {BINARY_DIRECTORIES:?}"
        );
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

/// The `Fn::Sub` string of a policy resource, with its `${!...}` escapes read as IoT
/// Core will see them.
fn substituted(resource: &Value) -> String {
    resource["Fn::Sub"]
        .as_str()
        .expect("a policy resource written with Fn::Sub")
        .replace("${!", "${")
}

/// The resources of a policy statement, one or a list.
fn statement_resources(statement: &Value) -> Vec<String> {
    match &statement["Resource"] {
        Value::Array(resources) => resources.iter().map(substituted).collect(),
        resource => vec![substituted(resource)],
    }
}

#[test]
fn the_sensor_policy_lets_a_thing_use_only_its_own_topics() {
    const THING: &str = "${iot:Connection.Thing.ThingName}";
    let template = template();
    let policies = resources(&template, "AWS::IoT::Policy");
    assert_eq!(policies.len(), 1, "one IoT policy, for sensors");
    let (name, policy) = policies[0];
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("a list of statements");
    let mut granted: BTreeSet<(String, String)> = BTreeSet::new();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow");
        let action = statement["Action"]
            .as_str()
            .expect("one action a statement");
        for resource in statement_resources(statement) {
            assert!(
                resource.ends_with(&format!("/{THING}")),
                "{name}: {action} on {resource} is not scoped to the connected thing"
            );
            let kind_and_path = resource.split_once(":${AWS::AccountId}:").unwrap().1;
            granted.insert((action.to_owned(), kind_and_path.to_owned()));
        }
        if action == "iot:Connect" {
            assert_eq!(
                statement["Condition"],
                serde_json::json!({"Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
                "a certificate connects only as the thing it is attached to"
            );
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("iot:Connect", "client"),
        ("iot:Publish", "topic/heartbeats"),
        ("iot:Publish", "topic/measurements"),
        ("iot:Publish", "topic/log-messages"),
        ("iot:Subscribe", "topicfilter/configurations"),
        ("iot:Receive", "topic/configurations"),
    ]
    .into_iter()
    .map(|(action, path)| (action.to_owned(), format!("{path}/{THING}")))
    .collect();
    assert_eq!(granted, expected);

    let credentials = &template["Resources"]["CredentialsFunction"]["Properties"];
    assert_eq!(
        credentials["Environment"]["Variables"]["IOT_POLICY_NAME"]["Ref"],
        name.as_str(),
        "the credentials function attaches this policy"
    );
}
