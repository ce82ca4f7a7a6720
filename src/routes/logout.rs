//! `GET /logout`: ends the ALB session. Public: the page must not itself require
//! authentication, or the ALB would log the user straight back in.
//!
//! Expires every ALB session cookie shard (`<name>-0` .. `<name>-3`; the ALB splits large
//! sessions over up to four cookies) with a past expiry, then redirects to the IdP's logout
//! endpoint (`AUTH_LOGOUT_URL`, e.g. Cognito's `/logout?client_id=..&logout_uri=..`), which
//! ends the IdP session too.

use actix_web::{
    HttpResponse,
    cookie::{
        Cookie, SameSite,
        time::{Duration, OffsetDateTime},
    },
    get,
    http::header,
    web,
};

use crate::auth::AuthSettings;

/// Settings for `/logout`, from `AuthSettings` (`AUTH_SESSION_COOKIE_NAME`, `AUTH_LOGOUT_URL`).
#[derive(Clone, Debug)]
pub struct LogoutConfig {
    pub cookie_name: String,
    pub logout_url: Option<String>,
}

impl LogoutConfig {
    pub fn from_settings(auth: &AuthSettings) -> Self {
        LogoutConfig {
            cookie_name: auth.auth_session_cookie_name.clone(),
            logout_url: auth.auth_logout_url.clone().filter(|u| !u.is_empty()),
        }
    }
}

/// The ALB's default session cookie and no IdP logout URL (`AuthSettings`' defaults).
impl Default for LogoutConfig {
    fn default() -> Self {
        LogoutConfig::from_settings(&crate::config::defaults())
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(logout);
}

/// Ends the ALB session: expires the session cookie shards and redirects to the IdP logout.
#[utoipa::path(
    get,
    path = "/logout",
    tag = "identity",
    responses(
        (status = 302, description = "Cookies expired; redirect to AUTH_LOGOUT_URL"),
        (status = 200, description = "Cookies expired (no AUTH_LOGOUT_URL configured)"),
    ),
    security(())
)]
#[get("/logout")]
pub async fn logout(config: Option<web::Data<LogoutConfig>>) -> HttpResponse {
    let config = config.map(|c| c.get_ref().clone()).unwrap_or_default();
    let mut resp = match &config.logout_url {
        Some(url) => {
            let mut r = HttpResponse::Found();
            r.insert_header((header::LOCATION, url.as_str()));
            r
        }
        None => HttpResponse::Ok(),
    };
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    for shard in 0..4 {
        let cookie = Cookie::build(format!("{}-{shard}", config.cookie_name), "")
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(SameSite::Lax)
            .expires(OffsetDateTime::UNIX_EPOCH)
            .max_age(Duration::ZERO)
            .finish();
        resp.cookie(cookie);
    }
    match config.logout_url {
        Some(_) => resp.finish(),
        None => resp.json(serde_json::json!({ "logged_out": true })),
    }
}
