//! Liveness and readiness, both public.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    error::{ApiError, Problem},
    shutdown::ShutdownFlag,
    store::PlayerStore,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// How long `/ready` waits for the database.
#[derive(Clone, Copy, Debug)]
pub struct ReadyTimeout(pub Duration);

/// Liveness: the process serves HTTP. Checks no dependency, so a database outage does not
/// get healthy tasks killed.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Status)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Readiness: the database answers within READY_TIMEOUT_MS and the service is not shutting
/// down.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Status),
        (status = 503, description = "`not_ready`: database unreachable or shutting down", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(
    store: web::Data<dyn PlayerStore>,
    timeout: web::Data<ReadyTimeout>,
    shutdown: web::Data<ShutdownFlag>,
) -> Result<HttpResponse, ApiError> {
    if shutdown.is_set() {
        return Err(ApiError::Unavailable);
    }
    match tokio::time::timeout(timeout.0, store.ping()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Status { status: "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "readiness check failed");
            Err(ApiError::Unavailable)
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            Err(ApiError::Unavailable)
        }
    }
}
