//! Configuration: one typed struct per concern, read once from the environment (12-factor)
//! by clap, and documented in the README's configuration table.

use std::{net::SocketAddr, time::Duration};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::store::PoolSettings;

/// Settings of `players-api serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeSettings {
    /// Address and port the HTTP server binds.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    #[command(flatten)]
    pub http: HttpSettings,

    #[command(flatten)]
    pub database: DatabaseSettings,

    /// Allow a SQLite DATABASE_URL on ECS (several tasks cannot share one file).
    #[arg(long, env = "ALLOW_SQLITE_ON_ECS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_sqlite_on_ecs: bool,

    #[command(flatten)]
    pub log: LogSettings,

    /// Identity: ALB user claims and bearer tokens (see `crate::auth::config`).
    #[command(flatten)]
    pub auth: crate::auth::AuthSettings,

    #[command(flatten)]
    pub secrets: crate::secrets::SecretsSettings,

    #[command(flatten)]
    pub metrics: crate::telemetry::metrics::MetricsSettings,

    #[command(flatten)]
    pub otel: crate::telemetry::otel::OtelSettings,

    #[command(flatten)]
    pub shutdown: crate::shutdown::ShutdownSettings,
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

/// Where the database is and how to use it.
#[derive(Args, Clone)]
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

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "[REDACTED]"),
            )
            .field("db_host", &self.db_host)
            .field("db_port", &self.db_port)
            .field("db_name", &self.db_name)
            .field("db_user", &self.db_user)
            .field("db_sslmode", &self.db_sslmode)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("run_migrations", &self.run_migrations)
            .finish()
    }
}

impl DatabaseSettings {
    /// Settings for a given URL with every other value at its default (dev and tests).
    pub fn for_url(url: &str) -> Self {
        DatabaseSettings {
            database_url: Some(SecretString::from(url.to_owned())),
            db_host: None,
            db_port: 5432,
            db_name: "players".into(),
            db_user: None,
            db_sslmode: "verify-full".into(),
            db_sslrootcert: None,
            max_connections: 10,
            min_connections: 0,
            acquire_timeout_ms: 3000,
            run_migrations: true,
            ready_timeout_ms: 1000,
        }
    }

    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.max_connections,
            min_connections: self.min_connections,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
        }
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

impl ServeSettings {
    /// Cross-field checks clap cannot express. `on_ecs` is whether ECS_CONTAINER_METADATA_URI_V4
    /// is set.
    pub fn validate(&self, on_ecs: bool) -> Result<(), ConfigError> {
        self.database.validate()?;
        if on_ecs && self.database.is_sqlite() && !self.allow_sqlite_on_ecs {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "SQLite on ECS: several tasks cannot share one file; use PostgreSQL, or set \
                 ALLOW_SQLITE_ON_ECS=true for a single-task deployment",
            ));
        }
        Ok(())
    }
}

/// Whether the process runs as an ECS task (the agent sets this variable in every container).
pub fn running_on_ecs() -> bool {
    std::env::var_os("ECS_CONTAINER_METADATA_URI_V4").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeSettings,
    }

    fn parse(args: &[&str]) -> ServeSettings {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().serve
    }

    #[test]
    fn sqlite_is_refused_on_ecs_unless_allowed() {
        let s = parse(&["--database-url", "sqlite:x.db"]);
        let err = s.validate(true).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(s.validate(false).is_ok());
        let allowed = parse(&[
            "--database-url",
            "sqlite:x.db",
            "--allow-sqlite-on-ecs",
            "true",
        ]);
        assert!(allowed.validate(true).is_ok());
        let pg = parse(&["--database-url", "postgres://h/db"]);
        assert!(pg.validate(true).is_ok());
    }

    #[test]
    fn errors_name_the_variable() {
        let s = parse(&["--database-url", "mysql://h/db"]);
        assert_eq!(s.validate(false).unwrap_err().variable, "DATABASE_URL");
        let s = parse(&["--database-url", "sqlite:x", "--max-connections", "0"]);
        assert_eq!(
            s.validate(false).unwrap_err().variable,
            "DB_MAX_CONNECTIONS"
        );
        let s = parse(&[]);
        assert_eq!(s.database.url().unwrap_err().variable, "DATABASE_URL");
    }

    #[test]
    fn http_defaults_come_from_one_place() {
        assert_eq!(parse(&[]).http, HttpSettings::default());
        assert_eq!(HttpSettings::default().keep_alive_secs, 75);
        let s = parse(&["--keep-alive-secs", "3", "--body-timeout-secs", "4"]);
        assert_eq!((s.http.keep_alive_secs, s.http.body_timeout_secs), (3, 4));
    }

    #[test]
    fn debug_redacts_the_database_url() {
        let s = parse(&["--database-url", "postgres://u:hunter2@h/db"]);
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[REDACTED]"));
    }
}
