//! What the secrets hold, checked without ever echoing it: the RDS-managed database
//! credentials (`DB_SECRET_ARN`) and the settings of `APP_SECRET_ARN` (the keys honoured, and
//! how they are laid over the environment's settings).

use std::collections::BTreeMap;

use clap::{Args, FromArgMatches};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;

use super::error::SecretError;
use crate::config::ConfigError;

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

/// The honoured settings from `APP_SECRET_ARN`, keyed by environment variable name. `overlay` lays
/// these over the environment's settings. `Debug` shows keys only.
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

/// Lays the `APP_SECRET_ARN` settings over `settings` (read from the environment by clap):
/// each key is the name of a variable the command reads, passed as that variable's flag
/// (which wins over the environment). Errors name the key, never the value.
pub fn overlay<T: Args + FromArgMatches>(settings: T, app: &AppSecrets) -> Result<T, ConfigError> {
    if app.is_empty() {
        return Ok(settings);
    }
    let command = T::augment_args(clap::Command::new("overlay"));
    let mut argv = vec!["overlay".to_owned()];
    for (key, value) in app.iter() {
        let long = command
            .get_arguments()
            .find(|a| a.get_env() == Some(std::ffi::OsStr::new(key)))
            .and_then(|a| a.get_long())
            .ok_or_else(|| ConfigError::new("APP_SECRET_ARN", format!("{key} is not a setting")))?;
        argv.push(format!("--{long}={}", value.expose_secret()));
    }
    let keys: Vec<&str> = app.iter().map(|(k, _)| k).collect();
    let invalid = || {
        ConfigError::new(
            "APP_SECRET_ARN",
            format!(
                "a value in the secret is invalid (keys: {})",
                keys.join(", ")
            ),
        )
    };
    let matches = command.try_get_matches_from(argv).map_err(|_| invalid())?;
    T::from_arg_matches(&matches).map_err(|_| invalid())
}

pub(super) fn malformed(
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
