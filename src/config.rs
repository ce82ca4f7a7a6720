//! Configuration shared by several commands: the HTTP server, the database and logs. Each is
//! one typed struct read once from the environment (12-factor) by clap, documented in the
//! README's configuration table; every default is written once, in its clap attribute. The
//! concerns' own settings live with them (`auth`, `secrets`, `telemetry`, `shutdown`) and
//! `cli::ServeSettings` gathers them for `serve`.

use std::time::Duration;

use clap::{Args, FromArgMatches};
use secrecy::{ExposeSecret, SecretString};

/// A settings struct with every value at its clap default, whatever the environment holds
/// (`dev` and tests; `serve` reads the environment).
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"))
        .no_binary_name(true)
        .mut_args(|arg| arg.env(None::<&str>));
    let matches = command
        .try_get_matches_from(std::iter::empty::<String>())
        .expect("every setting has a default");
    T::from_arg_matches(&matches).expect("defaults parse")
}

/// Keep-alive longer than the ALB's idle timeout (60 s by default): otherwise the ALB reuses a
/// connection the task is closing and answers 502.
pub const DEFAULT_KEEP_ALIVE_SECS: u64 = 75;
/// Time to receive a request's head once a connection has sent its first byte.
pub const DEFAULT_REQUEST_HEAD_TIMEOUT_SECS: u64 = 10;
/// Time to receive a request's whole body once its handler starts reading it.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;

/// Connection handling of the HTTP server.
#[derive(Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Seconds an idle keep-alive connection stays open; must exceed the load balancer's idle
    /// timeout.
    #[arg(long, env = "HTTP_KEEP_ALIVE_SECS", default_value_t = DEFAULT_KEEP_ALIVE_SECS)]
    pub keep_alive_secs: u64,

    /// Seconds a client has to send a request's head (a slow client is answered 408).
    #[arg(long, env = "HTTP_REQUEST_HEAD_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_HEAD_TIMEOUT_SECS)]
    pub request_head_timeout_secs: u64,

    /// Seconds a client has to send a request's body (a slow client is answered 408).
    #[arg(long, env = "HTTP_BODY_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_TIMEOUT_SECS)]
    pub body_timeout_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            keep_alive_secs: DEFAULT_KEEP_ALIVE_SECS,
            request_head_timeout_secs: DEFAULT_REQUEST_HEAD_TIMEOUT_SECS,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
        }
    }
}

impl HttpSettings {
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_secs)
    }

    pub fn request_head_timeout(&self) -> Duration {
        Duration::from_secs(self.request_head_timeout_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }
}

/// Where the database is and how to use it. `Debug` shows the URL as `[REDACTED]`.
#[derive(Args, Clone, Debug)]
pub struct DatabaseSettings {
    /// Full database URL (`postgres://...` or `sqlite:...`). When unset, the URL is built
    /// from DB_HOST, DB_PORT, DB_NAME, DB_USER and the password (DB_SECRET_ARN).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// PostgreSQL host (used when DATABASE_URL is unset).
    #[arg(long, env = "DB_HOST")]
    pub db_host: Option<String>,

    #[arg(long, env = "DB_PORT", default_value_t = 5432)]
    pub db_port: u16,

    #[arg(long, env = "DB_NAME", default_value = "players")]
    pub db_name: String,

    /// Database user when not taken from the secret.
    #[arg(long, env = "DB_USER")]
    pub db_user: Option<String>,

    /// TLS mode for PostgreSQL: disable, prefer, require, verify-ca, verify-full.
    #[arg(long, env = "DB_SSLMODE", default_value = "verify-full")]
    pub db_sslmode: String,

    /// CA bundle for verify-ca / verify-full (e.g. the RDS global bundle).
    #[arg(long, env = "DB_SSLROOTCERT")]
    pub db_sslrootcert: Option<String>,

    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub max_connections: u32,

    #[arg(long, env = "DB_MIN_CONNECTIONS", default_value_t = 0)]
    pub min_connections: u32,

    /// How long a request waits for a pooled connection.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3000)]
    pub acquire_timeout_ms: u64,

    /// Apply migrations at start-up.
    #[arg(long, env = "RUN_MIGRATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_migrations: bool,

    /// How long `/ready` waits for the database before answering 503.
    #[arg(long, env = "READY_TIMEOUT_MS", default_value_t = 1000)]
    pub ready_timeout_ms: u64,
}

impl DatabaseSettings {
    /// Settings for a given URL with every other value at its default (dev and tests).
    pub fn for_url(url: &str) -> Self {
        DatabaseSettings {
            database_url: Some(SecretString::from(url.to_owned())),
            ..defaults()
        }
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    pub fn ready_timeout(&self) -> Duration {
        Duration::from_millis(self.ready_timeout_ms)
    }

    /// The URL to connect to, or an error naming the variable to set.
    pub fn url(&self) -> Result<String, ConfigError> {
        match (&self.database_url, &self.db_host) {
            (Some(url), _) => Ok(url.expose_secret().to_owned()),
            (None, Some(_)) => Err(ConfigError::new(
                "DATABASE_URL",
                "DB_HOST is set: connect with DatabaseSettings::pg_options instead",
            )),
            (None, None) => Err(ConfigError::new(
                "DATABASE_URL",
                "set DATABASE_URL, or DB_HOST with DB_SECRET_ARN",
            )),
        }
    }

    /// PostgreSQL options from DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_SSLMODE and
    /// DB_SSLROOTCERT (the credentials come from the secret and are applied by the caller).
    pub fn pg_options(&self) -> Result<sqlx::postgres::PgConnectOptions, ConfigError> {
        let host = self
            .db_host
            .as_deref()
            .ok_or_else(|| ConfigError::new("DB_HOST", "set DB_HOST (or DATABASE_URL)"))?;
        let ssl_mode = self
            .db_sslmode
            .parse::<sqlx::postgres::PgSslMode>()
            .map_err(|_| {
                ConfigError::new(
                    "DB_SSLMODE",
                    "must be disable, allow, prefer, require, verify-ca or verify-full",
                )
            })?;
        let mut options = sqlx::postgres::PgConnectOptions::new()
            .host(host)
            .port(self.db_port)
            .database(&self.db_name)
            .ssl_mode(ssl_mode);
        if let Some(user) = &self.db_user {
            options = options.username(user);
        }
        if let Some(ca) = &self.db_sslrootcert {
            options = options.ssl_root_cert(ca);
        }
        Ok(options)
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url
            .as_ref()
            .is_some_and(|u| u.expose_secret().starts_with("sqlite:"))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::new("DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        if self.min_connections > self.max_connections {
            return Err(ConfigError::new(
                "DB_MIN_CONNECTIONS",
                "must not exceed DB_MAX_CONNECTIONS",
            ));
        }
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            let known = ["postgres://", "postgresql://", "sqlite:"];
            if !known.iter().any(|p| url.starts_with(p)) {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "must start with postgres://, postgresql:// or sqlite:",
                ));
            }
        }
        Ok(())
    }
}

/// Log output.
#[derive(Args, Debug, Clone)]
pub struct LogSettings {
    /// Minimum level, or a tracing filter directive (`info,sqlx=warn`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// `json` (one object per line, for CloudWatch) or `pretty` (for people).
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            variable,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_ignore_the_environment() {
        // SAFETY: this test is the only one of this binary's tests that touches DB_NAME.
        unsafe { std::env::set_var("DB_NAME", "from-the-environment") };
        let db: DatabaseSettings = defaults();
        assert_eq!(db.db_name, "players");
        assert_eq!(db.db_port, 5432);
        let http: HttpSettings = defaults();
        assert_eq!(http, HttpSettings::default());
        assert_eq!(http.keep_alive_secs, 75);
    }

    #[test]
    fn debug_redacts_the_database_url() {
        let db = DatabaseSettings::for_url("postgres://u:hunter2@h/db");
        let printed = format!("{db:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }
}
