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

    /// Port of the local ALB stand-in (login page, proxy, key endpoint, issuer) on 127.0.0.1.
    #[arg(long, default_value_t = crate::local_alb::DEFAULT_PORT)]
    pub alb_port: u16,
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
