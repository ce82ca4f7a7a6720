//! HTTP routes. `ROUTES` is the one table of every route, its method and the permission it
//! requires: the `Principal` extractor enforces it, `/v1/admin/routes` lists it, and tests
//! compare it with the router and the OpenAPI document.

pub mod docs;
pub mod extract;
pub mod health;
mod merge_patch;
pub mod players;

use actix_web::{HttpRequest, error::QueryPayloadError, http::Method, web};
use serde::Serialize;

use crate::{auth::Permission, error::ApiError};

/// Registers every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
        .configure(health::configure)
        .configure(docs::configure)
        .configure(players::configure);
}

fn query_error(e: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest {
        code: "invalid_query",
        detail: e.to_string(),
    }
    .into()
}

/// The answer for a method a resource does not have.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// The answer for a path no route matches.
pub async fn no_route() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NoRoute)
}

/// One route of the API.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RouteSpec {
    #[serde(serialize_with = "ser_method")]
    pub method: &'static Method,
    /// The path pattern as registered with actix (`/v1/players/{id}`).
    pub path: &'static str,
    /// `None` for public routes.
    pub permission: Option<Permission>,
}

fn ser_method<S: serde::Serializer>(m: &&'static Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

const fn route(
    method: &'static Method,
    path: &'static str,
    permission: Option<Permission>,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        permission,
    }
}

use Permission::*;
pub static ROUTES: &[RouteSpec] = &[
    route(&Method::GET, "/health", None),
    route(&Method::GET, "/ready", None),
    route(&Method::GET, "/openapi.json", None),
    route(&Method::GET, "/v1/players", Some(PlayersRead)),
    route(&Method::POST, "/v1/players", Some(PlayersWrite)),
    route(&Method::GET, "/v1/players/{id}", Some(PlayersRead)),
    route(&Method::PATCH, "/v1/players/{id}", Some(PlayersWrite)),
    route(&Method::DELETE, "/v1/players/{id}", Some(PlayersDelete)),
];

/// The permission the matched route requires; `None` if the route is not in the table or is
/// public (a `Principal` extractor on such a route then refuses the request).
pub fn required_permission(req: &HttpRequest) -> Option<Permission> {
    let pattern = req.match_pattern()?;
    ROUTES
        .iter()
        .find(|r| r.method == req.method() && r.path == pattern)
        .and_then(|r| r.permission)
}
