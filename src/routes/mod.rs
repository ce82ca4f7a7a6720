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
///
/// The router tries resources in this order, running the regular expression of each
/// `{segment}` pattern it passes; the players, the busiest routes, come first. No two
/// patterns overlap, so the order changes nothing else; `app` stays last all the same.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
        .configure(players::configure)
        .configure(health::configure)
        .configure(docs::configure)
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

/// The answer for a request no route takes: 405 with the `Allow` header RFC 9110 requires when
/// the path exists with other methods, otherwise 404.
pub async fn unrouted(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    let allowed = allowed_methods(req.path());
    if allowed.is_empty() {
        Err(ApiError::NoRoute)
    } else {
        Err(ApiError::MethodNotAllowed {
            allow: allowed.join(", "),
        })
    }
}

/// Paths served outside the route table (the web app and the interactive docs), all GET only.
const PAGES: &[&str] = &["/", "/index.html", "/assets/{version}/{file}", "/docs"];

/// The methods `path` is served with, in the route table's order.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|r| path_matches(r.path, path))
        .map(|r| r.method.as_str())
        .collect();
    if methods.is_empty()
        && (PAGES.iter().any(|p| path_matches(p, path)) || path.starts_with("/docs/"))
    {
        methods.push("GET");
    }
    methods.dedup();
    methods
}

/// Whether `path` matches the actix `pattern` (each `{name}` segment matches one non-empty
/// segment).
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
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

/// The table entry of the request's route, if any. Matched by segments rather than through
/// the router's `match_pattern`, which runs every registered pattern's regex again; the
/// table's patterns do not overlap, so both give the same entry (tested below).
pub fn route_spec(req: &HttpRequest) -> Option<&'static RouteSpec> {
    let path = req.path();
    ROUTES
        .iter()
        .find(|r| r.method == req.method() && path_matches(r.path, path))
}

/// The route table's pattern for `path`, whatever the method: how the request middleware
/// names a route in logs and metrics without a second pass of the router's regexes. `None`
/// for paths outside the table (the web app, the docs), which the middleware names from the
/// router.
pub fn pattern_of(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|r| path_matches(r.path, path))
        .map(|r| r.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segment matcher names the same route as the router (`match_pattern`), for every
    /// table entry and for paths near them; paths outside the table match no table pattern.
    #[actix_web::test]
    async fn pattern_of_agrees_with_the_router() {
        use actix_web::{App, dev::Service, http::header::HeaderValue, test};
        let app = test::init_service(
            App::new()
                .wrap_fn(|req, srv| {
                    let pattern = req.match_pattern().unwrap_or_default();
                    let res = srv.call(req);
                    async move {
                        let mut res = res.await?;
                        let value = HeaderValue::from_str(&pattern).unwrap();
                        res.headers_mut()
                            .insert("x-pattern".parse().unwrap(), value);
                        Ok(res)
                    }
                })
                .configure(configure)
                .default_service(web::to(unrouted)),
        )
        .await;
        let mut paths: Vec<String> = ROUTES
            .iter()
            .map(|r| {
                r.path
                    .replace("{id}", "0190a0c2-0000-7000-8000-000000000000")
            })
            .collect();
        paths.extend(
            [
                "/v1/players/x",
                "/v1/players/",
                "/v1/players/x/y",
                "/v1/me/",
                "/v1/admin",
                "/health/x",
                "/assets/v1/app.js",
                "/docs/index.html",
                "/",
                "/nothing",
            ]
            .map(String::from),
        );
        for path in paths {
            let res =
                test::call_service(&app, test::TestRequest::get().uri(&path).to_request()).await;
            let routed = res
                .headers()
                .get("x-pattern")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            match pattern_of(&path) {
                Some(pattern) => assert_eq!(routed, pattern, "{path}"),
                None => assert!(!ROUTES.iter().any(|r| r.path == routed), "{path}: {routed}"),
            }
        }
    }

    #[test]
    fn allowed_methods_follow_the_route_table() {
        assert_eq!(allowed_methods("/v1/players"), ["GET", "POST"]);
        assert_eq!(allowed_methods("/v1/players/x"), ["GET", "PATCH", "DELETE"]);
        assert_eq!(allowed_methods("/v1/players/"), Vec::<&str>::new());
        assert_eq!(allowed_methods("/v1/players/x/y"), Vec::<&str>::new());
        assert_eq!(allowed_methods("/assets/v1/app.js"), ["GET"]);
        assert_eq!(allowed_methods("/docs/index.html"), ["GET"]);
        assert_eq!(allowed_methods("/nothing"), Vec::<&str>::new());
    }
}
