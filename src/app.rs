//! What each command does, wired from configuration. `main` only parses and dispatches.

use std::{net::TcpListener, sync::Arc};

use anyhow::Context;

use crate::{
    auth::{AuthSettings, Authenticator, IdentityAuthenticator},
    cli::{DevArgs, MigrateArgs},
    config::{self, ConfigError, DatabaseSettings, LogFormat, LogSettings, ServeSettings},
    local_alb::{self, LocalAlbConfig},
    routes::health::ShutdownFlag,
    startup::{AppState, Application},
    store::{self, PlayerStore},
    telemetry,
};

async fn open_store(db: &DatabaseSettings) -> anyhow::Result<Arc<dyn PlayerStore>> {
    let url = db.url()?;
    let store = store::connect(&url, &db.pool()).await?;
    if db.run_migrations {
        store.migrate().await?;
    }
    Ok(store)
}

pub async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    telemetry::logging::init::<tracing_subscriber::layer::Identity>(&settings.log, None)?;
    settings.validate(config::running_on_ecs())?;
    // Refuses to start without an identity provider, naming the variable to set.
    let authenticator: Arc<dyn Authenticator + Send + Sync> = Arc::new(
        IdentityAuthenticator::from_settings(&settings.auth)
            .map_err(|e| ConfigError::new(e.variable(), e.to_string()))?,
    );
    settings.auth.warn_weak_settings();
    let store = open_store(&settings.database).await?;
    let listener = TcpListener::bind(settings.listen_addr)
        .with_context(|| format!("binding LISTEN_ADDR {}", settings.listen_addr))?;
    let app = Application::build(
        listener,
        AppState {
            store,
            authenticator,
            logout: settings.auth.logout_config(),
            ready_timeout: settings.database.ready_timeout(),
            shutdown: ShutdownFlag::default(),
        },
    )?;
    tracing::info!(port = app.port(), "players-api serving");
    app.run_until_stopped().await?;
    Ok(())
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    telemetry::logging::init::<tracing_subscriber::layer::Identity>(&args.log, None)?;
    args.database.validate()?;
    let mut db = args.database;
    db.run_migrations = true;
    open_store(&db).await?;
    tracing::info!("migrations applied");
    Ok(())
}

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let log = LogSettings {
        log_level: std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        log_format: LogFormat::Pretty,
    };
    telemetry::logging::init::<tracing_subscriber::layer::Identity>(&log, None)?;
    if !args.listen_addr.ip().is_loopback() {
        anyhow::bail!("dev serves a local identity and only binds loopback addresses");
    }
    let store = open_store(&DatabaseSettings::for_url(&args.database_url)).await?;
    let listener = TcpListener::bind(args.listen_addr)
        .with_context(|| format!("binding {}", args.listen_addr))?;
    // The local ALB stand-in; the API trusts it through its normal identity settings (the
    // same variables `serve` reads), with full verification: there is no bypass.
    let alb = local_alb::start(LocalAlbConfig {
        port: args.alb_port,
        upstream: format!("http://{}", listener.local_addr()?),
        ..LocalAlbConfig::default()
    })
    .await
    .context("starting the local ALB")?;
    let auth =
        AuthSettings::from_pairs(&alb.api_env()).context("identity settings for the local ALB")?;
    let authenticator: Arc<dyn Authenticator + Send + Sync> = Arc::new(
        IdentityAuthenticator::from_settings(&auth)
            .context("identity settings for the local ALB")?,
    );
    let app = Application::build(
        listener,
        AppState {
            store,
            authenticator,
            logout: auth.logout_config(),
            ready_timeout: std::time::Duration::from_secs(1),
            shutdown: ShutdownFlag::default(),
        },
    )?;
    let base = format!("http://127.0.0.1:{}", app.port());
    eprintln!(
        "players-api dev: API on {base} (direct calls need a bearer token)  (Ctrl-C to stop)"
    );
    eprintln!("{}", alb.banner());
    let handle = app.handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            handle.stop(true).await;
        }
    });
    app.run_until_stopped().await?;
    Ok(())
}
