//! AWS IoT Core as the sensors' credentials provider (`CREDENTIALS_PROVIDER=aws-iot`):
//! each sensor is a thing named by its identifier, holding exactly one certificate made
//! by IoT (`CreateKeysAndCertificate`) and attached to the sensors' policy of
//! `infra/template.json`, which lets a connection touch only the topics of the thing it
//! is attached to.
//!
//! The only crate that depends on `aws-sdk-iot`, the costliest crate to build.

use aws_sdk_iot::Client;
use aws_sdk_iot::config::retry::RetryConfig;
use aws_sdk_iot::error::{DisplayErrorContext, SdkError};
use aws_sdk_iot::operation::create_keys_and_certificate::CreateKeysAndCertificateOutput;
use aws_sdk_iot::types::CertificateStatus;
use sensorium_shared::credentials::{Credentials, CredentialsError, CredentialsProvider};
use sensorium_shared::domain::Identifier;
use sensorium_shared::publisher::BoxFuture;
use sensorium_shared::settings::SettingsError;

/// The environment variable naming the IoT policy attached to every sensor certificate.
pub const POLICY_NAME_VARIABLE: &str = "IOT_POLICY_NAME";

/// Issues and revokes sensor certificates through the AWS IoT control plane.
pub struct IotCredentials {
    client: Client,
    policy_name: String,
}

/// The SDK's standard retry mode, set explicitly rather than left to the behaviour
/// version: IoT's control plane rate-limits each call per account
/// (`ThrottlingException`), and one `issue` makes half a dozen calls; standard mode
/// retries throttling and transient errors with exponential backoff and jitter, up to
/// 5 attempts a call.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(5)
}

impl IotCredentials {
    /// Region and credentials from the environment (the Lambda role's), the policy name
    /// from `IOT_POLICY_NAME`.
    pub async fn from_env() -> Result<Self, SettingsError> {
        let policy_name = std::env::var(POLICY_NAME_VARIABLE)
            .ok()
            .filter(|name| !name.is_empty())
            .ok_or(SettingsError::Missing(POLICY_NAME_VARIABLE))?;
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(sensorium_functions::cloud::https_client())
            .retry_config(retry_config())
            .load()
            .await;
        Ok(Self::new(Client::new(&shared), policy_name))
    }

    /// A client configured by the caller (tests point one at moto's server).
    pub fn new(client: Client, policy_name: impl Into<String>) -> Self {
        Self {
            client,
            policy_name: policy_name.into(),
        }
    }

    async fn issue_certificate(&self, sensor: Identifier) -> Result<Credentials, StepError> {
        let thing = sensor.to_string();
        self.create_thing(&thing).await?;
        // Earlier certificates go first, so that there is never a moment with two
        // working ones; should what follows fail, the sensor is left with none, which
        // the caller can mend by asking again.
        self.remove_certificates(&thing).await?;

        let created = self
            .client
            .create_keys_and_certificate()
            .set_as_active(true)
            .send()
            .await
            .map_err(|error| StepError::sdk("creating the keys and certificate", error))?;
        let certificate_id = created.certificate_id().ok_or_else(|| {
            StepError::new(
                "creating the keys and certificate",
                "the answer has no certificate identifier",
            )
        })?;
        // From here on a failure must not leave the new certificate active.
        match self.hand_out(&thing, &created).await {
            Ok(credentials) => Ok(credentials),
            Err(error) => {
                self.discard_new_certificate(&thing, certificate_id, created.certificate_arn())
                    .await;
                Err(error)
            }
        }
    }

    /// Attaches the new certificate to the policy and the thing, and makes the
    /// credentials of it.
    async fn hand_out(
        &self,
        thing: &str,
        created: &CreateKeysAndCertificateOutput,
    ) -> Result<Credentials, StepError> {
        let (Some(arn), Some(id), Some(pem), Some(private_key)) = (
            created.certificate_arn(),
            created.certificate_id(),
            created.certificate_pem(),
            created.key_pair().and_then(|pair| pair.private_key()),
        ) else {
            return Err(StepError::new(
                "reading the created certificate",
                "the answer lacks its ARN, PEM or private key",
            ));
        };
        self.attach(thing, arn).await?;
        Ok(Credentials::Certificate {
            client_identifier: thing.to_owned(),
            certificate_identifier: id.to_owned(),
            certificate_pem: pem.to_owned(),
            private_key_pem: private_key.to_owned(),
        })
    }

    /// Creates the thing; one that exists already (an earlier issue) is fine.
    async fn create_thing(&self, thing: &str) -> Result<(), StepError> {
        let created = self.client.create_thing().thing_name(thing).send().await;
        done_or_already("creating the thing", created, |error| {
            error.is_resource_already_exists_exception()
        })
    }

    async fn attach(&self, thing: &str, certificate_arn: &str) -> Result<(), StepError> {
        self.client
            .attach_policy()
            .policy_name(&self.policy_name)
            .target(certificate_arn)
            .send()
            .await
            .map_err(|error| StepError::sdk("attaching the policy to the certificate", error))?;
        self.client
            .attach_thing_principal()
            .thing_name(thing)
            .principal(certificate_arn)
            .send()
            .await
            .map_err(|error| StepError::sdk("attaching the certificate to the thing", error))?;
        Ok(())
    }

    /// Undoes a half-made issue: the new certificate must not stay active. Failures
    /// here are logged; the caller reports the step that failed first.
    async fn discard_new_certificate(&self, thing: &str, id: &str, arn: Option<&str>) {
        let removed = match self.deactivate(id).await {
            Ok(()) => match arn {
                Some(arn) => {
                    let certificate = Certificate {
                        arn: arn.to_owned(),
                        id: id.to_owned(),
                    };
                    self.delete_certificate(thing, &certificate).await
                }
                // Without its ARN nothing can have been attached to it.
                None => self.delete_certificate_only(id).await,
            },
            Err(error) => Err(error),
        };
        if let Err(error) = removed {
            tracing::error!(
                thing,
                certificate_id = id,
                error = %error,
                "could not clean up the certificate of a failed issue"
            );
        }
    }

    /// Revokes every certificate of the thing: all are deactivated first (they stop
    /// working), then each is detached and deleted. Principals that are not
    /// certificates are only detached.
    async fn remove_certificates(&self, thing: &str) -> Result<(), StepError> {
        let principals = self.thing_principals(thing).await?;
        let certificates: Vec<Certificate> = principals
            .iter()
            .filter_map(|arn| Certificate::from_arn(arn))
            .collect();
        for certificate in &certificates {
            self.deactivate(&certificate.id).await?;
        }
        for arn in principals
            .iter()
            .filter(|arn| Certificate::from_arn(arn).is_none())
        {
            self.detach_from_thing(thing, arn).await?;
        }
        for certificate in &certificates {
            self.delete_certificate(thing, certificate).await?;
        }
        Ok(())
    }

    /// The thing's principal ARNs; a missing thing has none.
    async fn thing_principals(&self, thing: &str) -> Result<Vec<String>, StepError> {
        let mut pages = self
            .client
            .list_thing_principals()
            .thing_name(thing)
            .into_paginator()
            .items()
            .send();
        let mut principals = Vec::new();
        loop {
            match pages.try_next().await {
                Ok(Some(principal)) => principals.push(principal),
                Ok(None) => return Ok(principals),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_resource_not_found_exception()) =>
                {
                    return Ok(Vec::new());
                }
                Err(error) => {
                    return Err(StepError::sdk(
                        "listing the certificates of the thing",
                        error,
                    ));
                }
            }
        }
    }

    async fn deactivate(&self, certificate_id: &str) -> Result<(), StepError> {
        self.client
            .update_certificate()
            .certificate_id(certificate_id)
            .new_status(CertificateStatus::Inactive)
            .send()
            .await
            .map_err(|error| StepError::sdk("deactivating the certificate", error))?;
        Ok(())
    }

    /// Detaches the deactivated certificate from the thing and from its policies, and
    /// deletes it.
    async fn delete_certificate(
        &self,
        thing: &str,
        certificate: &Certificate,
    ) -> Result<(), StepError> {
        self.detach_from_thing(thing, &certificate.arn).await?;
        let policies = self
            .client
            .list_attached_policies()
            .target(&certificate.arn)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| StepError::sdk("listing the policies of the certificate", error))?;
        for policy in policies {
            let Some(policy_name) = policy.policy_name() else {
                continue;
            };
            self.client
                .detach_policy()
                .policy_name(policy_name)
                .target(&certificate.arn)
                .send()
                .await
                .map_err(|error| {
                    StepError::sdk("detaching the policy from the certificate", error)
                })?;
        }
        self.delete_certificate_only(&certificate.id).await
    }

    /// Deletes the deactivated certificate. forceDelete: a policy attached after the
    /// listing must not keep an inactive certificate alive.
    async fn delete_certificate_only(&self, certificate_id: &str) -> Result<(), StepError> {
        self.client
            .delete_certificate()
            .certificate_id(certificate_id)
            .force_delete(true)
            .send()
            .await
            .map_err(|error| StepError::sdk("deleting the certificate", error))?;
        Ok(())
    }

    /// Detaches the principal from the thing; one already detached is fine.
    async fn detach_from_thing(&self, thing: &str, principal: &str) -> Result<(), StepError> {
        let detached = self
            .client
            .detach_thing_principal()
            .thing_name(thing)
            .principal(principal)
            .send()
            .await;
        done_or_already(
            "detaching the certificate from the thing",
            detached,
            |error| error.is_resource_not_found_exception(),
        )
    }

    async fn revoke_certificates(&self, sensor: Identifier) -> Result<(), StepError> {
        let thing = sensor.to_string();
        self.remove_certificates(&thing).await?;
        let deleted = self.client.delete_thing().thing_name(&thing).send().await;
        done_or_already("deleting the thing", deleted, |error| {
            error.is_resource_not_found_exception()
        })
    }
}

impl CredentialsProvider for IotCredentials {
    fn issue(&self, sensor: Identifier) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            self.issue_certificate(sensor)
                .await
                .map_err(CredentialsError::provider)
        })
    }

    fn revoke(&self, sensor: Identifier) -> BoxFuture<'_, Result<(), CredentialsError>> {
        Box::pin(async move {
            self.revoke_certificates(sensor)
                .await
                .map_err(CredentialsError::provider)
        })
    }
}

/// A certificate principal: `arn:aws:iot:<region>:<account>:cert/<certificate id>`.
struct Certificate {
    arn: String,
    id: String,
}

impl Certificate {
    fn from_arn(arn: &str) -> Option<Self> {
        let (_, id) = arn.split_once(":cert/")?;
        (!id.is_empty()).then(|| Self {
            arn: arn.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// The step that failed, with the SDK's error and its whole context (service code,
/// HTTP status) as text.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {details}")]
struct StepError {
    step: &'static str,
    details: String,
}

impl StepError {
    fn new(step: &'static str, details: impl Into<String>) -> Self {
        Self {
            step,
            details: details.into(),
        }
    }

    fn sdk(step: &'static str, error: impl std::error::Error) -> Self {
        Self::new(step, DisplayErrorContext(&error).to_string())
    }
}

/// The outcome of an idempotent step: done, also when the service answered with the
/// error `already_done` recognises (a thing that exists, a principal detached before).
fn done_or_already<O, E, R>(
    step: &'static str,
    result: Result<O, SdkError<E, R>>,
    already_done: impl FnOnce(&E) -> bool,
) -> Result<(), StepError>
where
    SdkError<E, R>: std::error::Error,
{
    match result {
        Ok(_) => Ok(()),
        Err(error) if error.as_service_error().is_some_and(already_done) => Ok(()),
        Err(error) => Err(StepError::sdk(step, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_principal_gives_its_identifier() {
        let certificate =
            Certificate::from_arn("arn:aws:iot:us-east-1:123456789012:cert/abc123").unwrap();
        assert_eq!(certificate.id, "abc123");
        assert_eq!(
            certificate.arn,
            "arn:aws:iot:us-east-1:123456789012:cert/abc123"
        );
    }

    #[test]
    fn a_principal_that_is_not_a_certificate_is_not_taken_for_one() {
        assert!(Certificate::from_arn("us-east-1:1234-cognito-identity").is_none());
        assert!(Certificate::from_arn("arn:aws:iot:us-east-1:123456789012:cert/").is_none());
    }
}
