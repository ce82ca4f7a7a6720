//! HTTP routes. `ROUTES` is the one table of every route, its method and the permission it
//! requires: the `Principal` extractor enforces it, `/v1/admin/routes` lists it, and tests
//! compare it with the router and the OpenAPI document.

use actix_web::{HttpRequest, http::Method};
use serde::Serialize;

use crate::auth::Permission;

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
