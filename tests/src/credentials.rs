//! Sensor credentials on a Mosquitto with its dynamic-security plugin (Mosquitto ≥ 2.0):
//! the server, connected as a dynamic-security admin with the user of `MQTT_URL`, gives
//! each sensor a client (user name = client id = sensor identifier, a random password)
//! and a role of its own whose ACLs name that sensor's topics. The plugin's ACLs do not
//! substitute `%u` or `%c`, so one shared role cannot do it.
//!
//! Commands go to `$CONTROL/dynamic-security/v1` and the plugin answers each on
//! `$CONTROL/dynamic-security/v1/response`; every answer is checked, so a refused
//! command is an error, not a silent success.

use std::time::Duration;

use rand::RngCore;
use rumqttc::{AsyncClient, Event, Packet, QoS, SubscribeReasonCode};
use sensorium_shared::credentials::{
    Credentials, CredentialsError, CredentialsProvider, SensorTopics,
};
use sensorium_shared::domain::Identifier;
use sensorium_shared::publisher::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::mqtt::MqttOptions;

const COMMAND_TOPIC: &str = "$CONTROL/dynamic-security/v1";
const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";
/// How long one exchange with the plugin may take, connection included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Random bytes in a sensor's password: 256 bits, sent as 64 hex digits.
const PASSWORD_BYTES: usize = 32;

/// The plugin's answers to "delete" commands for something that is not there: revoking
/// what was never issued is not an error.
const CLIENT_NOT_FOUND: &str = "Client not found";
const ROLE_NOT_FOUND: &str = "Role not found";

/// Manages sensors' clients through the dynamic-security plugin, over a connection of
/// its own per request (credentials change rarely; nothing is left half-read).
pub struct MosquittoCredentials {
    options: MqttOptions,
}

#[derive(Debug, thiserror::Error)]
enum DynamicSecurityError {
    #[error(
        "the broker refused to subscribe to {RESPONSE_TOPIC}: is the user of MQTT_URL a dynamic-security admin?"
    )]
    NotAnAdmin,
    #[error("the broker refused the command {command}: {error}")]
    Refused { command: String, error: String },
    #[error("the broker did not answer the command {0}")]
    Unanswered(String),
    #[error("no answer from the dynamic-security plugin within {} s", COMMAND_TIMEOUT.as_secs())]
    TimedOut,
    #[error("MQTT: {0}")]
    Mqtt(String),
}

/// One command of a request; `correlationData` pairs it with its answer.
struct Command {
    body: Value,
    /// An error the plugin may answer with that still counts as done.
    tolerated: Option<&'static str>,
}

#[derive(Deserialize)]
struct Answers {
    responses: Vec<Answer>,
}

#[derive(Deserialize)]
struct Answer {
    command: String,
    error: Option<String>,
    #[serde(rename = "correlationData")]
    correlation_data: Option<String>,
}

impl MosquittoCredentials {
    /// `options` are the bridge's: this connects as `<client id>-credentials`, since a
    /// connection under the bridge's own id would take over its session.
    pub fn new(mut options: MqttOptions) -> Self {
        let inner = options.inner_mut();
        let client_id = format!("{}-credentials", inner.client_id());
        inner.set_client_id(client_id).set_clean_session(true);
        Self { options }
    }

    /// Sends `commands` in one message and checks every answer.
    async fn run(&self, commands: Vec<Command>) -> Result<(), DynamicSecurityError> {
        tokio::time::timeout(COMMAND_TIMEOUT, self.exchange(commands))
            .await
            .unwrap_or(Err(DynamicSecurityError::TimedOut))
    }

    async fn exchange(&self, commands: Vec<Command>) -> Result<(), DynamicSecurityError> {
        let mqtt = |error: &dyn std::fmt::Display| DynamicSecurityError::Mqtt(error.to_string());
        let request_id = Identifier::new();
        let bodies: Vec<Value> = commands
            .iter()
            .enumerate()
            .map(|(index, command)| {
                let mut body = command.body.clone();
                body["correlationData"] = json!(format!("{request_id}/{index}"));
                body
            })
            .collect();
        let (client, mut event_loop) = AsyncClient::new(self.options.clone().into_inner(), 4);
        client
            .subscribe(RESPONSE_TOPIC, QoS::AtLeastOnce)
            .await
            .map_err(|error| mqtt(&error))?;
        let mut outcome: Vec<Option<Answer>> = commands.iter().map(|_| None).collect();
        loop {
            match event_loop.poll().await.map_err(|error| mqtt(&error))? {
                Event::Incoming(Packet::SubAck(suback)) => {
                    if suback
                        .return_codes
                        .iter()
                        .any(|code| matches!(code, SubscribeReasonCode::Failure))
                    {
                        return Err(DynamicSecurityError::NotAnAdmin);
                    }
                    let request = json!({ "commands": bodies }).to_string();
                    client
                        .publish(COMMAND_TOPIC, QoS::AtLeastOnce, false, request)
                        .await
                        .map_err(|error| mqtt(&error))?;
                }
                Event::Incoming(Packet::Publish(publish)) if publish.topic == RESPONSE_TOPIC => {
                    let Ok(answers) = serde_json::from_slice::<Answers>(&publish.payload) else {
                        continue;
                    };
                    for answer in answers.responses {
                        let index = answer
                            .correlation_data
                            .as_deref()
                            .and_then(|data| data.strip_prefix(&format!("{request_id}/")))
                            .and_then(|index| index.parse::<usize>().ok());
                        if let Some(slot) = index.and_then(|index| outcome.get_mut(index)) {
                            *slot = Some(answer);
                        }
                    }
                    if outcome.iter().all(Option::is_some) {
                        break;
                    }
                }
                _ => {}
            }
        }
        // A polite goodbye; the broker cleans up after a dropped socket anyway.
        if client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), event_loop.poll()).await;
        }
        for (command, answer) in commands.iter().zip(outcome) {
            let name = command.body["command"].as_str().unwrap_or_default();
            let answer = answer.ok_or_else(|| DynamicSecurityError::Unanswered(name.into()))?;
            match answer.error {
                None => {}
                Some(error) if command.tolerated == Some(error.as_str()) => {}
                Some(error) => {
                    return Err(DynamicSecurityError::Refused {
                        command: answer.command,
                        error,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The role that holds a sensor's ACLs.
fn role_name(sensor: Identifier) -> String {
    format!("sensor-{sensor}")
}

/// Deleting the client closes its connection; its role goes with it.
fn revocation(sensor: Identifier) -> [Command; 2] {
    [
        Command {
            body: json!({"command": "deleteClient", "username": sensor.to_string()}),
            tolerated: Some(CLIENT_NOT_FOUND),
        },
        Command {
            body: json!({"command": "deleteRole", "rolename": role_name(sensor)}),
            tolerated: Some(ROLE_NOT_FOUND),
        },
    ]
}

/// A role allowing the sensor to publish to its three topics and subscribe to its
/// configurations, nothing else (the plugin's default denies publishing and
/// subscribing), and a client with that role.
fn issuance(sensor: Identifier, password: &str) -> [Command; 2] {
    let topics = SensorTopics::of(sensor);
    let mut acls: Vec<Value> = topics
        .published
        .iter()
        .map(|topic| json!({"acltype": "publishClientSend", "topic": topic, "allow": true}))
        .collect();
    acls.push(json!({
        "acltype": "subscribePattern",
        "topic": topics.configurations,
        "allow": true
    }));
    [
        Command {
            body: json!({"command": "createRole", "rolename": role_name(sensor), "acls": acls}),
            tolerated: None,
        },
        Command {
            body: json!({
                "command": "createClient",
                "username": sensor.to_string(),
                "clientid": sensor.to_string(),
                "password": password,
                "roles": [{"rolename": role_name(sensor)}],
            }),
            tolerated: None,
        },
    ]
}

impl CredentialsProvider for MosquittoCredentials {
    fn issue(&self, sensor: Identifier) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            let mut bytes = [0; PASSWORD_BYTES];
            rand::rng().fill_bytes(&mut bytes);
            let password = hex::encode(bytes);
            // Replacing: the old client goes first (and with it its connection), in the
            // same message, which the plugin runs in order.
            let mut commands = Vec::from(revocation(sensor));
            commands.extend(issuance(sensor, &password));
            self.run(commands)
                .await
                .map_err(CredentialsError::provider)?;
            Ok(Credentials::Password {
                client_identifier: sensor.to_string(),
                user_name: sensor.to_string(),
                password,
            })
        })
    }

    fn revoke(&self, sensor: Identifier) -> BoxFuture<'_, Result<(), CredentialsError>> {
        Box::pin(async move {
            self.run(Vec::from(revocation(sensor)))
                .await
                .map_err(CredentialsError::provider)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensors_role_allows_its_own_topics_only() {
        let sensor = Identifier::new();
        let [role, client] = issuance(sensor, "secret");
        let acls = role.body["acls"].as_array().unwrap();
        let allowed: Vec<(&str, &str)> = acls
            .iter()
            .map(|acl| {
                assert_eq!(acl["allow"], true);
                (
                    acl["acltype"].as_str().unwrap(),
                    acl["topic"].as_str().unwrap(),
                )
            })
            .collect();
        let expected_publish = [
            format!("heartbeats/{sensor}"),
            format!("measurements/{sensor}"),
            format!("log-messages/{sensor}"),
        ];
        let configurations = format!("configurations/{sensor}");
        let mut expected: Vec<(&str, &str)> = expected_publish
            .iter()
            .map(|topic| ("publishClientSend", topic.as_str()))
            .collect();
        expected.push(("subscribePattern", configurations.as_str()));
        assert_eq!(allowed, expected);
        assert_eq!(client.body["username"], sensor.to_string());
        assert_eq!(client.body["clientid"], sensor.to_string());
        assert_eq!(client.body["roles"][0]["rolename"], role.body["rolename"]);
    }
}
