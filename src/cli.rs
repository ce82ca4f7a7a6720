//! The command line: `players-api <command>`; a bare `players-api` runs `dev`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::config::{DatabaseSettings, LogSettings, ServeSettings};

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
