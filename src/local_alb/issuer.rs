//! The built-in identity provider: a minimal OpenID Connect provider in the shape of a Cognito
//! user pool, so that the local ALB runs the same `authenticate-oidc` flow against it as against
//! any other IdP. (About 800 lines before its tests: a whole provider, discovery to userinfo,
//! with the Cognito token shapes in one place; it is a development tool the service never
//! runs in production.) Under `{base}/issuer`:
//!
//! | path | what |
//! | --- | --- |
//! | `GET /.well-known/openid-configuration` | discovery |
//! | `GET /.well-known/jwks.json` | the RSA signing key |
//! | `GET /oauth2/authorize` | the login page (dev users, optional group override) |
//! | `POST /login` | the login form: issues a code and redirects to the client's callback |
//! | `POST /oauth2/token` | `authorization_code` (the browser client) and `client_credentials` (service clients) |
//! | `GET /oauth2/userInfo` | userinfo: `sub`, `email`, `email_verified`, `username`, `name`; never groups |
//! | `GET /logout` | Cognito's logout: `client_id` and `logout_uri`, then a redirect there |
//!
//! Tokens are Cognito-shaped: RS256 with `kid`; access tokens carry `token_use=access`,
//! `client_id`, a space-separated `scope`, `cognito:groups` (for users in a group) and no `aud`;
//! ID tokens carry `aud`, `nonce`, `token_use=id`. The provider keeps no login session of its
//! own: every authorisation request shows the login page.

use std::{collections::HashMap, sync::Mutex};

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeySize,
    signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;

use super::{
    DevClient, DevUser,
    login::{esc, lock, now, page},
    signing::{b64url_nopad, random_hex},
};

/// Lifetime of issued access tokens (Cognito's default is one hour).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;

/// Lifetime of an authorisation code.
const CODE_TTL_SECS: i64 = 60;
/// Upper bound on codes not yet exchanged.
const MAX_CODES: usize = 10_000;

/// The app client the local ALB logs browser users in with (Cognito's "ALB browser client"):
/// authorisation-code grant, a client secret, registered callback and logout URLs.
#[derive(Clone)]
pub struct BrowserClient {
    pub client_id: String,
    pub secret: SecretString,
    pub redirect_uris: Vec<String>,
    pub logout_uris: Vec<String>,
}

impl std::fmt::Debug for BrowserClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserClient")
            .field("client_id", &self.client_id)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

/// A code issued at login, waiting for the client's token request.
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    user: DevUser,
    nonce: Option<String>,
    auth_time: i64,
    expires_at: i64,
}

/// The local issuer: its URL, its RSA key, the service clients, and (for browser logins) the
/// browser client, the dev users and the codes issued.
pub struct Issuer {
    url: String,
    kid: String,
    key: RsaKeyPair,
    clients: Vec<DevClient>,
    browser: Option<BrowserClient>,
    users: Vec<DevUser>,
    group_choices: Vec<String>,
    codes: Mutex<HashMap<String, CodeGrant>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("url", &self.url)
            .field("kid", &self.kid)
            .field("key", &"[REDACTED]")
            .field("clients", &self.clients)
            .field("browser", &self.browser)
            .finish_non_exhaustive()
    }
}

/// The claims of an access token for a logged-in browser user (what Cognito hands the ALB,
/// which forwards it as `x-amzn-oidc-accesstoken`).
pub struct UserAccessToken<'a> {
    pub sub: &'a str,
    pub username: &'a str,
    pub groups: &'a [String],
    pub client_id: &'a str,
}

#[derive(Serialize)]
struct JwtHeader<'a> {
    kid: &'a str,
    alg: &'static str,
}

impl Issuer {
    pub fn generate(url: String, clients: Vec<DevClient>) -> anyhow::Result<Self> {
        let key = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("generating the local issuer's RSA key"))?;
        Ok(Issuer {
            url,
            kid: random_hex(16)?,
            key,
            clients,
            browser: None,
            users: Vec::new(),
            group_choices: Vec::new(),
            codes: Mutex::new(HashMap::new()),
        })
    }

    /// Enables browser logins: the browser client, the users of the login page and the groups
    /// it offers.
    pub fn with_login(
        mut self,
        browser: BrowserClient,
        users: Vec<DevUser>,
        group_choices: Vec<String>,
    ) -> Self {
        self.browser = Some(browser);
        self.users = users;
        self.group_choices = group_choices;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document, as Cognito serves it at `{issuer}/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        let public = self.key.public_key();
        json!({
            "keys": [{
                "kty": "RSA",
                "kid": self.kid,
                "alg": "RS256",
                "use": "sig",
                "n": b64url_nopad(public.modulus().big_endian_without_leading_zero()),
                "e": b64url_nopad(public.exponent().big_endian_without_leading_zero()),
            }]
        })
    }

    /// Signs `claims` as an RS256 JWT (unpadded base64url, like every standard JWT).
    pub fn sign(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        let header = JwtHeader {
            kid: &self.kid,
            alg: "RS256",
        };
        let mut token = b64url_nopad(&serde_json::to_vec(&header)?);
        token.push('.');
        token.push_str(&b64url_nopad(&serde_json::to_vec(claims)?));
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        token.push('.');
        token.push_str(&b64url_nopad(&signature));
        Ok(token)
    }

    /// A client-credentials access token (`sub` = the client id, as with Cognito).
    pub fn service_token(
        &self,
        client_id: &str,
        scopes: &[&str],
        now: i64,
    ) -> anyhow::Result<String> {
        self.sign(&json!({
            "sub": client_id,
            "token_use": "access",
            "scope": scopes.join(" "),
            "auth_time": now,
            "iss": self.url,
            "exp": now + ACCESS_TOKEN_TTL_SECS,
            "iat": now,
            "version": 2,
            "jti": uuid::Uuid::new_v4().to_string(),
            "client_id": client_id,
        }))
    }

    /// A browser user's access token; Cognito puts the groups here, not in userinfo.
    pub fn user_token(&self, user: &UserAccessToken<'_>, now: i64) -> anyhow::Result<String> {
        let mut claims = json!({
            "sub": user.sub,
            "iss": self.url,
            "version": 2,
            "client_id": user.client_id,
            "origin_jti": uuid::Uuid::new_v4().to_string(),
            "token_use": "access",
            "scope": "openid email",
            "auth_time": now,
            "exp": now + ACCESS_TOKEN_TTL_SECS,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "username": user.username,
        });
        // Cognito omits the claim for a user in no group.
        if !user.groups.is_empty() {
            claims["cognito:groups"] = json!(user.groups);
        }
        self.sign(&claims)
    }

    fn client(&self, id: &str, secret: &str) -> Option<&DevClient> {
        let client = self.clients.iter().find(|c| c.client_id == id)?;
        let expected = client.secret.expose_secret().as_bytes();
        aws_lc_rs::constant_time::verify_slices_are_equal(expected, secret.as_bytes())
            .ok()
            .map(|()| client)
    }
}

/// Which client authenticated at the token endpoint.
enum Caller<'a> {
    Service(&'a DevClient),
    Browser(&'a BrowserClient),
}

fn secret_matches(expected: &SecretString, given: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(
        expected.expose_secret().as_bytes(),
        given.as_bytes(),
    )
    .is_ok()
}

impl Issuer {
    fn authenticate(&self, id: &str, secret: &str) -> Option<Caller<'_>> {
        if let Some(client) = self.client(id, secret) {
            return Some(Caller::Service(client));
        }
        self.browser
            .as_ref()
            .filter(|b| b.client_id == id && secret_matches(&b.secret, secret))
            .map(Caller::Browser)
    }

    /// `{issuer}/oauth2/authorize` and friends, as Cognito names them.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> serde_json::Value {
        json!({
            "issuer": self.url,
            "authorization_endpoint": self.endpoint("/oauth2/authorize"),
            "token_endpoint": self.endpoint("/oauth2/token"),
            "userinfo_endpoint": self.endpoint("/oauth2/userInfo"),
            "jwks_uri": self.endpoint("/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })
    }

    /// The claims of an ID token for a login.
    fn id_token(&self, grant: &CodeGrant, now: i64) -> anyhow::Result<String> {
        let mut claims = json!({
            "sub": grant.user.sub,
            "aud": grant.client_id,
            "email_verified": true,
            "token_use": "id",
            "auth_time": grant.auth_time,
            "iss": self.url,
            "cognito:username": grant.user.username,
            "exp": now + ACCESS_TOKEN_TTL_SECS,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "email": grant.user.email,
        });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        if !grant.user.groups.is_empty() {
            claims["cognito:groups"] = json!(grant.user.groups);
        }
        self.sign(&claims)
    }

    /// The user behind one of this issuer's access tokens, if it verifies.
    fn user_for_access_token(&self, token: &str) -> Option<&DevUser> {
        let public = self.key.public_key();
        let key = jsonwebtoken::DecodingKey::from_rsa_raw_components(
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        );
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_aud = false;
        validation.set_issuer(&[&self.url]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .ok()?
            .claims;
        if claims["token_use"] != "access"
            || claims["scope"]
                .as_str()
                .is_none_or(|s| !s.split(' ').any(|x| x == "openid"))
        {
            return None;
        }
        let sub = claims["sub"].as_str()?;
        self.users.iter().find(|u| u.sub == sub)
    }
}

pub(crate) async fn jwks(issuer: web::Data<Issuer>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(issuer.jwks())
}

pub(crate) async fn discovery(issuer: web::Data<Issuer>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(issuer.discovery())
}

fn oauth_error(
    status: actix_web::http::StatusCode,
    error: &str,
    description: &str,
) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == actix_web::http::StatusCode::UNAUTHORIZED {
        builder.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="local-issuer""#));
    }
    builder.json(json!({ "error": error, "error_description": description }))
}

/// The parameters of an authorisation request, as received at `/oauth2/authorize` and carried
/// through the login form.
#[derive(Debug, Default)]
struct AuthRequest {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
}

impl AuthRequest {
    fn take(&mut self, k: &str, v: String) -> bool {
        let slot = match k {
            "response_type" => &mut self.response_type,
            "client_id" => &mut self.client_id,
            "redirect_uri" => &mut self.redirect_uri,
            "scope" => &mut self.scope,
            "state" => &mut self.state,
            "nonce" => &mut self.nonce,
            _ => return false,
        };
        *slot = Some(v);
        true
    }

    /// Checks the request against the registered browser client. An unknown client or callback
    /// is answered here, never redirected to (RFC 6749 §4.1.2.1).
    fn validate<'a>(&self, issuer: &'a Issuer) -> Result<&'a BrowserClient, &'static str> {
        let browser = issuer
            .browser
            .as_ref()
            .ok_or("browser logins are not enabled")?;
        if self.client_id.as_deref() != Some(browser.client_id.as_str()) {
            return Err("unknown client_id");
        }
        let redirect = self.redirect_uri.as_deref().ok_or("redirect_uri missing")?;
        if !browser.redirect_uris.iter().any(|r| r == redirect) {
            return Err("redirect_uri is not registered for this client");
        }
        if self.response_type.as_deref() != Some("code") {
            return Err("response_type must be code");
        }
        if !self
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .any(|s| s == "openid")
        {
            return Err("scope must include openid");
        }
        Ok(browser)
    }

    fn hidden_fields(&self) -> String {
        let mut out = String::new();
        for (name, value) in [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
        ] {
            if let Some(v) = value {
                out.push_str(&format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    esc(v)
                ));
            }
        }
        out
    }
}

fn bad_authorize(reason: &str) -> HttpResponse {
    let mut resp = page(
        "Login refused",
        &format!(
            "<h1>Login refused</h1><p>The authorisation request is not valid: {}.</p>",
            esc(reason)
        ),
    );
    *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    resp
}

/// `GET {issuer}/oauth2/authorize`: the login page for a valid request.
pub(crate) async fn authorize(req: HttpRequest, issuer: web::Data<Issuer>) -> HttpResponse {
    let mut auth = AuthRequest::default();
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        auth.take(&k, v.into_owned());
    }
    if let Err(reason) = auth.validate(&issuer) {
        return bad_authorize(reason);
    }
    let mut body = String::from(
        "<h1>Local login</h1>\
         <p class=\"note\">The built-in identity provider of <code>players-api dev</code>. Pick a user.</p>",
    );
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\"><fieldset><legend>User</legend>",
        esc(&issuer.endpoint("/login"))
    ));
    for (i, u) in issuer.users.iter().enumerate() {
        body.push_str(&format!(
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
        ));
    }
    body.push_str(
        "</fieldset><fieldset><legend>Groups</legend>\
         <label><input type=\"checkbox\" name=\"override_groups\" value=\"1\"> \
         use the groups ticked below instead of the user's own (none ticked = no groups)</label>",
    );
    for g in &issuer.group_choices {
        body.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"group\" value=\"{g}\"> {g}</label>",
            g = esc(g)
        ));
    }
    body.push_str("</fieldset>");
    body.push_str(&auth.hidden_fields());
    body.push_str("<button type=\"submit\">Log in</button></form>");
    page("Local login", &body)
}

/// `POST {issuer}/login`: the login form. Issues a single-use code and sends the browser to the
/// client's callback with it and the client's `state`.
pub(crate) async fn login_submit(
    req: HttpRequest,
    form: web::Bytes,
    issuer: web::Data<Issuer>,
) -> HttpResponse {
    // Refuse cross-site form posts (login CSRF): a browser sends Origin on POST. The Host
    // header itself, not `connection_info()`, which would also believe X-Forwarded-Host.
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req
            .headers()
            .get(header::HOST)
            .map_or(&b""[..], |h| h.as_bytes());
        if origin.as_bytes() != [&b"http://"[..], host].concat() {
            return HttpResponse::Forbidden().body("cross-site login refused");
        }
    }
    let mut auth = AuthRequest::default();
    let mut username = None;
    let mut override_groups = false;
    let mut ticked = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&form) {
        let v = v.into_owned();
        match &*k {
            "user" => username = Some(v),
            "override_groups" => override_groups = true,
            "group" => ticked.push(v),
            other => {
                auth.take(other, v);
            }
        }
    }
    if let Err(reason) = auth.validate(&issuer) {
        return bad_authorize(reason);
    }
    let Some(user) = username
        .as_deref()
        .and_then(|name| issuer.users.iter().find(|u| u.username == name))
    else {
        return HttpResponse::BadRequest().body("unknown user");
    };
    let mut user = user.clone();
    if override_groups {
        // Only groups the page offered: the form is the only way groups get in.
        user.groups = issuer
            .group_choices
            .iter()
            .filter(|g| ticked.contains(g))
            .cloned()
            .collect();
    }
    let code = match random_hex(32) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = ?e, "local issuer: generating a code failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let now = now();
    let redirect_uri = auth.redirect_uri.clone().unwrap_or_default();
    tracing::info!(username = %user.username, groups = ?user.groups, "local issuer: logged in");
    {
        let mut codes = lock(&issuer.codes);
        codes.retain(|_, c| c.expires_at > now);
        if codes.len() >= MAX_CODES {
            return HttpResponse::ServiceUnavailable().body("too many logins in progress");
        }
        codes.insert(
            code.clone(),
            CodeGrant {
                client_id: auth.client_id.clone().unwrap_or_default(),
                redirect_uri: redirect_uri.clone(),
                user,
                nonce: auth.nonce.clone(),
                auth_time: now,
                expires_at: now + CODE_TTL_SECS,
            },
        );
    }
    let mut location = match url::Url::parse(&redirect_uri) {
        Ok(u) => u,
        Err(_) => return bad_authorize("redirect_uri is not a URL"),
    };
    {
        let mut q = location.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(state) = &auth.state {
            q.append_pair("state", state);
        }
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `POST {issuer}/oauth2/token` (RFC 6749 §4.1.3 and §4.4). The client authenticates with HTTP
/// Basic or with `client_id`/`client_secret` form fields. Service clients use
/// `client_credentials`: a requested `scope` must be a subset of the client's allowed scopes, no
/// `scope` means all of them (Cognito's behaviour). The browser client exchanges a code.
pub(crate) async fn token(
    req: HttpRequest,
    body: web::Bytes,
    issuer: web::Data<Issuer>,
) -> HttpResponse {
    use actix_web::http::StatusCode;

    let mut grant_type = None;
    let mut scope = None;
    let mut form_id = None;
    let mut form_secret = None;
    let mut code = None;
    let mut redirect_uri = None;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match &*k {
            "grant_type" => grant_type = Some(v.into_owned()),
            "scope" => scope = Some(v.into_owned()),
            "client_id" => form_id = Some(v.into_owned()),
            "client_secret" => form_secret = Some(v.into_owned()),
            "code" => code = Some(v.into_owned()),
            "redirect_uri" => redirect_uri = Some(v.into_owned()),
            _ => {}
        }
    }

    let credentials = basic_credentials(&req).or(match (form_id, form_secret) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => None,
    });
    let Some((client_id, secret)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication required",
        );
    };
    let Some(caller) = issuer.authenticate(&client_id, &secret) else {
        tracing::info!(client_id = %client_id, "local issuer: client authentication failed");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    let now = chrono::Utc::now().timestamp();
    match (grant_type.as_deref(), caller) {
        (Some("client_credentials"), Caller::Service(client)) => {
            let requested: Vec<&str> = scope.as_deref().unwrap_or("").split_whitespace().collect();
            let granted: Vec<&str> = if requested.is_empty() {
                client.scopes.iter().map(String::as_str).collect()
            } else if let Some(bad) = requested
                .iter()
                .find(|s| !client.scopes.iter().any(|a| a == *s))
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("scope {bad} is not allowed for this client"),
                );
            } else {
                requested
            };
            match issuer.service_token(&client.client_id, &granted, now) {
                Ok(access_token) => token_response(json!({
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": ACCESS_TOKEN_TTL_SECS,
                })),
                Err(e) => minting_failed(&e),
            }
        }
        (Some("authorization_code"), Caller::Browser(browser)) => {
            let grant = code.and_then(|c| lock(&issuer.codes).remove(&c));
            let Some(grant) = grant.filter(|g| {
                g.expires_at > now
                    && g.client_id == browser.client_id
                    && redirect_uri.as_deref() == Some(g.redirect_uri.as_str())
            }) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown, used or expired code, or another client or redirect_uri",
                );
            };
            let access = issuer.user_token(
                &UserAccessToken {
                    sub: &grant.user.sub,
                    username: &grant.user.username,
                    groups: &grant.user.groups,
                    client_id: &grant.client_id,
                },
                now,
            );
            let tokens = access.and_then(|a| Ok((a, issuer.id_token(&grant, now)?)));
            match tokens {
                Ok((access_token, id_token)) => token_response(json!({
                    "access_token": access_token,
                    "id_token": id_token,
                    "token_type": "Bearer",
                    "expires_in": ACCESS_TOKEN_TTL_SECS,
                })),
                Err(e) => minting_failed(&e),
            }
        }
        (Some("client_credentials" | "authorization_code"), _) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use this grant type",
        ),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code and client_credentials are supported",
        ),
    }
}

fn token_response(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn minting_failed(e: &anyhow::Error) -> HttpResponse {
    tracing::error!(error = ?e, "local issuer: minting a token failed");
    oauth_error(
        actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "token minting failed",
    )
}

/// `GET {issuer}/oauth2/userInfo`: what Cognito answers for a user's access token; no groups.
pub(crate) async fn userinfo(req: HttpRequest, issuer: web::Data<Issuer>) -> HttpResponse {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(user) = token.and_then(|t| issuer.user_for_access_token(t)) else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#))
            .json(json!({ "error": "invalid_token" }));
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "sub": user.sub,
            "email_verified": "true",
            "email": user.email,
            "username": user.username,
            "name": user.name,
        }))
}

/// `GET {issuer}/logout?client_id=…&logout_uri=…`: Cognito's logout endpoint. The provider holds
/// no session, so this only checks the URL against the client's registered logout URLs and
/// redirects there.
pub(crate) async fn logout(req: HttpRequest, issuer: web::Data<Issuer>) -> HttpResponse {
    let mut client_id = None;
    let mut logout_uri = None;
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match &*k {
            "client_id" => client_id = Some(v.into_owned()),
            "logout_uri" => logout_uri = Some(v.into_owned()),
            _ => {}
        }
    }
    let allowed = issuer.browser.as_ref().is_some_and(|b| {
        client_id.as_deref() == Some(b.client_id.as_str())
            && logout_uri
                .as_deref()
                .is_some_and(|u| b.logout_uris.iter().any(|x| x == u))
    });
    match logout_uri {
        Some(uri) if allowed => HttpResponse::Found()
            .insert_header((header::LOCATION, uri))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        _ => bad_authorize("unknown client_id or logout_uri"),
    }
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        Issuer::generate(
            "http://127.0.0.1:1/issuer".into(),
            super::super::default_clients(),
        )
        .unwrap()
    }

    fn verify(issuer: &Issuer, token: &str) -> serde_json::Value {
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(issuer.jwks()).unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(issuer.kid()));
        let jwk = jwks.find(issuer.kid()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_aud = false;
        validation.set_issuer(&[issuer.url()]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn user_token_carries_groups_and_verifies() {
        let issuer = issuer();
        let groups = vec!["players-editor".to_owned()];
        let token = issuer
            .user_token(
                &UserAccessToken {
                    sub: "s-1",
                    username: "editor",
                    groups: &groups,
                    client_id: "local-browser",
                },
                chrono::Utc::now().timestamp(),
            )
            .unwrap();
        let claims = verify(&issuer, &token);
        assert_eq!(claims["cognito:groups"], json!(["players-editor"]));
        assert_eq!(claims["token_use"], "access");
        assert_eq!(claims["client_id"], "local-browser");
        assert_eq!(claims["scope"], "openid email");
        assert_eq!(claims["username"], "editor");
    }

    #[test]
    fn user_without_groups_has_no_group_claim() {
        let issuer = issuer();
        let token = issuer
            .user_token(
                &UserAccessToken {
                    sub: "s-2",
                    username: "nobody",
                    groups: &[],
                    client_id: "local-browser",
                },
                chrono::Utc::now().timestamp(),
            )
            .unwrap();
        assert!(verify(&issuer, &token).get("cognito:groups").is_none());
    }

    #[test]
    fn jwks_describes_the_key() {
        let jwks = issuer().jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["e"], "AQAB");
    }
}
