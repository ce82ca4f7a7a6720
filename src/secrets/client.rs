//! Reading secrets: bounded retries with backoff, a deadline, and content checks that never
//! echo what they check.

use std::time::Duration;

use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::content::{
    AppSecrets, DbCredentials, malformed, parse_app_secrets, parse_db_credentials,
};
use super::error::{SecretError, hint_for, is_throttling, one_line};

/// Retry schedule for throttling and transient failures.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// The staging label of the version in use (Secrets Manager's default, named explicitly).
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The staging label of a rotation's new version until `finishSecret` makes it current.
pub const AWSPENDING: &str = "AWSPENDING";

/// A Secrets Manager client whose retries are ours (bounded, backed off, deadline-aware).
#[derive(Clone, Debug)]
pub struct SecretsClient {
    client: aws_sdk_secretsmanager::Client,
    retry: RetryPolicy,
}

struct Failure {
    code: String,
    detail: String,
    retryable: bool,
}

impl SecretsClient {
    /// The default chain: region from `AWS_REGION`, credentials from the environment or the ECS
    /// container endpoint, endpoint overridable with `AWS_ENDPOINT_URL(_SECRETS_MANAGER)`.
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_sdk_config(&config)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        let conf = aws_sdk_secretsmanager::config::Builder::from(config)
            // One retry loop only: ours, so attempts and the deadline are counted in one place.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            )
            .build();
        SecretsClient {
            client: aws_sdk_secretsmanager::Client::from_conf(conf),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The RDS-managed secret `{"username","password"}` (other members are ignored).
    pub async fn db_credentials(
        &self,
        secret_id: &str,
        setting: &'static str,
        deadline: Instant,
    ) -> Result<DbCredentials, SecretError> {
        let raw = self
            .secret_string(secret_id, setting, None, deadline)
            .await?;
        parse_db_credentials(raw.expose_secret(), secret_id, setting)
    }

    /// The version of the database secret staged `AWSPENDING`, if there is one: during a
    /// rotation, the new password is set in the database (`setSecret`) before `AWSCURRENT`
    /// moves to it (`finishSecret`), and until then it is only in this version.
    pub async fn pending_db_credentials(
        &self,
        secret_id: &str,
        setting: &'static str,
        deadline: Instant,
    ) -> Result<Option<DbCredentials>, SecretError> {
        match self
            .secret_string(secret_id, setting, Some(AWSPENDING), deadline)
            .await
        {
            Ok(raw) => parse_db_credentials(raw.expose_secret(), secret_id, setting).map(Some),
            Err(SecretError::Aws { code, .. }) if code == "ResourceNotFoundException" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The optional settings secret: a JSON object of string (or number/boolean) values.
    pub async fn app_secrets(
        &self,
        secret_id: &str,
        setting: &'static str,
        deadline: Instant,
    ) -> Result<AppSecrets, SecretError> {
        let raw = self
            .secret_string(secret_id, setting, None, deadline)
            .await?;
        parse_app_secrets(raw.expose_secret(), secret_id, setting)
    }

    /// The secret's string at `stage` (`AWSCURRENT` when `None`).
    #[tracing::instrument(name = "secretsmanager.get_secret_value", skip(self, deadline), fields(secret_id = %secret_id))]
    async fn secret_string(
        &self,
        secret_id: &str,
        setting: &'static str,
        stage: Option<&str>,
        deadline: Instant,
    ) -> Result<SecretString, SecretError> {
        let started = Instant::now();
        let mut backoff = self.retry.initial_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let call = self
                .client
                .get_secret_value()
                .secret_id(secret_id)
                .version_stage(stage.unwrap_or(AWSCURRENT))
                .send();
            let failure = match tokio::time::timeout_at(deadline, call).await {
                Ok(Ok(out)) => {
                    return match out.secret_string {
                        Some(s) => Ok(SecretString::from(s)),
                        None => Err(malformed(
                            secret_id,
                            setting,
                            "it has no SecretString (a binary secret)",
                            "a JSON string secret",
                        )),
                    };
                }
                Ok(Err(e)) => classify(&e),
                Err(_) => Failure {
                    code: "TimeoutError".into(),
                    detail: String::new(),
                    retryable: true,
                },
            };
            let deadline_error = |last_code: String| SecretError::Deadline {
                secret_id: secret_id.to_owned(),
                setting,
                deadline_secs: deadline.saturating_duration_since(started).as_secs(),
                attempts,
                last_code,
            };
            if !failure.retryable || attempts >= self.retry.max_attempts {
                return Err(SecretError::Aws {
                    secret_id: secret_id.to_owned(),
                    setting,
                    hint: hint_for(&failure.code),
                    code: failure.code,
                    attempts,
                    detail: failure.detail,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(deadline_error(failure.code));
            }
            tracing::warn!(
                secret_id,
                code = %failure.code,
                attempt = attempts,
                "reading the secret failed; retrying"
            );
            let sleep = jitter(backoff).min(deadline - now);
            tokio::time::sleep(sleep).await;
            if Instant::now() >= deadline {
                return Err(deadline_error(failure.code));
            }
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }
}

/// Full jitter: a random duration in [backoff/2, backoff], so restarting tasks do not retry in
/// lockstep.
fn jitter(backoff: Duration) -> Duration {
    let r = uuid::Uuid::new_v4().as_u128() as u64 % 1000;
    backoff / 2 + backoff * r as u32 / 2000
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
) -> Failure {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = e.code().unwrap_or("UnknownError").to_owned();
            let retryable = is_throttling(&code)
                || status == 429
                || status >= 500
                || matches!(code.as_str(), "InternalServiceError" | "ServiceUnavailable");
            Failure {
                detail: e
                    .message()
                    .map(|m| format!(": {}", one_line(m)))
                    .unwrap_or_default(),
                retryable,
                code,
            }
        }
        SdkError::TimeoutError(_) => Failure {
            code: "TimeoutError".into(),
            detail: String::new(),
            retryable: true,
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure {
            code: if matches!(e, SdkError::DispatchFailure(_)) {
                "DispatchFailure".into()
            } else {
                "ResponseError".into()
            },
            detail: format!(": {}", one_line(&DisplayErrorContext(e).to_string())),
            retryable: true,
        },
        _ => Failure {
            code: "ConstructionFailure".into(),
            detail: format!(": {}", one_line(&DisplayErrorContext(e).to_string())),
            retryable: false,
        },
    }
}
