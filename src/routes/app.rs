//! The web app for browser users: one HTML page at `/` and its static assets (plain HTML, CSS
//! and ES modules from `web/`, embedded in the binary; no build step, no CDN). The page talks
//! to the service only through the public `/v1` API, with the ALB session cookie.
//!
//! - `GET /` (and `/index.html`): the page, `Cache-Control: no-cache`, a strict
//!   Content-Security-Policy (no inline script or style, Trusted Types required for DOM sinks).
//! - `GET /assets/{version}/{file}`: the assets; `{version}` is a hash of all of them, so the
//!   URLs change whenever an asset does and the answers can be cached for a year.
//! - `GET /v1/countries`: the FIFA nations the API accepts (`code`, `name`), for the forms.

use std::sync::OnceLock;

use actix_web::{HttpResponse, http::header, web};
use aws_lc_rs::digest;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{auth::Principal, domain::NATIONS, error::ApiError};

/// Every embedded asset: file name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/dom.js"),
    ),
    (
        "list.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/list.js"),
    ),
    (
        "player.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/player.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/ui.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../web/icon.svg"),
    ),
];

const INDEX: &str = include_str!("../../web/index.html");
const VERSION_PLACEHOLDER: &str = "{{ASSET_VERSION}}";

/// The page's policy: only this origin's scripts, styles, images and API; DOM sinks
/// (`innerHTML` and friends) refuse strings, so the app cannot inject markup by mistake.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; \
     require-trusted-types-for 'script'; trusted-types 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/", "/index.html"] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(index))
                .default_service(web::to(super::unrouted)),
        );
    }
    cfg.service(
        web::resource("/assets/{version}/{file}")
            .route(web::get().to(asset))
            .default_service(web::to(super::unrouted)),
    )
    .service(
        web::resource("/v1/countries")
            .route(web::get().to(countries))
            .default_service(web::to(super::unrouted)),
    );
}

/// A hash of every asset: part of each asset URL, so a new binary means new URLs.
pub fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for (name, _, bytes) in ASSETS {
            ctx.update(name.as_bytes());
            ctx.update(&(bytes.len() as u64).to_le_bytes());
            ctx.update(bytes);
        }
        ctx.finish()
            .as_ref()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

fn index_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| INDEX.replace(VERSION_PLACEHOLDER, asset_version()))
}

fn security_headers(builder: &mut actix_web::HttpResponseBuilder) {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
}

async fn index() -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    security_headers(&mut builder);
    builder
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        // Always revalidated: the page names the current asset version.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(index_html())
}

async fn asset(path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (version, file) = path.into_inner();
    if version != asset_version() {
        // An old page asking for assets this binary no longer has: never serve new bytes
        // under an old (cached-for-a-year) URL.
        return Err(ApiError::NoRoute);
    }
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or(ApiError::NoRoute)?;
    let mut builder = HttpResponse::Ok();
    security_headers(&mut builder);
    Ok(builder
        .insert_header((header::CONTENT_TYPE, *content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(*bytes))
}

/// A FIFA member association.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountryEntry {
    /// The FIFA three-letter code, e.g. `ENG`.
    pub code: &'static str,
    pub name: &'static str,
}

/// The FIFA nations a player's `country` may be, sorted by code. Any authenticated caller.
#[utoipa::path(
    get,
    path = "/v1/countries",
    tag = "players",
    responses(
        (status = 200, description = "Every accepted country code with its name", body = [CountryEntry]),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`csrf_rejected`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[tracing::instrument(name = "handler.countries", skip_all)]
pub async fn countries(_principal: Principal) -> HttpResponse {
    let list: Vec<CountryEntry> = NATIONS
        .iter()
        .map(|(code, name)| CountryEntry { code, name })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .json(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, body::to_bytes, test as at};

    #[actix_web::test]
    async fn the_page_names_the_current_asset_version_and_sends_a_strict_policy() {
        let app = at::init_service(App::new().configure(configure)).await;
        let res = at::call_service(&app, at::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h.get("content-security-policy").unwrap(), CSP);
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("cache-control").unwrap(), "no-cache");
        let body = String::from_utf8(to_bytes(res.into_body()).await.unwrap().to_vec()).unwrap();
        assert!(body.contains(&format!("/assets/{}/app.js", asset_version())));
        assert!(!body.contains(VERSION_PLACEHOLDER));
        assert!(!body.contains("<script>"), "no inline script");
        assert!(!CSP.contains("unsafe"), "no unsafe-* source in the policy");
    }

    #[actix_web::test]
    async fn assets_are_immutable_under_their_version_and_absent_under_any_other() {
        let app = at::init_service(App::new().configure(configure)).await;
        for (name, content_type, bytes) in ASSETS {
            let uri = format!("/assets/{}/{name}", asset_version());
            let res = at::call_service(&app, at::TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(res.status(), 200, "{uri}");
            assert_eq!(res.headers().get("content-type").unwrap(), content_type);
            assert_eq!(
                res.headers().get("cache-control").unwrap(),
                "public, max-age=31536000, immutable"
            );
            assert_eq!(
                res.headers().get("x-content-type-options").unwrap(),
                "nosniff"
            );
            assert_eq!(&to_bytes(res.into_body()).await.unwrap()[..], *bytes);
        }
        for uri in [
            "/assets/000000000000/app.js".to_owned(),
            format!("/assets/{}/nope.js", asset_version()),
            format!("/assets/{}/..%2Fsrc%2Flib.rs", asset_version()),
        ] {
            let res = at::call_service(&app, at::TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(res.status(), 404, "{uri}");
        }
    }

    #[test]
    fn the_version_is_a_short_hex_hash() {
        let v = asset_version();
        assert_eq!(v.len(), 12);
        assert!(v.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
