//! Database credentials and sensitive settings from AWS Secrets Manager.
//!
//! At start-up [`load_startup_secrets`] reads the RDS-managed secret named by `DB_SECRET_ARN`
//! (`{"username","password"}`) and the optional `APP_SECRET_ARN` (a JSON object of further
//! settings) through the default credential chain — on ECS the task role. Failures become one
//! [`SecretError`] line naming the secret, the AWS error code and what to check, never a value.
//! Afterwards a [`CredentialRefresher`] follows rotations without a restart.

mod client;
mod content;
mod error;
mod refresher;

pub use client::{RetryPolicy, SecretsClient};
pub use content::{APP_SECRET_KEYS, AppSecrets, DbCredentials, overlay};
pub use error::SecretError;
pub use refresher::{CredentialRefresher, RefreshTiming, is_auth_failure};

use std::time::Duration;

use tokio::time::Instant;

/// `DB_SECRET_ARN`, `APP_SECRET_ARN`, `SECRET_REFRESH_INTERVAL_SECS`, `STARTUP_DEADLINE_SECS`.
#[derive(Clone, Debug, clap::Args)]
pub struct SecretsSettings {
    /// ARN (or name) of the RDS-managed secret holding `{"username","password"}`. Unset: the
    /// database credentials come from DATABASE_URL / DB_USER instead.
    #[arg(long = "db-secret-arn", env = "DB_SECRET_ARN")]
    pub db_secret_arn: Option<String>,
    /// ARN (or name) of an optional secret holding a JSON object of further settings; see
    /// [`APP_SECRET_KEYS`] for the keys honoured.
    #[arg(long = "app-secret-arn", env = "APP_SECRET_ARN")]
    pub app_secret_arn: Option<String>,
    /// Seconds between scheduled re-reads of the database secret (0 = only on SQLSTATE 28P01).
    #[arg(
        long = "secret-refresh-interval-secs",
        env = "SECRET_REFRESH_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub refresh_interval_secs: u64,
    /// Overall time allowed for reading the secrets at start-up, retries included.
    #[arg(
        long = "startup-deadline-secs",
        env = "STARTUP_DEADLINE_SECS",
        default_value_t = 60
    )]
    pub startup_deadline_secs: u64,
}

impl SecretsSettings {
    pub fn refresh_interval(&self) -> Option<Duration> {
        (self.refresh_interval_secs > 0).then(|| Duration::from_secs(self.refresh_interval_secs))
    }

    pub fn any_configured(&self) -> bool {
        self.db_secret_arn.is_some() || self.app_secret_arn.is_some()
    }
}

/// What start-up read from Secrets Manager.
#[derive(Debug, Default)]
pub struct StartupSecrets {
    /// `None` when `DB_SECRET_ARN` is unset.
    pub db: Option<DbCredentials>,
    /// Empty when `APP_SECRET_ARN` is unset.
    pub app: AppSecrets,
}

/// Reads the configured secrets with the default AWS chain, within `STARTUP_DEADLINE_SECS`.
/// Returns the client too (for the [`CredentialRefresher`]); `None` if no secret is configured,
/// in which case no AWS call is made at all.
pub async fn load_startup_secrets(
    settings: &SecretsSettings,
) -> Result<(StartupSecrets, Option<SecretsClient>), SecretError> {
    if !settings.any_configured() {
        return Ok((StartupSecrets::default(), None));
    }
    let client = SecretsClient::from_env().await;
    let secrets = load_startup_secrets_with(&client, settings).await?;
    Ok((secrets, Some(client)))
}

/// [`load_startup_secrets`] with a given client (tests point it at a local endpoint).
pub async fn load_startup_secrets_with(
    client: &SecretsClient,
    settings: &SecretsSettings,
) -> Result<StartupSecrets, SecretError> {
    let deadline = Instant::now() + Duration::from_secs(settings.startup_deadline_secs);
    let db = match &settings.db_secret_arn {
        Some(id) => Some(client.db_credentials(id, "DB_SECRET_ARN", deadline).await?),
        None => None,
    };
    let app = match &settings.app_secret_arn {
        Some(id) => client.app_secrets(id, "APP_SECRET_ARN", deadline).await?,
        None => AppSecrets::default(),
    };
    Ok(StartupSecrets { db, app })
}
