//! Building the HTTP application from its dependencies. Tests build it the same way, on
//! port 0, with their own store and authenticator.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    App, HttpRequest, HttpServer,
    dev::{Server, ServerHandle},
    error::JsonPayloadError,
    middleware::from_fn,
    web,
};

use crate::{
    auth::Authenticator,
    config::HttpSettings,
    error::ApiError,
    routes::{self, extract::MAX_BODY_BYTES, health::ReadyTimeout},
    shutdown::ShutdownFlag,
    store::PlayerStore,
    telemetry::request::{RouteNames, request_context},
};

/// Everything the handlers depend on, built once.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn PlayerStore>,
    pub authenticator: Arc<dyn Authenticator + Send + Sync>,
    /// `GET /logout`: cookie name and IdP logout URL.
    pub logout: routes::logout::LogoutConfig,
    pub ready_timeout: Duration,
    pub shutdown: ShutdownFlag,
    /// Keep-alive and read timeouts.
    pub http: HttpSettings,
}

/// Drain time when none is configured (tests, dev).
const DEFAULT_DRAIN_SECS: u64 = 25;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Serves on `listener` (bind it to port 0 in tests).
    pub fn build(listener: TcpListener, state: AppState) -> anyhow::Result<Application> {
        Self::build_with_drain(listener, state, DEFAULT_DRAIN_SECS)
    }

    /// As `build`, with the time in-flight requests get to finish once the server stops
    /// accepting (SHUTDOWN_TIMEOUT_SECS).
    pub fn build_with_drain(
        listener: TcpListener,
        state: AppState,
        drain_secs: u64,
    ) -> anyhow::Result<Application> {
        let port = listener.local_addr()?.port();
        let http = state.http;
        let server = HttpServer::new(move || {
            let authenticator: Arc<dyn Authenticator> = state.authenticator.clone();
            App::new()
                .wrap(from_fn(request_context))
                .app_data(RouteNames(routes::pattern_of))
                .app_data(web::Data::from(state.store.clone()))
                .app_data(web::Data::from(authenticator))
                .app_data(web::Data::new(state.logout.clone()))
                .app_data(web::Data::new(ReadyTimeout(state.ready_timeout)))
                .app_data(web::Data::new(state.shutdown.clone()))
                .app_data(web::Data::new(state.http))
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .error_handler(json_error),
                )
                .configure(routes::configure)
                .default_service(web::to(routes::unrouted))
        })
        .keep_alive(http.keep_alive())
        .client_request_timeout(http.request_head_timeout())
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(drain_secs)
        .run();
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (gracefully, draining in-flight requests) from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The server future, for `shutdown::run_until_stopped`'s signal handling.
    pub fn into_server(self) -> Server {
        self.server
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The JSON extractor's rejections as problem documents, like every other error.
fn json_error(e: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match e {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::Validation(vec![crate::domain::FieldError::new(
                "",
                "invalid_body",
                e.to_string(),
            )])
        }
        other => ApiError::MalformedJson(other.to_string()),
    }
    .into()
}
