//! The command line: `players-api <command>`; a bare `players-api` runs `dev`. Each command's
//! settings gather the concerns' own settings structs (`config`, `auth`, `secrets`,
//! `telemetry`, `shutdown`).

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigError, DatabaseSettings, HttpSettings, LogSettings};

#[derive(Parser, Debug)]
#[command(name = "players-api", version, about = "Player-management REST API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Production server; every setting from the environment.
    Serve(Box<ServeSettings>),
    /// Apply database migrations and exit.
    Migrate(MigrateArgs),
    /// Local quick start: embedded SQLite, zero configuration, bound to 127.0.0.1.
    Dev(DevArgs),
    /// Verify a captured x-amzn-oidc-data header (read from stdin) with the server's code.
    VerifyAlbHeader(crate::auth::cli::VerifyAlbHeaderArgs),
    /// Print a bearer token from the local issuer of `players-api dev` (for curl).
    Token(crate::local_alb::token_cmd::TokenArgs),
    /// Probe the local /health endpoint; exit 0 if healthy (the container health check).
    Healthcheck(HealthcheckArgs),
    /// Print the OpenAPI document.
    #[command(hide = true)]
    Openapi,
}

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

    /// Expiry of idempotency and (with a retention) audit records.
    #[command(flatten)]
    pub sweep: crate::store::sweeper::SweepSettings,
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

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    /// The server's listen address (the same variable `serve` reads); 0.0.0.0 is probed on
    /// loopback.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: String,

    #[arg(long, default_value_t = 2)]
    pub timeout_secs: u64,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// The owner's credentials: DB_SECRET_ARN (with DB_HOST) is the owner's secret here.
    #[command(flatten)]
    pub secrets: crate::secrets::SecretsSettings,
    /// Secret of the runtime role ({"username","password"}, rotated with alternating users).
    /// When set, after the migrations the role is created if missing (with this password) and
    /// granted exactly the DML the service needs (see `store::grants`).
    #[arg(long, env = "DB_APP_SECRET_ARN")]
    pub db_app_secret_arn: Option<String>,
    #[command(flatten)]
    pub log: LogSettings,
}

#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Where the API listens. Always a loopback address.
    #[arg(long, env = "DEV_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// Database for local runs (a PostgreSQL URL works too, e.g. for benchmarks).
    #[arg(
        long,
        env = "DEV_DATABASE_URL",
        default_value = "sqlite:players-dev.db"
    )]
    pub database_url: String,

    /// Port of the local ALB stand-in (login, proxy, key endpoint, issuer) on 127.0.0.1.
    #[arg(long, default_value_t = crate::local_alb::DEFAULT_PORT)]
    pub alb_port: u16,

    #[command(flatten)]
    pub oidc: DevOidcArgs,

    /// Print the identity settings the API gets from the local ALB (JSON) and exit.
    #[arg(long, hide = true)]
    pub print_identity_env: bool,
}

/// The local ALB's `authenticate-oidc` action: the same knobs as the ALB's. Without
/// `--oidc-issuer` the built-in provider logs users in (zero configuration). The client secret
/// comes from `DEV_OIDC_CLIENT_SECRET` or a file, never from a flag (flags show in `ps`).
#[derive(Args, Debug, Clone)]
pub struct DevOidcArgs {
    /// Issuer of an OpenID Connect provider (Cognito: https://cognito-idp.REGION.amazonaws.com/POOL_ID);
    /// its endpoints come from its discovery document.
    #[arg(long, env = "DEV_OIDC_ISSUER", requires = "oidc_client_id")]
    pub oidc_issuer: Option<String>,

    /// The provider's app client for browser logins (callback http://localhost:PORT/oauth2/idpresponse).
    #[arg(long, env = "DEV_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// File holding the client secret (else the DEV_OIDC_CLIENT_SECRET variable).
    #[arg(long, env = "DEV_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<std::path::PathBuf>,

    /// Scope of the authorisation request (default: `openid`; the built-in provider: `openid email`).
    #[arg(long, env = "DEV_OIDC_SCOPE")]
    pub oidc_scope: Option<String>,

    /// Extra authorisation-request parameter KEY=VALUE (repeatable, at most 10, like the ALB).
    #[arg(long = "oidc-auth-param", value_parser = parse_key_value, num_args = 1)]
    pub oidc_auth_params: Vec<(String, String)>,

    /// Where the API's /logout sends the browser (Cognito: https://DOMAIN/logout?client_id=…&logout_uri=http://localhost:PORT/logged-out);
    /// default: the provider's end_session_endpoint.
    #[arg(long, env = "DEV_OIDC_LOGOUT_URL")]
    pub oidc_logout_url: Option<String>,

    /// Session cookie name (shards NAME-0..NAME-3).
    #[arg(
        long,
        env = "DEV_SESSION_COOKIE_NAME",
        default_value = "AWSELBAuthSessionCookie"
    )]
    pub session_cookie_name: String,

    /// Longest session, in seconds (`SessionTimeout`; the templates use 28800).
    #[arg(long, env = "DEV_SESSION_TIMEOUT_SECS", default_value_t = 28_800)]
    pub session_timeout_secs: u64,

    /// What a request without a session gets (`OnUnauthenticatedRequest`).
    #[arg(long, env = "DEV_ON_UNAUTHENTICATED", value_enum, default_value_t = crate::local_alb::OnUnauthenticated::Authenticate)]
    pub on_unauthenticated: crate::local_alb::OnUnauthenticated,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

impl DevArgs {
    /// `dev`'s settings when no subcommand is given (a bare `cargo run`).
    pub fn parse_default() -> DevArgs {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            dev: DevArgs,
        }
        Bare::parse_from(["players-api"]).dev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct ServeOnly {
        #[command(flatten)]
        serve: ServeSettings,
    }

    fn parse(args: &[&str]) -> ServeSettings {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        ServeOnly::try_parse_from(argv).unwrap().serve
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
        assert!(printed.contains("REDACTED"), "{printed}");
    }
}
