//! The local ALB's own pages: who is logged in (`/`), a login link that starts the
//! `authenticate-oidc` flow (`/login?next=…`), and the signed-out page the IdP's logout returns
//! to (`/logged-out`, public, like the fixed-response rule of the real listener).

use std::sync::{Mutex, MutexGuard};

use actix_web::{HttpRequest, HttpResponse, http::header, web};

use super::{Settings, oidc::Rp, session::CookieSealer};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// HTML-escapes text for element content and quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Only same-site paths: `/x`, never `//host` or `/\host`, which browsers treat as other hosts.
pub(crate) fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.contains('\\')
            && !n.chars().any(char::is_control)
    })
}

pub(crate) fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>\
             body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}}\
             fieldset{{margin:1rem 0;border:1px solid #ccc;border-radius:6px}}\
             label{{display:block;margin:.3rem 0}}\
             button{{padding:.5rem 1.2rem;font-size:1rem}}\
             .note{{color:#666;font-size:.9rem}}\
             </style></head><body>{body}</body></html>",
            title = esc(title),
        ))
}

pub(crate) fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /login?next=…`: starts the `authenticate-oidc` flow towards `next` (or the landing page).
pub(crate) async fn login(
    req: HttpRequest,
    settings: web::Data<Settings>,
    sealer: web::Data<CookieSealer>,
    rp: web::Data<Rp>,
) -> HttpResponse {
    let next = query_param(&req, "next");
    let target = safe_next(next.as_deref()).unwrap_or(&settings.landing_path);
    rp.start_login(&req, &settings, &sealer, target)
}

/// `GET /logged-out`: where the IdP's logout sends the browser. Public, or the "ALB" would log
/// the user straight back in.
pub(crate) async fn logged_out() -> HttpResponse {
    page(
        "Signed out",
        "<h1>Signed out</h1><p>You are signed out of players-api.</p><p><a href=\"/login\">Sign in again</a></p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(safe_next(Some("/v1/me?x=1")), Some("/v1/me?x=1"));
        assert_eq!(safe_next(Some("//evil.example/")), None);
        assert_eq!(safe_next(Some("/\\evil.example")), None);
        assert_eq!(safe_next(Some("https://evil.example/")), None);
        assert_eq!(safe_next(Some("/a\r\nSet-Cookie: x")), None);
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn escaping_covers_attribute_breakers() {
        assert_eq!(
            esc(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
