//! The login page, the session store and the IdP logout page of the local ALB.
//!
//! A session is a random id in the `<cookie_name>-0` cookie (HttpOnly, SameSite=Lax), like the
//! ALB's; the identity behind it (user and chosen groups) stays in memory here.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex, MutexGuard},
};

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::header,
    web,
};

use super::{DevUser, LOGIN_PATH, Settings, signing::random_hex};

/// Upper bound on live sessions; a dev tool, but memory stays bounded all the same.
const MAX_SESSIONS: usize = 10_000;
/// The ALB splits big cookies into up to four shards; logout expires them all.
const COOKIE_SHARDS: usize = 4;

/// One logged-in browser.
#[derive(Debug)]
pub(crate) struct Session {
    pub user: DevUser,
    pub expires_at: i64,
    /// Tokens minted for this session, reused while fresh (the ALB reuses them too).
    pub minted: Mutex<Option<super::proxy::Minted>>,
}

pub(crate) struct Sessions {
    cookie_name: String,
    ttl_secs: i64,
    inner: Mutex<HashMap<String, Arc<Session>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Session ids are credentials: never printed.
        f.debug_struct("Sessions")
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sessions {
    pub fn new(cookie_name: &str, ttl_secs: i64) -> Self {
        Sessions {
            cookie_name: cookie_name.to_owned(),
            ttl_secs,
            inner: Mutex::new(HashMap::new()),
        }
    }

    /// The first shard's name, which carries the session id.
    pub fn cookie(&self) -> String {
        format!("{}-0", self.cookie_name)
    }

    fn create(&self, user: DevUser, now: i64) -> anyhow::Result<String> {
        let id = random_hex(32)?;
        let mut map = lock(&self.inner);
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires_at > now);
            if map.len() >= MAX_SESSIONS {
                // Still full of live sessions: drop the one closest to expiry.
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires_at)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            id.clone(),
            Arc::new(Session {
                user,
                expires_at: now + self.ttl_secs,
                minted: Mutex::new(None),
            }),
        );
        Ok(id)
    }

    /// The live session named by the request's cookie, if any.
    pub fn get(&self, req: &HttpRequest, now: i64) -> Option<Arc<Session>> {
        let cookie = req.cookie(&self.cookie())?;
        let mut map = lock(&self.inner);
        match map.get(cookie.value()) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(cookie.value());
                None
            }
            None => None,
        }
    }

    fn remove(&self, req: &HttpRequest) {
        if let Some(cookie) = req.cookie(&self.cookie()) {
            lock(&self.inner).remove(cookie.value());
        }
    }

    /// `Set-Cookie`s that expire every shard.
    fn expired_shards(&self) -> Vec<Cookie<'static>> {
        (0..COOKIE_SHARDS)
            .map(|i| {
                let mut c = Cookie::build(format!("{}-{i}", self.cookie_name), "")
                    .path("/")
                    .http_only(true)
                    .same_site(SameSite::Lax)
                    .finish();
                c.make_removal();
                c
            })
            .collect()
    }
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// HTML-escapes text for element content and quoted attribute values.
fn esc(s: &str) -> String {
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
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.contains('\\')
            && !n.chars().any(char::is_control)
    })
}

fn page(title: &str, body: &str) -> HttpResponse {
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

fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /`: who is logged in, and where to go.
pub(crate) async fn landing(
    req: HttpRequest,
    sessions: web::Data<Sessions>,
    settings: web::Data<Settings>,
) -> HttpResponse {
    let body = match sessions.get(&req, now()) {
        Some(s) => format!(
            "<h1>players-api (local)</h1><p>Logged in as <b>{}</b> ({}), groups: {}.</p>\
             <ul><li><a href=\"{landing}\">API docs</a></li><li><a href=\"/v1/me\">/v1/me</a></li>\
             <li><a href=\"{LOGIN_PATH}\">switch user</a></li><li><a href=\"/logout\">log out</a></li></ul>",
            esc(&s.user.username),
            esc(&s.user.email),
            if s.user.groups.is_empty() {
                "none".to_owned()
            } else {
                esc(&s.user.groups.join(", "))
            },
            landing = esc(&settings.landing_path),
        ),
        None => format!(
            "<h1>players-api (local)</h1><p>Not logged in.</p><p><a href=\"{LOGIN_PATH}\">Log in</a></p>"
        ),
    };
    page("players-api (local)", &body)
}

/// `GET /login`: pick a dev user and, optionally, the groups to log in with.
pub(crate) async fn login_page(req: HttpRequest, settings: web::Data<Settings>) -> HttpResponse {
    let next = query_param(&req, "next");
    let next = safe_next(next.as_deref()).unwrap_or(&settings.landing_path);
    let mut body = String::from(
        "<h1>Local ALB login</h1>\
         <p class=\"note\">A development stand-in for the ALB's OIDC login. Pick a user.</p>",
    );
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{LOGIN_PATH}\"><fieldset><legend>User</legend>"
    );
    for (i, u) in settings.users.iter().enumerate() {
        let _ = write!(
            body,
            "<label><input type=\"radio\" name=\"user\" value=\"{name}\"{checked}> <b>{name}</b> \
             ({email}) &mdash; groups: {groups}</label>",
            name = esc(&u.username),
            email = esc(&u.email),
            groups = if u.groups.is_empty() {
                "none".to_owned()
            } else {
                esc(&u.groups.join(", "))
            },
            checked = if i == 0 { " checked" } else { "" },
        );
    }
    body.push_str(
        "</fieldset><fieldset><legend>Groups</legend>\
         <label><input type=\"checkbox\" name=\"override_groups\" value=\"1\"> \
         use the groups ticked below instead of the user's own (none ticked = no groups)</label>",
    );
    for g in &settings.group_choices {
        let _ = write!(
            body,
            "<label><input type=\"checkbox\" name=\"group\" value=\"{g}\"> {g}</label>",
            g = esc(g)
        );
    }
    let _ = write!(
        body,
        "</fieldset><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <button type=\"submit\">Log in</button></form>",
        esc(next)
    );
    page("Local ALB login", &body)
}

/// `POST /login`: starts a session and redirects to `next` (or the landing page).
pub(crate) async fn login_submit(
    req: HttpRequest,
    form: web::Bytes,
    sessions: web::Data<Sessions>,
    settings: web::Data<Settings>,
) -> HttpResponse {
    // Refuse cross-site form posts (login CSRF): a browser sends Origin on POST.
    // The Host header itself, not `connection_info()`, which would also believe X-Forwarded-Host.
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req
            .headers()
            .get(header::HOST)
            .map_or(&b""[..], |h| h.as_bytes());
        if origin.as_bytes() != [&b"http://"[..], host].concat() {
            return HttpResponse::Forbidden().body("cross-site login refused");
        }
    }
    let mut username = None;
    let mut override_groups = false;
    let mut ticked = Vec::new();
    let mut next = None;
    for (k, v) in url::form_urlencoded::parse(&form) {
        match &*k {
            "user" => username = Some(v.into_owned()),
            "override_groups" => override_groups = true,
            "group" => ticked.push(v.into_owned()),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    let Some(user) = username
        .as_deref()
        .and_then(|name| settings.users.iter().find(|u| u.username == name))
    else {
        return HttpResponse::BadRequest().body("unknown user");
    };
    let mut user = user.clone();
    if override_groups {
        // Only groups the page offered: the form is the only way groups get in.
        user.groups = settings
            .group_choices
            .iter()
            .filter(|g| ticked.contains(g))
            .cloned()
            .collect();
    }
    let session_id = match sessions.create(user.clone(), now()) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = ?e, "local ALB: creating a session failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    tracing::info!(username = %user.username, groups = ?user.groups, "local ALB: logged in");
    let cookie = Cookie::build(sessions.cookie(), session_id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(sessions.ttl_secs))
        .finish();
    let location = safe_next(next.as_deref())
        .unwrap_or(&settings.landing_path)
        .to_owned();
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `GET /local-logout`: the IdP's logout page. Public (or the "ALB" would log the user straight
/// back in); it also ends the session and expires the cookie shards itself, should the API's
/// `/logout` not have done so.
pub(crate) async fn local_logout(req: HttpRequest, sessions: web::Data<Sessions>) -> HttpResponse {
    sessions.remove(&req);
    let mut resp = page(
        "Logged out",
        &format!(
            "<h1>Logged out</h1><p>You are logged out of the local ALB.</p><p><a href=\"{LOGIN_PATH}\">Log in again</a></p>"
        ),
    );
    for c in sessions.expired_shards() {
        let _ = resp.add_cookie(&c);
    }
    resp
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

    #[test]
    fn logout_expires_every_shard() {
        let s = Sessions::new("AWSELBAuthSessionCookie", 60);
        let shards = s.expired_shards();
        let names: Vec<_> = shards.iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(
            names,
            (0..4)
                .map(|i| format!("AWSELBAuthSessionCookie-{i}"))
                .collect::<Vec<_>>()
        );
        assert!(
            shards
                .iter()
                .all(|c| c.max_age() == Some(CookieDuration::ZERO))
        );
    }
}
