//! `infra/template.json` and the code agree, and the template is one that runs in
//! production: the HTTP API declares exactly the route table the harness serves (and a
//! `$default` route for the rest), every function is built by `sam build` from a binary
//! that exists, the topic rules forward the bridge envelope of every sensor topic to a
//! queue whose function reports partial batch failures, the functions reach PostgreSQL
//! through an RDS Proxy with the credentials in Secrets Manager and AWS through VPC
//! endpoints, their connections stay within a budget, and every failure has an alarm.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

fn template_text() -> String {
    std::fs::read_to_string(infra().join("template.json")).expect("infra/template.json exists")
}

fn template() -> Value {
    serde_json::from_str(&template_text()).expect("infra/template.json is JSON")
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

/// The SAM functions of `template`.
fn functions(template: &Value) -> Vec<(&String, &Value)> {
    resources(template, "AWS::Serverless::Function")
}

/// The binary a function resource deploys: what `sam build` gives cargo-lambda.
fn binary_of(function: &Value) -> String {
    function["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .expect("Metadata.BuildProperties.Binary")
        .to_owned()
}

/// The logical id of the function that deploys `binary`.
fn function_named<'a>(template: &'a Value, binary: &str) -> (&'a String, &'a Value) {
    functions(template)
        .into_iter()
        .find(|(_, function)| binary_of(function) == binary)
        .unwrap_or_else(|| panic!("a function deploys {binary}"))
}

/// A function's environment variable, its own or the one of `Globals`.
fn environment<'a>(template: &'a Value, function: &'a Value, name: &str) -> &'a Value {
    let own = &function["Properties"]["Environment"]["Variables"][name];
    if own.is_null() {
        &template["Globals"]["Function"]["Environment"]["Variables"][name]
    } else {
        own
    }
}

/// Whether a function may read the database secret (and so connects to PostgreSQL).
fn uses_database(function: &Value) -> bool {
    function["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|policy| {
            policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
                == json!({"Ref": "DatabaseSecretArn"})
        })
}

fn reserved_concurrency(name: &str, function: &Value) -> u64 {
    function["Properties"]["ReservedConcurrentExecutions"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} has ReservedConcurrentExecutions"))
}

/// The events of a function of the given type.
fn events<'a>(function: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    function["Properties"]["Events"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, event)| event["Type"] == kind)
        .collect()
}

/// The alarms on `metric` whose dimensions include `dimension`.
fn alarms_on<'a>(template: &'a Value, metric: &str, dimension: &Value) -> Vec<&'a Value> {
    resources(template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, alarm)| alarm)
        .filter(|alarm| {
            alarm["Properties"]["MetricName"] == metric
                && alarm["Properties"]["Dimensions"]
                    .as_array()
                    .is_some_and(|dimensions| dimensions.contains(dimension))
        })
        .collect()
}

#[test]
fn the_http_api_declares_exactly_the_route_table() {
    let template = template();
    let mut declared = BTreeSet::new();
    for (_, function) in functions(&template) {
        let binary = binary_of(function);
        for (_, event) in events(function, "HttpApi") {
            let method = event["Properties"]["Method"].as_str().unwrap().to_owned();
            let path = event["Properties"]["Path"].as_str().unwrap().to_owned();
            if path != "$default" {
                declared.insert((method, path, binary.clone()));
            }
        }
    }
    let api = sensorium_functions::routes::ROUTES
        .iter()
        .map(|(method, path, function)| (*method, *path, function.name()));
    let dashboard = sensorium_functions::routes::dashboard::DASHBOARD_ROUTES
        .iter()
        .map(|(method, path)| (*method, *path, "dashboard"));
    let served: BTreeSet<_> = api
        .chain(dashboard)
        .map(|(method, path, function)| (method.to_owned(), path.to_owned(), function.to_owned()))
        .collect();
    assert_eq!(declared, served);
}

#[test]
fn the_default_route_goes_to_the_fallback_function() {
    let template = template();
    let defaults: Vec<_> = functions(&template)
        .into_iter()
        .flat_map(|(_, function)| {
            events(function, "HttpApi")
                .into_iter()
                .filter(|(_, event)| event["Properties"]["Path"] == "$default")
                .map(move |(_, event)| (binary_of(function), event))
        })
        .collect();
    assert_eq!(defaults.len(), 1, "one $default route");
    let (binary, event) = &defaults[0];
    assert_eq!(binary, "fallback");
    assert_eq!(event["Properties"]["Method"], "ANY");
    assert_eq!(event["Properties"]["ApiId"], json!({"Ref": "HttpApi"}));
}

/// Where function binaries live: every function's but one here, and `credentials`,
/// the only one linking aws-sdk-iot, in the crate that keeps it from the others.
const BINARY_DIRECTORIES: [&str; 2] = ["src/bin", "../iot/src/bin"];

#[test]
fn every_deployed_function_has_a_binary() {
    let template = template();
    let functions = functions(&template);
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
fn every_function_is_built_by_cargo_lambda_from_the_workspace() {
    let template = template();
    let mut binaries = BTreeSet::new();
    for (name, function) in functions(&template) {
        assert_eq!(
            function["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{name} is built by sam build with cargo-lambda"
        );
        let code_uri = function["Properties"]["CodeUri"].as_str().unwrap();
        let manifest = infra().join(code_uri).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|_| panic!("{name}: CodeUri {code_uri} holds a Cargo.toml"));
        assert!(
            manifest.contains("[workspace]"),
            "{name}: CodeUri {code_uri} is the workspace root"
        );
        assert!(
            binaries.insert(binary_of(function)),
            "{name}: one binary, one function"
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
        let consumers: Vec<_> = functions(&template)
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

#[test]
fn every_topic_rule_has_an_error_action() {
    let template = template();
    let rules = resources(&template, "AWS::IoT::TopicRule");
    assert!(!rules.is_empty());
    for (name, rule) in rules {
        let error_action = &rule["Properties"]["TopicRulePayload"]["ErrorAction"];
        let logs = &error_action["CloudwatchLogs"];
        let group = logs["LogGroupName"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} logs its errors to a log group: {error_action}"));
        assert_eq!(template["Resources"][group]["Type"], "AWS::Logs::LogGroup");
        let role = logs["RoleArn"]["Fn::GetAtt"][0].as_str().unwrap();
        let statements = template["Resources"][role]["Properties"]["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|policy| policy["PolicyDocument"]["Statement"].as_array().unwrap());
        assert!(
            statements.into_iter().any(|statement| {
                statement["Resource"] == json!({"Fn::GetAtt": [group, "Arn"]})
                    && statement["Action"]
                        .as_array()
                        .is_some_and(|actions| actions.contains(&json!("logs:PutLogEvents")))
            }),
            "{role} may write to {group}"
        );
    }
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

#[test]
fn the_functions_reach_aws_through_vpc_endpoints() {
    let template = template();
    assert_eq!(template["Parameters"]["VpcId"]["Type"], "AWS::EC2::VPC::Id");
    assert_eq!(
        template["Parameters"]["CreateVpcEndpoints"]["Default"],
        "true"
    );
    let vpc = &template["Globals"]["Function"]["VpcConfig"];
    assert_eq!(vpc["SubnetIds"], json!({"Ref": "SubnetIds"}));
    assert_eq!(
        vpc["SecurityGroupIds"],
        json!([{"Ref": "FunctionSecurityGroup"}])
    );

    let group = &template["Resources"]["VpcEndpointSecurityGroup"];
    assert_eq!(group["Condition"], "CreateVpcEndpoints");
    assert_eq!(
        group["Properties"]["SecurityGroupIngress"],
        json!([{
            "Description": "HTTPS from the functions",
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "SourceSecurityGroupId": {"Ref": "FunctionSecurityGroup"}
        }])
    );

    let mut services = BTreeMap::new();
    for (name, endpoint) in resources(&template, "AWS::EC2::VPCEndpoint") {
        let properties = &endpoint["Properties"];
        assert_eq!(endpoint["Condition"], "CreateVpcEndpoints", "{name}");
        assert_eq!(properties["VpcEndpointType"], "Interface", "{name}");
        assert_eq!(properties["VpcId"], json!({"Ref": "VpcId"}), "{name}");
        assert_eq!(
            properties["SubnetIds"],
            json!({"Ref": "SubnetIds"}),
            "{name}"
        );
        assert_eq!(
            properties["SecurityGroupIds"],
            json!([{"Ref": "VpcEndpointSecurityGroup"}]),
            "{name}"
        );
        let service = properties["ServiceName"]["Fn::Sub"].as_str().unwrap();
        let service = service
            .strip_prefix("com.amazonaws.${AWS::Region}.")
            .unwrap_or_else(|| panic!("{name}: {service}"));
        services.insert(
            service.to_owned(),
            (name.as_str(), properties["PrivateDnsEnabled"].clone()),
        );
    }
    let dns: BTreeMap<_, _> = services
        .iter()
        .map(|(service, (_, dns))| (service.as_str(), dns.clone()))
        .collect();
    assert_eq!(
        dns,
        BTreeMap::from([
            ("iot.api", json!(true)),
            // IoT Core offers no private DNS for its data plane: a hosted zone does it.
            ("iot.data", json!(false)),
            ("secretsmanager", json!(true)),
            ("sqs", json!(true)),
        ])
    );

    // The account's data endpoint, as given, resolves inside the VPC to the endpoint.
    let host = json!({"Fn::Join": ["", {"Fn::Split": ["https://", {"Ref": "IotDataEndpoint"}]}]});
    let data_endpoint = services["iot.data"].0;
    let zones = resources(&template, "AWS::Route53::HostedZone");
    assert_eq!(zones.len(), 1);
    let (zone_name, zone) = zones[0];
    assert_eq!(zone["Condition"], "CreateVpcEndpoints");
    assert_eq!(zone["Properties"]["Name"], host);
    assert_eq!(
        zone["Properties"]["VPCs"][0]["VPCId"],
        json!({"Ref": "VpcId"})
    );
    let records = resources(&template, "AWS::Route53::RecordSet");
    assert_eq!(records.len(), 1);
    let record = &records[0].1["Properties"];
    assert_eq!(record["HostedZoneId"], json!({"Ref": zone_name}));
    assert_eq!(record["Name"], host);
    assert_eq!(record["Type"], "A");
    assert!(
        record["AliasTarget"].to_string().contains(&format!(
            "{{\"Fn::GetAtt\":[\"{data_endpoint}\",\"DnsEntries\"]}}"
        )),
        "the record aliases the data endpoint's DNS name"
    );
}

#[test]
fn the_iot_data_endpoint_parameter_has_a_pattern() {
    // Accepted, for example: a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com (what
    // `aws iot describe-endpoint --endpoint-type iot:Data-ATS` prints) and the same with
    // https:// before it; refused: other schemes, paths, the legacy non-ATS endpoint.
    let template = template();
    let parameter = &template["Parameters"]["IotDataEndpoint"];
    let pattern = parameter["AllowedPattern"]
        .as_str()
        .expect("an AllowedPattern");
    assert!(pattern.starts_with("^(https://)?"), "{pattern}");
    assert!(pattern.ends_with("\\.amazonaws\\.com$"), "{pattern}");
    assert!(pattern.contains("-ats\\.iot\\."), "{pattern}");
    let publisher = function_named(&template, "publish-configurations").1;
    assert_eq!(
        environment(&template, publisher, "IOT_DATA_ENDPOINT"),
        &json!({"Ref": "IotDataEndpoint"})
    );
}

#[test]
fn the_database_is_reached_through_rds_proxy_with_the_secret() {
    let template = template();
    assert!(
        !template_text().contains("DATABASE_URL"),
        "no connection URL in the cloud"
    );
    assert!(template["Parameters"]["DatabaseUrl"].is_null());

    let proxies = resources(&template, "AWS::RDS::DBProxy");
    assert_eq!(proxies.len(), 1);
    let (proxy_name, proxy) = proxies[0];
    let proxy = &proxy["Properties"];
    assert_eq!(proxy["EngineFamily"], "POSTGRESQL");
    assert_eq!(proxy["RequireTLS"], true);
    assert_eq!(proxy["Auth"][0]["AuthScheme"], "SECRETS");
    assert_eq!(proxy["Auth"][0]["IAMAuth"], "DISABLED");
    assert_eq!(
        proxy["Auth"][0]["SecretArn"],
        json!({"Ref": "DatabaseSecretArn"})
    );
    let role = proxy["RoleArn"]["Fn::GetAtt"][0].as_str().unwrap();
    assert_eq!(
        template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0],
        json!({
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": "DatabaseSecretArn"}
        })
    );

    let groups = resources(&template, "AWS::RDS::DBProxyTargetGroup");
    assert_eq!(groups.len(), 1);
    let group = &groups[0].1["Properties"];
    assert_eq!(group["DBProxyName"], json!({"Ref": proxy_name}));
    assert_eq!(group["TargetGroupName"], "default");
    assert_eq!(
        group["DBInstanceIdentifiers"],
        json!([{"Ref": "DatabaseInstanceIdentifier"}])
    );
    assert!(!group["ConnectionPoolConfigurationInfo"]["MaxConnectionsPercent"].is_null());

    let mut without_database = BTreeSet::new();
    for (name, function) in functions(&template) {
        assert_eq!(
            environment(&template, function, "DATABASE_SECRET_ARN"),
            &json!({"Ref": "DatabaseSecretArn"}),
            "{name}"
        );
        assert_eq!(
            environment(&template, function, "DATABASE_HOST"),
            &json!({"Fn::GetAtt": [proxy_name, "Endpoint"]}),
            "{name}"
        );
        assert_eq!(
            environment(&template, function, "DATABASE_SSL_MODE"),
            "verify-full",
            "{name}"
        );
        if !uses_database(function) {
            without_database.insert(binary_of(function));
        }
    }
    assert_eq!(
        without_database,
        BTreeSet::from(["dashboard".to_owned(), "fallback".to_owned()]),
        "every function but the fallback and the dashboard may read the database secret"
    );
}

#[test]
fn database_connections_stay_within_the_budget() {
    let template = template();
    let budget = template["Parameters"]["DatabaseConnectionBudget"]["Default"]
        .as_u64()
        .expect("a DatabaseConnectionBudget parameter with a default");
    let mut connections = 0;
    for (name, function) in functions(&template) {
        let reserved = reserved_concurrency(name, function);
        assert!(reserved >= 1, "{name}");
        if uses_database(function) {
            let pool: u64 = environment(&template, function, "DATABASE_MAX_CONNECTIONS")
                .as_str()
                .unwrap_or_else(|| panic!("{name} sets DATABASE_MAX_CONNECTIONS"))
                .parse()
                .unwrap();
            connections += reserved * pool;
        }
    }
    assert!(
        connections <= budget,
        "the functions may hold {connections} connections, over the budget of {budget}"
    );
}

#[test]
fn every_sqs_event_source_is_bounded_by_reserved_concurrency() {
    let template = template();
    let mut sources = 0;
    for (name, function) in functions(&template) {
        let reserved = reserved_concurrency(name, function);
        for (event_name, event) in events(function, "SQS") {
            sources += 1;
            let maximum = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}.{event_name} has a MaximumConcurrency"));
            assert!(
                maximum >= 2,
                "{name}.{event_name}: 2 is the least SQS allows"
            );
            let queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap();
            let fifo = template["Resources"][queue]["Properties"]["FifoQueue"] == true;
            // A FIFO queue with one message group has one batch in flight at a time,
            // so MaximumConcurrency 2 there never asks for a second instance.
            assert!(
                maximum <= reserved || (fifo && reserved == 1),
                "{name}.{event_name}: MaximumConcurrency {maximum} over the reserved {reserved}"
            );
        }
    }
    assert_eq!(sources, 4, "three topic queues and the publish queue");
}

#[test]
fn every_function_logs_to_a_group_with_retention() {
    let template = template();
    let mut all = functions(&template);
    all.extend(resources(&template, "AWS::Lambda::Function"));
    let mut groups = BTreeSet::new();
    for (name, function) in all {
        let group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} names its log group"));
        let resource = &template["Resources"][group];
        assert_eq!(resource["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(
            resource["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{name}"
        );
        assert!(groups.insert(group), "{name}: a log group of its own");
    }
    assert_eq!(template["Parameters"]["LogRetentionDays"]["Default"], 30);
}

#[test]
fn every_dead_letter_queue_and_function_has_alarms() {
    let template = template();
    let topic =
        json!({"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]});
    for (name, alarm) in resources(&template, "AWS::CloudWatch::Alarm") {
        assert_eq!(
            alarm["Properties"]["AlarmActions"],
            json!([topic]),
            "{name}"
        );
        assert_eq!(alarm["Properties"]["OKActions"], json!([topic]), "{name}");
    }
    assert_eq!(
        template["Resources"]["AlarmTopic"]["Condition"],
        "CreateAlarmTopic"
    );

    let queues = resources(&template, "AWS::SQS::Queue");
    let dead_letter_queues: BTreeSet<&str> = queues
        .iter()
        .filter_map(|(_, queue)| {
            queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0].as_str()
        })
        .collect();
    assert_eq!(dead_letter_queues.len(), 4);
    for (name, _) in &queues {
        let dimension = json!({"Name": "QueueName", "Value": {"Fn::GetAtt": [name, "QueueName"]}});
        let metric = if dead_letter_queues.contains(name.as_str()) {
            "ApproximateNumberOfMessagesVisible"
        } else {
            "ApproximateAgeOfOldestMessage"
        };
        let alarms = alarms_on(&template, metric, &dimension);
        assert_eq!(alarms.len(), 1, "{name} has an alarm on {metric}");
    }

    for (name, _) in functions(&template) {
        let dimension = json!({"Name": "FunctionName", "Value": {"Ref": name}});
        for metric in ["Errors", "Throttles"] {
            let alarms = alarms_on(&template, metric, &dimension);
            assert_eq!(alarms.len(), 1, "{name} has an alarm on {metric}");
            assert_eq!(alarms[0]["Properties"]["Namespace"], "AWS/Lambda");
        }
    }

    let environment = json!({"Name": "Environment", "Value": {"Ref": "Environment"}});
    let alarms = alarms_on(&template, "OldestUnpublishedConfigurationAge", &environment);
    assert_eq!(alarms.len(), 1);
    let alarm = &alarms[0]["Properties"];
    assert_eq!(alarm["Namespace"], "Sensorium");
    assert_eq!(alarm["Threshold"], 300);
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
}

#[test]
fn the_publisher_is_fed_by_a_fifo_queue() {
    let template = template();
    let queue = &template["Resources"]["PublishQueue"]["Properties"];
    assert_eq!(queue["FifoQueue"], true);
    assert_eq!(queue["ContentBasedDeduplication"], true);
    let dead_letter_queue = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        .as_str()
        .expect("a dead-letter queue");
    assert_eq!(
        template["Resources"][dead_letter_queue]["Properties"]["FifoQueue"],
        true
    );

    let schedules: Vec<_> = resources(&template, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, rule)| rule["Properties"]["ScheduleExpression"] == "rate(1 minute)")
        .collect();
    assert_eq!(schedules.len(), 1, "one schedule of sweeps");
    let (schedule_name, schedule) = schedules[0];
    assert_eq!(
        schedule["Properties"]["Targets"],
        json!([{
            "Id": "PublishQueue",
            "Arn": {"Fn::GetAtt": ["PublishQueue", "Arn"]},
            "SqsParameters": {"MessageGroupId": "outbox"}
        }])
    );
    let policies: Vec<_> = resources(&template, "AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, policy)| policy["Properties"]["Queues"] == json!([{"Ref": "PublishQueue"}]))
        .collect();
    assert_eq!(policies.len(), 1);
    assert_eq!(
        policies[0].1["Properties"]["PolicyDocument"]["Statement"],
        json!([{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["PublishQueue", "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [schedule_name, "Arn"]}}}
        }])
    );

    let (name, publisher) = function_named(&template, "publish-configurations");
    let all_events = publisher["Properties"]["Events"].as_object().unwrap();
    assert_eq!(all_events.len(), 1, "{name} runs only from its queue");
    let (_, event) = all_events.iter().next().unwrap();
    assert_eq!(event["Type"], "SQS");
    assert_eq!(
        event["Properties"]["Queue"],
        json!({"Fn::GetAtt": ["PublishQueue", "Arn"]})
    );
    assert_eq!(event["Properties"]["BatchSize"], 10);
    assert_eq!(
        event["Properties"]["ScalingConfig"]["MaximumConcurrency"],
        2
    );
    assert_eq!(reserved_concurrency(name, publisher), 1);
    assert!(
        functions(&template)
            .iter()
            .all(|(_, function)| binary_of(function) == "retain-logs"
                || events(function, "Schedule").is_empty()),
        "the sweeps have no schedule of their own"
    );

    let (_, configurations) = function_named(&template, "configurations");
    assert_eq!(
        environment(&template, configurations, "PUBLISH_QUEUE_URL"),
        &json!({"Ref": "PublishQueue"})
    );
    assert!(
        configurations["Properties"]["Policies"]
            .as_array()
            .unwrap()
            .contains(&json!({"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["PublishQueue", "QueueName"]}}})),
        "the configurations function may send to the publish queue"
    );
}

#[test]
fn migrations_run_from_a_custom_resource_on_every_deploy() {
    let template = template();
    let (migrate_name, migrate) = function_named(&template, "migrate");
    assert_eq!(migrate["Properties"]["Timeout"], 300);
    assert!(uses_database(migrate));
    assert!(
        migrate["Properties"]["VpcConfig"].is_null(),
        "{migrate_name} runs in the VPC of Globals"
    );

    let custom: Vec<_> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str().unwrap().starts_with("Custom::"))
        .collect();
    assert_eq!(custom.len(), 1, "one custom resource, the migrations");
    let (custom_name, custom) = custom[0];
    let properties = &custom["Properties"];
    assert_eq!(properties["CommitSha"], json!({"Ref": "CommitSha"}));
    assert_eq!(
        properties["MigrateFunction"],
        json!({"Ref": format!("{migrate_name}.Version")}),
        "a new migrate binary runs too"
    );
    let depends_on = custom["DependsOn"].as_array().unwrap();
    assert!(depends_on.contains(&json!("DatabaseProxyTargetGroup")));

    let runner_name = properties["ServiceToken"]["Fn::GetAtt"][0]
        .as_str()
        .unwrap();
    let runner = &template["Resources"][runner_name];
    assert_eq!(runner["Type"], "AWS::Lambda::Function");
    let runner = &runner["Properties"];
    assert_eq!(runner["Runtime"], "python3.12");
    assert!(
        runner["VpcConfig"].is_null(),
        "{runner_name} reaches CloudFormation"
    );
    let code = runner["Code"]["ZipFile"].as_str().expect("inline code");
    for needle in [
        "import cfnresponse",
        "RequestResponse",
        "FunctionError",
        "cfnresponse.FAILED",
        "cfnresponse.SUCCESS",
        "\"Delete\"",
    ] {
        assert!(code.contains(needle), "{runner_name} has {needle}");
    }
    let runner_timeout = runner["Timeout"].as_u64().unwrap();
    assert!(
        runner_timeout > 300,
        "{runner_name} outlives {migrate_name}"
    );

    for (name, function) in functions(&template) {
        if uses_database(function) && name != migrate_name {
            assert!(
                function["DependsOn"]
                    .as_array()
                    .is_some_and(|names| names.contains(&json!(custom_name))),
                "{name} is updated after the migrations"
            );
        }
    }
}

#[test]
fn the_outputs_name_the_queues_and_endpoints() {
    let template = template();
    let outputs = template["Outputs"].as_object().unwrap();
    for name in [
        "ApiUrl",
        "MeasurementsQueueUrl",
        "HeartbeatsQueueUrl",
        "LogMessagesQueueUrl",
        "MeasurementsDeadLetterQueueUrl",
        "HeartbeatsDeadLetterQueueUrl",
        "LogMessagesDeadLetterQueueUrl",
        "MeasurementsDeadLetterQueueArn",
        "HeartbeatsDeadLetterQueueArn",
        "LogMessagesDeadLetterQueueArn",
        "PublishQueueUrl",
        "PublishDeadLetterQueueUrl",
        "IotDataEndpoint",
        "DatabaseProxyEndpoint",
        "AlarmTopicArn",
    ] {
        assert!(outputs.contains_key(name), "output {name}");
    }
    assert_eq!(
        outputs["DatabaseProxyEndpoint"]["Value"],
        json!({"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]})
    );
    assert_eq!(
        outputs["IotDataEndpoint"]["Value"],
        json!({"Ref": "IotDataEndpoint"})
    );
}

#[test]
fn samconfig_builds_and_deploys_the_template() {
    let text = std::fs::read_to_string(infra().join("samconfig.toml"))
        .expect("infra/samconfig.toml exists");
    let template = template();
    for needle in [
        "[default.build.parameters]",
        "beta_features = true",
        "template_file = \"template.json\"",
        "[default.deploy.parameters]",
        "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND",
        "resolve_s3 = true",
        "[staging.deploy.parameters]",
    ] {
        assert!(text.contains(needle), "samconfig.toml has {needle}");
    }
    // Every parameter without a default has an example value in each environment.
    let required: Vec<&String> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, parameter)| parameter["Default"].is_null())
        .map(|(name, _)| name)
        .collect();
    let overrides: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("parameter_overrides"))
        .collect();
    assert_eq!(overrides.len(), 2, "default and staging");
    for line in overrides {
        for name in &required {
            assert!(line.contains(&format!("{name}=")), "{line} sets {name}");
        }
    }
}

/// The role a binary's `main` connects to the database as, read from its source:
/// `None` for one without a database.
fn role_of_binary(binary: &str) -> Option<sensorium_shared::database::Role> {
    use sensorium_shared::database::Role;
    let root = infra().join("..");
    let source = ["functions", "iot"]
        .iter()
        .map(|crate_directory| {
            root.join(crate_directory)
                .join(format!("src/bin/{binary}.rs"))
        })
        .find_map(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_else(|| panic!("no source for the binary {binary}"));
    if source.contains("serve_fallback") || source.contains("serve_dashboard") {
        None
    } else if source.contains("serve_routes") {
        Some(Role::Route)
    } else if source.contains("serve_topic") {
        Some(Role::Topic)
    } else if source.contains("Role::Publisher") {
        Some(Role::Publisher)
    } else if source.contains("Role::Maintenance") {
        Some(Role::Maintenance)
    } else {
        panic!("{binary}: no known role in its main")
    }
}

#[test]
fn every_statement_ends_before_its_function_times_out() {
    let template = template();
    let default = template["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    for (name, function) in functions(&template) {
        let binary = binary_of(function);
        let Some(role) = role_of_binary(&binary) else {
            continue;
        };
        let timeout = function["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or(default);
        let statement = role.statement_timeout().as_secs();
        assert!(
            statement < timeout,
            "{name}: statements may run {statement} s ({role:?}), the function {timeout} s"
        );
        // Room for the rest of the invocation after the slowest statement.
        assert!(
            timeout - statement >= 2,
            "{name}: {statement} s statements leave no room in {timeout} s"
        );
    }
}
