//! The IoT Core credentials provider against moto's server (`MOTO_URL`, started by
//! `./scripts/test`), checked through the same control-plane calls an operator would
//! make: things, their principals, certificates and the policy's targets.
//!
//! moto keeps one account for every test; each test uses fresh sensor identifiers and
//! a policy of its own, so only the test that compares the account's whole certificate
//! list has to run alone (see `ACCOUNT`).

use std::error::Error as _;
use std::sync::LazyLock;

use aws_sdk_iot::Client;
use aws_sdk_iot::config::{BehaviorVersion, Credentials as StaticCredentials, Region};
use aws_sdk_iot::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iot::types::CertificateStatus;
use sensorium_functions::cloud::https_client;
use sensorium_iot::{IotCredentials, retry_config};
use sensorium_shared::credentials::{Credentials, CredentialsError, CredentialsProvider};
use sensorium_shared::domain::Identifier;
use tokio::sync::RwLock;

/// Tests that make certificates hold it shared; the one that compares the account's
/// certificates before and after holds it alone, so no other test's certificate
/// appears in between.
static ACCOUNT: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

fn client() -> Client {
    let url = std::env::var("MOTO_URL")
        .expect("MOTO_URL names moto's server; ./scripts/test starts one and sets it");
    let config = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(StaticCredentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .endpoint_url(url)
        .http_client(https_client())
        .retry_config(retry_config())
        .build();
    Client::from_conf(config)
}

/// A policy of the test's own, shaped like the template's sensor policy.
async fn create_policy(client: &Client) -> String {
    let name = format!("sensors-{}", Identifier::new());
    let document = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "iot:Connect",
        "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;
    client
        .create_policy()
        .policy_name(&name)
        .policy_document(document)
        .send()
        .await
        .expect("moto creates the policy");
    name
}

/// Every item of a paginated list request, from all its pages.
macro_rules! list_all {
    ($request:expr) => {
        $request.into_paginator().items().send().try_collect().await
    };
}

/// What a call answered, or `None` when what it names does not exist (IoT Core's
/// `ResourceNotFoundException`); any other error fails the test, saying what failed.
fn unless_not_found<T, E, R>(answer: Result<T, SdkError<E, R>>, doing: &str) -> Option<T>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match answer {
        Ok(value) => Some(value),
        Err(error) if error.code() == Some("ResourceNotFoundException") => None,
        Err(error) => panic!("{doing}: {error:?}"),
    }
}

async fn things_named(client: &Client, name: &str) -> usize {
    let things = list_all!(client.list_things()).unwrap();
    things
        .iter()
        .filter(|thing| thing.thing_name() == Some(name))
        .count()
}

/// The principal ARNs attached to the thing, or `None` when there is no such thing.
async fn thing_principals(client: &Client, thing: &str) -> Option<Vec<String>> {
    let principals = list_all!(client.list_thing_principals().thing_name(thing));
    unless_not_found(principals, "listing the thing's principals")
}

async fn policy_targets(client: &Client, policy: &str) -> Vec<String> {
    list_all!(client.list_targets_for_policy().policy_name(policy)).unwrap()
}

async fn certificate_policies(client: &Client, certificate_arn: &str) -> Vec<String> {
    list_all!(client.list_attached_policies().target(certificate_arn))
        .unwrap()
        .iter()
        .filter_map(|policy| policy.policy_name().map(str::to_owned))
        .collect()
}

/// The status of the certificate, or `None` when it does not exist.
async fn certificate_status(client: &Client, certificate_id: &str) -> Option<CertificateStatus> {
    let answer = client
        .describe_certificate()
        .certificate_id(certificate_id)
        .send()
        .await;
    let answer = unless_not_found(answer, "describing the certificate")?;
    let status = answer
        .certificate_description()
        .and_then(|description| description.status())
        .cloned()
        .expect("a described certificate has a status");
    Some(status)
}

async fn certificate_ids(client: &Client) -> Vec<String> {
    let mut ids: Vec<String> = list_all!(client.list_certificates())
        .unwrap()
        .iter()
        .filter_map(|certificate| certificate.certificate_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// The certificate identifier of issued credentials, after checking their shape.
fn certificate_of(credentials: &Credentials, sensor: Identifier) -> String {
    let Credentials::Certificate {
        client_identifier,
        certificate_identifier,
        certificate_pem,
        private_key_pem,
    } = credentials
    else {
        panic!("IoT Core issues certificates, not {credentials:?}");
    };
    assert_eq!(client_identifier, &sensor.to_string());
    assert!(certificate_pem.contains("-----BEGIN CERTIFICATE-----"));
    assert!(private_key_pem.contains("PRIVATE KEY-----"));
    certificate_identifier.clone()
}

/// Asserts that the sensor's thing exists once and holds exactly one certificate, the
/// active `certificate_id` attached to `policy` (and to nothing else of it); returns
/// its ARN.
async fn assert_sole_active_certificate(
    client: &Client,
    sensor: Identifier,
    policy: &str,
    certificate_id: &str,
) -> String {
    let thing = sensor.to_string();
    assert_eq!(things_named(client, &thing).await, 1);
    let principals = thing_principals(client, &thing).await.unwrap();
    assert_eq!(principals.len(), 1, "{principals:?}");
    let arn = principals[0].clone();
    assert!(
        arn.ends_with(&format!(":cert/{certificate_id}")),
        "{arn} is not certificate {certificate_id}"
    );
    assert_eq!(
        certificate_status(client, certificate_id).await,
        Some(CertificateStatus::Active)
    );
    assert_eq!(policy_targets(client, policy).await, vec![arn.clone()]);
    assert_eq!(certificate_policies(client, &arn).await, vec![policy]);
    arn
}

#[tokio::test]
async fn issuing_makes_a_thing_with_one_active_certificate_attached_to_the_policy() {
    let _account = ACCOUNT.read().await;
    let client = client();
    let policy = create_policy(&client).await;
    let provider = IotCredentials::new(client.clone(), &policy);
    let sensor = Identifier::new();

    let credentials = provider.issue(sensor).await.unwrap();

    let certificate_id = certificate_of(&credentials, sensor);
    assert_sole_active_certificate(&client, sensor, &policy, &certificate_id).await;
}

#[tokio::test]
async fn issuing_again_replaces_the_certificate_and_deletes_the_old_one() {
    let _account = ACCOUNT.read().await;
    let client = client();
    let policy = create_policy(&client).await;
    let provider = IotCredentials::new(client.clone(), &policy);
    let sensor = Identifier::new();
    let first = certificate_of(&provider.issue(sensor).await.unwrap(), sensor);

    let second = certificate_of(&provider.issue(sensor).await.unwrap(), sensor);

    assert_ne!(first, second);
    assert_sole_active_certificate(&client, sensor, &policy, &second).await;
    assert_eq!(certificate_status(&client, &first).await, None);
    assert!(!certificate_ids(&client).await.contains(&first));
}

#[tokio::test]
async fn issuing_for_one_sensor_leaves_the_others_certificates_alone() {
    let _account = ACCOUNT.read().await;
    let client = client();
    let policy = create_policy(&client).await;
    let provider = IotCredentials::new(client.clone(), &policy);
    let (sensor, other) = (Identifier::new(), Identifier::new());
    let others = certificate_of(&provider.issue(other).await.unwrap(), other);

    provider.issue(sensor).await.unwrap();
    provider.revoke(sensor).await.unwrap();

    assert_eq!(
        certificate_status(&client, &others).await,
        Some(CertificateStatus::Active)
    );
    assert_eq!(
        thing_principals(&client, &other.to_string())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn revoking_deletes_the_certificate_and_the_thing() {
    let _account = ACCOUNT.read().await;
    let client = client();
    let policy = create_policy(&client).await;
    let provider = IotCredentials::new(client.clone(), &policy);
    let sensor = Identifier::new();
    let certificate_id = certificate_of(&provider.issue(sensor).await.unwrap(), sensor);

    provider.revoke(sensor).await.unwrap();

    assert_eq!(things_named(&client, &sensor.to_string()).await, 0);
    assert_eq!(thing_principals(&client, &sensor.to_string()).await, None);
    assert_eq!(certificate_status(&client, &certificate_id).await, None);
    assert!(policy_targets(&client, &policy).await.is_empty());
}

#[tokio::test]
async fn revoking_a_sensor_that_has_no_credentials_is_not_an_error() {
    let _account = ACCOUNT.read().await;
    let client = client();
    let policy = create_policy(&client).await;
    let provider = IotCredentials::new(client.clone(), &policy);
    let sensor = Identifier::new();

    provider.revoke(sensor).await.unwrap();
    // And again after an issue and a revoke: nothing left to revoke.
    provider.issue(sensor).await.unwrap();
    provider.revoke(sensor).await.unwrap();
    provider.revoke(sensor).await.unwrap();

    assert_eq!(things_named(&client, &sensor.to_string()).await, 0);
}

#[tokio::test]
async fn an_issue_whose_policy_cannot_be_attached_fails_and_leaves_no_certificate() {
    let _account = ACCOUNT.write().await;
    let client = client();
    let missing_policy = format!("missing-{}", Identifier::new());
    let provider = IotCredentials::new(client.clone(), &missing_policy);
    let sensor = Identifier::new();
    let before = certificate_ids(&client).await;

    let error = provider.issue(sensor).await.unwrap_err();

    assert!(matches!(error, CredentialsError::Provider(_)), "{error:?}");
    let cause = error.source().unwrap().to_string();
    assert!(
        cause.starts_with("attaching the policy to the certificate: "),
        "{cause}"
    );
    assert_eq!(certificate_ids(&client).await, before);
    assert_eq!(
        thing_principals(&client, &sensor.to_string()).await,
        Some(Vec::new())
    );
}

#[tokio::test]
async fn a_failed_issue_removes_the_earlier_certificate_too() {
    // The contract says earlier credentials stop working as soon as new ones are asked
    // for; a failure after that leaves the sensor with none rather than the old one.
    let _account = ACCOUNT.read().await;
    let client = client();
    let policy = create_policy(&client).await;
    let sensor = Identifier::new();
    let first = certificate_of(
        &IotCredentials::new(client.clone(), &policy)
            .issue(sensor)
            .await
            .unwrap(),
        sensor,
    );
    let broken = IotCredentials::new(client.clone(), format!("missing-{}", Identifier::new()));

    broken.issue(sensor).await.unwrap_err();

    assert_eq!(certificate_status(&client, &first).await, None);
    assert_eq!(
        thing_principals(&client, &sensor.to_string()).await,
        Some(Vec::new())
    );
    assert!(policy_targets(&client, &policy).await.is_empty());
}
