//! What each command does, wired from configuration. `main` only parses and dispatches.

use std::{net::TcpListener, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use secrecy::ExposeSecret;
use tracing_subscriber::Registry;

use crate::{
    auth::{AuthSettings, Authenticator, IdentityAuthenticator},
    cli::{self, DevArgs, HealthcheckArgs, MigrateArgs, ServeSettings},
    config::{ConfigError, DatabaseSettings, LogFormat, LogSettings},
    local_alb::{self, LocalAlbConfig},
    routes::logout::LogoutConfig,
    secrets::{self, CredentialRefresher, DbCredentials, SecretsClient},
    shutdown::{self, ShutdownFlag},
    startup::{AppState, Application},
    store::{self, PlayerStore, PoolSettings, PostgresStore},
    telemetry::{self, metrics},
};

async fn open_store(db: &DatabaseSettings) -> anyhow::Result<Arc<dyn PlayerStore>> {
    let url = db.url()?;
    let store = store::connect(&url, &PoolSettings::from(db)).await?;
    if db.run_migrations {
        store.migrate().await?;
    }
    Ok(store)
}

pub async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    let otel = telemetry::otel::init::<Registry>(&settings.otel)?;
    let (otel_layer, otel_guard) = match otel {
        Some((layer, guard)) => (Some(layer), Some(guard)),
        None => (None, None),
    };
    telemetry::logging::init(&settings.log, otel_layer)?;
    settings.validate(cli::running_on_ecs())?;
    let (secrets, secrets_client) = secrets::load_startup_secrets(&settings.secrets).await?;
    let settings = secrets::overlay(settings, &secrets.app)?;
    settings.validate(cli::running_on_ecs())?;
    // Refuses to start without an identity provider, naming the variable to set.
    let authenticator: Arc<dyn Authenticator + Send + Sync> = Arc::new(
        IdentityAuthenticator::from_settings(&settings.auth)
            .map_err(|e| ConfigError::new(e.variable(), e.to_string()))?,
    );
    crate::auth::authenticator::warn_weak_settings(&settings.auth);
    let recorder = metrics::Recorder::new(settings.metrics.clone());
    let flusher = recorder.spawn_flusher();
    metrics::install(recorder);
    let store = serve_store(&settings, secrets.db, secrets_client).await?;
    let sweeper = store::sweeper::spawn(store.clone(), settings.sweep.clone());
    let listener = TcpListener::bind(settings.listen_addr)
        .with_context(|| format!("binding LISTEN_ADDR {}", settings.listen_addr))?;
    let ready = ShutdownFlag::default();
    let app = Application::build_with_drain(
        listener,
        AppState {
            store,
            authenticator,
            logout: LogoutConfig::from_settings(&settings.auth),
            ready_timeout: settings.database.ready_timeout(),
            shutdown: ready.clone(),
            http: settings.http,
        },
        settings.shutdown.timeout_secs,
    )?;
    tracing::info!(port = app.port(), "players-api serving");
    shutdown::run_until_stopped(
        app.into_server(),
        || ready.trip(),
        &settings.shutdown,
        shutdown::termination_signal(),
    )
    .await?;
    sweeper.abort();
    if let Some(flusher) = flusher {
        flusher.abort();
    }
    shutdown::flush_telemetry(otel_guard, Duration::from_secs(5)).await;
    tracing::info!(event = "shutdown", "stopped");
    Ok(())
}

/// The production store: DATABASE_URL as given, or PostgreSQL at DB_HOST with the
/// credentials of DB_SECRET_ARN, re-read on rotation.
async fn serve_store(
    settings: &ServeSettings,
    credentials: Option<DbCredentials>,
    client: Option<SecretsClient>,
) -> anyhow::Result<Arc<dyn PlayerStore>> {
    let db = &settings.database;
    if db.is_sqlite() {
        return open_store(db).await;
    }
    let store = match &db.database_url {
        Some(url) => PostgresStore::connect(url.expose_secret(), &PoolSettings::from(db)).await?,
        None => {
            let base = db.pg_options()?;
            let options = credentials
                .as_ref()
                .map_or(base.clone(), |c| c.apply_to(&base));
            let mut store = PostgresStore::with_options(options, &PoolSettings::from(db));
            if let (Some(credentials), Some(client), Some(secret_id)) =
                (credentials, client, settings.secrets.db_secret_arn.clone())
            {
                let refresher = CredentialRefresher::new(
                    client,
                    secret_id,
                    store.pool().clone(),
                    base,
                    credentials,
                );
                refresher.spawn_schedule_from(&settings.secrets);
                store = store.with_refresher(refresher);
            }
            store
        }
    };
    store.spawn_pool_sampler(Duration::from_secs(10));
    if db.run_migrations {
        store.migrate().await?;
    }
    Ok(Arc::new(store))
}

/// `players-api healthcheck`.
pub fn healthcheck(args: &HealthcheckArgs) -> ExitCode {
    match shutdown::healthcheck(&args.listen_addr, Duration::from_secs(args.timeout_secs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("players-api healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `players-api openapi`: the document the server serves at /openapi.json.
pub fn print_openapi() -> anyhow::Result<()> {
    use std::io::Write;
    let doc = serde_json::to_string_pretty(crate::routes::docs::document())?;
    writeln!(std::io::stdout().lock(), "{doc}").context("writing the document to stdout")?;
    Ok(())
}

/// `players-api migrate`: the migrations as the owner (DATABASE_URL, or DB_HOST with the
/// owner's DB_SECRET_ARN), then, with DB_APP_SECRET_ARN, the runtime role and its grants.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    telemetry::logging::init::<tracing_subscriber::layer::Identity>(&args.log, None)?;
    args.database.validate()?;
    let mut db = args.database;
    db.run_migrations = true;
    if db.is_sqlite() {
        open_store(&db).await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let (secrets, client) = secrets::load_startup_secrets(&args.secrets).await?;
    let store = match &db.database_url {
        Some(url) => PostgresStore::connect(url.expose_secret(), &PoolSettings::from(&db)).await?,
        None => {
            let base = db.pg_options()?;
            let options = secrets
                .db
                .as_ref()
                .map_or(base.clone(), |c| c.apply_to(&base));
            PostgresStore::with_options(options, &PoolSettings::from(&db))
        }
    };
    store.migrate().await?;
    tracing::info!("migrations applied");
    if let Some(arn) = &args.db_app_secret_arn {
        let client = match client {
            Some(c) => c,
            None => SecretsClient::from_env().await,
        };
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(args.secrets.startup_deadline_secs);
        let app = client
            .db_credentials(arn, "DB_APP_SECRET_ARN", deadline)
            .await?;
        let role = store::grants::base_role(&app.username);
        // The password is only used to create the role; a rotated role keeps its own.
        let password = (role == app.username).then_some(&app.password);
        let report = store::grants::ensure_runtime_role(store.pool(), role, password).await?;
        tracing::info!(
            role = %report.role,
            created = report.created,
            clone_present = report.clone_present,
            "runtime role granted"
        );
    }
    Ok(())
}

/// The identity variables `dev` takes from its own environment, as `serve` would: the policy
/// (which claim holds the groups, which groups and scopes give which permissions) and, with
/// another provider, its machine clients. Everything else the local ALB determines.
const DEV_IDENTITY_PASSTHROUGH: &[&str] = &[
    "ALB_GROUPS_SOURCE",
    "ALB_EXP_SKEW_SECS",
    "AUTH_GROUPS_CLAIM",
    "AUTH_GROUP_PERMISSIONS",
    "AUTH_SCOPE_PREFIX",
    "AUTH_SCOPE_PERMISSIONS",
    "BEARER_CLIENT_IDS",
    "BEARER_AUDIENCES",
];

/// The local ALB's settings from `dev`'s arguments: the built-in provider, or the one named by
/// `--oidc-issuer` with its client secret from a file or `DEV_OIDC_CLIENT_SECRET`.
fn local_alb_config(args: &DevArgs, upstream: String) -> anyhow::Result<LocalAlbConfig> {
    let o = &args.oidc;
    anyhow::ensure!(
        o.oidc_auth_params.len() <= 10,
        "--oidc-auth-param: at most 10 extra parameters (the ALB's limit)"
    );
    let idp = match &o.oidc_issuer {
        None => None,
        Some(issuer) => {
            let client_id = o
                .oidc_client_id
                .clone()
                .context("--oidc-issuer needs --oidc-client-id (DEV_OIDC_CLIENT_ID)")?;
            let secret = match &o.oidc_client_secret_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading the client secret file {}", path.display()))?
                    .trim()
                    .to_owned(),
                None => std::env::var("DEV_OIDC_CLIENT_SECRET").context(
                    "the client secret: set DEV_OIDC_CLIENT_SECRET or --oidc-client-secret-file",
                )?,
            };
            anyhow::ensure!(!secret.is_empty(), "the client secret is empty");
            Some(local_alb::ExternalIdp {
                issuer: issuer.clone(),
                client_id,
                client_secret: secret.into(),
                logout_url: o.oidc_logout_url.clone(),
            })
        }
    };
    Ok(LocalAlbConfig {
        port: args.alb_port,
        upstream,
        idp,
        scope: o.oidc_scope.clone(),
        extra_params: o.oidc_auth_params.clone(),
        on_unauthenticated: o.on_unauthenticated,
        cookie_name: o.session_cookie_name.clone(),
        session_ttl: Duration::from_secs(o.session_timeout_secs),
        // After the login, the web app (the stand-in answers `/` with its own page).
        landing_path: "/".to_owned(),
        ..LocalAlbConfig::default()
    })
}

/// The API's identity variables for `dev`: the local ALB's, then the policy variables of this
/// process's environment. Bearer authentication needs a client or audience list; with another
/// provider and neither given, it stays off.
fn dev_identity_env(alb: &local_alb::LocalAlb) -> Vec<(&'static str, String)> {
    let mut env = alb.api_env();
    for name in DEV_IDENTITY_PASSTHROUGH {
        if let Ok(value) = std::env::var(name) {
            env.retain(|(k, _)| k != name);
            env.push((name, value));
        }
    }
    if !env
        .iter()
        .any(|(k, _)| *k == "BEARER_CLIENT_IDS" || *k == "BEARER_AUDIENCES")
    {
        env.retain(|(k, _)| !k.starts_with("BEARER_"));
    }
    env
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
    if args.print_identity_env {
        let alb = local_alb::start(local_alb_config(&args, "http://127.0.0.1:9".into())?)
            .await
            .context("starting the local ALB")?;
        let env: serde_json::Map<String, serde_json::Value> = dev_identity_env(&alb)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "env": env,
                "scope": alb.scope(),
                "service_client_ids": alb.client_ids(),
                "callback_url": alb.callback_url(),
            })
        );
        alb.stop().await;
        return Ok(());
    }
    let store = open_store(&DatabaseSettings::for_url(&args.database_url)).await?;
    store::sweeper::spawn(store.clone(), crate::config::defaults());
    let listener = TcpListener::bind(args.listen_addr)
        .with_context(|| format!("binding {}", args.listen_addr))?;
    // The local ALB stand-in; the API trusts it through its normal identity settings (the
    // same variables `serve` reads), with full verification: there is no bypass.
    let alb = local_alb::start(local_alb_config(
        &args,
        format!("http://{}", listener.local_addr()?),
    )?)
    .await
    .context("starting the local ALB")?;
    let auth = AuthSettings::from_pairs(&dev_identity_env(&alb))
        .context("identity settings for the local ALB")?;
    let authenticator: Arc<dyn Authenticator + Send + Sync> = Arc::new(
        IdentityAuthenticator::from_settings(&auth)
            .context("identity settings for the local ALB")?,
    );
    let app = Application::build(
        listener,
        AppState {
            store,
            authenticator,
            logout: LogoutConfig::from_settings(&auth),
            ready_timeout: std::time::Duration::from_secs(1),
            shutdown: ShutdownFlag::default(),
            http: crate::config::HttpSettings::default(),
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
