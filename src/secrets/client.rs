//! Reading secrets: bounded retries with backoff, a deadline, and content checks that never
//! echo what they check.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use tokio::time::Instant;

use super::error::{SecretError, hint_for, is_throttling, one_line};

/// Keys of the `APP_SECRET_ARN` JSON object the service honours: each is the name of the
/// environment variable whose value it replaces. Other keys are ignored with a warning naming
/// them (never their values).
pub const APP_SECRET_KEYS: &[&str] = &[
    "DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "ALB_SIGNER_ARNS",
    "ALB_ISSUER",
    "ALB_CLIENT_ID",
    "BEARER_ISSUER",
    "BEARER_CLIENT_IDS",
    "BEARER_AUDIENCES",
    "AUTH_GROUP_PERMISSIONS",
    "AUTH_SCOPE_PERMISSIONS",
    "AUTH_LOGOUT_URL",
];

/// Database credentials from the RDS-managed secret. `Debug` shows the user, not the password.
#[derive(Clone, Debug)]
pub struct DbCredentials {
    pub username: String,
    pub password: SecretString,
}

impl DbCredentials {
    /// `base` (host, port, database, TLS) with these credentials.
    pub fn apply_to(&self, base: &PgConnectOptions) -> PgConnectOptions {
        base.clone()
            .username(&self.username)
            .password(self.password.expose_secret())
    }

    fn same_as(&self, other: &DbCredentials) -> bool {
        self.username == other.username
            && self.password.expose_secret() == other.password.expose_secret()
    }
}

impl PartialEq for DbCredentials {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

/// The honoured settings from `APP_SECRET_ARN`, keyed by environment variable name. The lead's
/// configuration lays these over the environment. `Debug` shows keys only.
#[derive(Clone, Debug, Default)]
pub struct AppSecrets {
    values: BTreeMap<String, SecretString>,
}

impl AppSecrets {
    pub fn get(&self, key: &str) -> Option<&SecretString> {
        self.values.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

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

fn malformed(
    secret_id: &str,
    setting: &'static str,
    problem: impl Into<String>,
    expected: &'static str,
) -> SecretError {
    SecretError::Malformed {
        secret_id: secret_id.to_owned(),
        setting,
        problem: problem.into(),
        expected,
    }
}

/// Parses as JSON without letting serde's messages (which can quote the input) through.
fn parse_object(
    raw: &str,
    secret_id: &str,
    setting: &'static str,
    expected: &'static str,
) -> Result<serde_json::Map<String, Value>, SecretError> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed(
            secret_id,
            setting,
            "it is JSON but not an object",
            expected,
        )),
        Err(e) => Err(malformed(
            secret_id,
            setting,
            format!(
                "it is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            expected,
        )),
    }
}

pub(crate) fn parse_db_credentials(
    raw: &str,
    secret_id: &str,
    setting: &'static str,
) -> Result<DbCredentials, SecretError> {
    const EXPECTED: &str = r#"the RDS-managed form {"username": "...", "password": "..."}"#;
    let mut map = parse_object(raw, secret_id, setting, EXPECTED)?;
    let mut field = |name: &str| match map.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(malformed(
            secret_id,
            setting,
            format!("member \"{name}\" is empty"),
            EXPECTED,
        )),
        Some(_) => Err(malformed(
            secret_id,
            setting,
            format!("member \"{name}\" is not a string"),
            EXPECTED,
        )),
        None => Err(malformed(
            secret_id,
            setting,
            format!("member \"{name}\" is missing"),
            EXPECTED,
        )),
    };
    let username = field("username")?;
    let password = SecretString::from(field("password")?);
    Ok(DbCredentials { username, password })
}

pub(crate) fn parse_app_secrets(
    raw: &str,
    secret_id: &str,
    setting: &'static str,
) -> Result<AppSecrets, SecretError> {
    const EXPECTED: &str = "a JSON object of setting names to string values";
    let map = parse_object(raw, secret_id, setting, EXPECTED)?;
    let mut values = BTreeMap::new();
    let mut ignored = Vec::new();
    for (key, value) in map {
        if !APP_SECRET_KEYS.contains(&key.as_str()) {
            ignored.push(key);
            continue;
        }
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(malformed(
                    secret_id,
                    setting,
                    format!("member \"{key}\" is not a string, number or boolean"),
                    EXPECTED,
                ));
            }
        };
        values.insert(key, SecretString::from(text));
    }
    if !ignored.is_empty() {
        // Unknown keys are not an error: the secret may be shared; a typo still shows up here.
        tracing::warn!(secret_id, keys = ?ignored, "ignoring unknown keys of the settings secret");
    }
    Ok(AppSecrets { values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_secret_parses_and_redacts() {
        let c = parse_db_credentials(
            r#"{"username":"app","password":"s3cr3t-Pw","engine":"postgres"}"#,
            "arn:x",
            "DB_SECRET_ARN",
        )
        .unwrap();
        assert_eq!(c.username, "app");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t-Pw"), "{dbg}");
        assert!(dbg.contains("REDACTED"), "{dbg}");
    }

    #[test]
    fn malformed_secrets_never_echo_content() {
        for raw in [
            "hunter2-not-json",
            r#"{"username":"app","password":hunter2}"#,
            r#"["hunter2"]"#,
            r#"{"username":"app"}"#,
            r#"{"username":"app","password":["hunter2"]}"#,
            r#"{"username":"app","password":""}"#,
            r#"{"user":"hunter2","password":"hunter2"}"#,
        ] {
            let err = parse_db_credentials(raw, "arn:db", "DB_SECRET_ARN").unwrap_err();
            let line = err.to_string();
            assert!(!line.contains("hunter2"), "{line}");
            assert!(
                line.contains("arn:db") && line.contains("malformed"),
                "{line}"
            );
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn app_secrets_keep_only_honoured_keys() {
        let s = parse_app_secrets(
            r#"{"ALB_CLIENT_ID":"abc","DB_PORT":5433,"UNKNOWN":"x"}"#,
            "arn:app",
            "APP_SECRET_ARN",
        )
        .unwrap();
        assert_eq!(s.get("ALB_CLIENT_ID").unwrap().expose_secret(), "abc");
        assert_eq!(s.get("DB_PORT").unwrap().expose_secret(), "5433");
        assert!(s.get("UNKNOWN").is_none());
        assert!(!format!("{s:?}").contains("abc"));
        let err = parse_app_secrets(
            r#"{"DB_HOST":{"x":"hunter2"}}"#,
            "arn:app",
            "APP_SECRET_ARN",
        )
        .unwrap_err();
        assert!(err.to_string().contains("DB_HOST") && !err.to_string().contains("hunter2"));
    }
}
