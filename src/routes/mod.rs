//! HTTP routes. `ROUTES` is the one table of every route, its method and the permission it
//! requires: the `Principal` extractor enforces it, `/v1/admin/routes` lists it, and tests
//! compare it with the router and the OpenAPI document.

pub mod admin;
pub mod app;
pub mod audit;
pub mod docs;
pub mod extract;
pub mod health;
pub mod logout;
pub mod me;
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
        .configure(players::configure)
        .configure(me::configure)
        .configure(admin::configure)
        .configure(audit::configure)
        .configure(logout::configure)
        .configure(app::configure);
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
    /// The permission required; `None` for public routes and for routes open to any
    /// authenticated caller (`public` tells them apart).
    pub permission: Option<Permission>,
    /// No authentication at all (health, docs, logout).
    pub public: bool,
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
        public: permission.is_none(),
    }
}

/// A route any authenticated caller may use, whatever their permissions.
const fn authenticated(method: &'static Method, path: &'static str) -> RouteSpec {
    RouteSpec {
        method,
        path,
        permission: None,
        public: false,
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
    authenticated(&Method::GET, "/v1/me"),
    authenticated(&Method::GET, "/v1/countries"),
    route(&Method::GET, "/v1/admin/routes", Some(Admin)),
    route(&Method::GET, "/v1/admin/audit", Some(Admin)),
    route(&Method::GET, "/logout", None),
];

/// The table entry of the matched route, if any.
pub fn route_spec(req: &HttpRequest) -> Option<&'static RouteSpec> {
    let pattern = req.match_pattern()?;
    ROUTES
        .iter()
        .find(|r| r.method == req.method() && r.path == pattern)
}
