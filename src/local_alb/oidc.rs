//! The `authenticate-oidc` action of the local ALB: the relying party that logs a browser in
//! with an OpenID Connect provider (the built-in one or any other) the way the AWS ALB does.
//! (About 470 lines before its tests: one protocol flow, kept in one file in the order the
//! steps below happen, so it can be read against the ALB's documentation.)
//!
//! 1. A request without a valid session ([`OnUnauthenticated::Authenticate`]): `302` to the
//!    provider's authorisation endpoint with `response_type=code`, `client_id`, `redirect_uri`
//!    (`http://<host>/oauth2/idpresponse`), `scope`, a random `state` and `nonce`, and the extra
//!    parameters; `state`, `nonce` and the page asked for are sealed into the `AWSALBAuthNonce`
//!    cookie, which binds them to this browser.
//! 2. `GET /oauth2/idpresponse?code&state`: the nonce cookie must be there and its `state` must
//!    equal the one returned (else 401); the code is exchanged at the token endpoint with the
//!    client secret (HTTP Basic); the ID token must name this issuer, this client and the nonce;
//!    the userinfo endpoint is called with the access token and must answer for the same `sub`.
//! 3. Userinfo claims plus access token above 11 KB: 500, as the ALB answers. Otherwise the
//!    session ([`Session`]) is sealed into the session cookie shards and the browser is sent
//!    back to the page it asked for.
//!
//! An IdP that cannot be reached is a 500 page within a few seconds, a refused code exchange
//! (wrong client secret, used code) a 401 page; neither ever hangs the browser.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, http::header, web};
use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    CALLBACK_PATH, Settings,
    login::{esc, now, page, query_param},
    session::{
        CookieSealer, LOGIN_TTL_SECS, MAX_CLAIMS_BYTES, PendingLogin, Session, nonce_cookie,
        nonce_removal, session_cookies,
    },
    signing::random_hex,
};

/// What the ALB does with a request that has no valid session (`OnUnauthenticatedRequest`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnUnauthenticated {
    /// Redirect to the IdP's login (the default).
    #[default]
    Authenticate,
    /// Answer 401.
    Deny,
    /// Forward without identity headers.
    Allow,
}

/// The IdP's endpoints, from its discovery document.
#[derive(Clone, Debug, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// The HTTP client of the ALB towards the IdP: short timeouts, so an IdP that is down is an
/// error page, not a hang.
pub fn idp_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the IdP HTTP client")
}

/// Fetches `{issuer}/.well-known/openid-configuration` and checks it names the same issuer.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<ProviderMetadata> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let resp = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("fetching the discovery document {url}"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "the discovery document {url} answered {}",
        resp.status()
    );
    let meta: ProviderMetadata = resp
        .json()
        .await
        .with_context(|| format!("reading the discovery document {url}"))?;
    anyhow::ensure!(
        meta.issuer == issuer,
        "the discovery document names issuer {:?}, not {issuer:?}",
        meta.issuer
    );
    Ok(meta)
}

/// The relying party: the IdP, the client and the knobs of the ALB action.
pub struct Rp {
    pub provider: ProviderMetadata,
    pub client_id: String,
    client_secret: SecretString,
    pub scope: String,
    pub extra_params: Vec<(String, String)>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Rp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rp")
            .field("issuer", &self.provider.issuer)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// An error page of the "ALB" (text, no detail beyond the failed step; the cause goes to the
/// log).
fn alb_error(status: StatusCode, what: &str) -> HttpResponse {
    let mut resp = page(
        &format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        &format!(
            "<h1>{} {}</h1><p>Local ALB: {}</p><p><a href=\"/login\">Try to log in again</a></p>",
            status.as_u16(),
            esc(status.canonical_reason().unwrap_or("")),
            esc(what)
        ),
    );
    *resp.status_mut() = status;
    let _ = resp.add_cookie(&nonce_removal());
    resp
}

/// The claims of a JWT, unverified (see [`Rp::check_id_token`] for why that is enough here).
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Rp {
    pub fn new(
        provider: ProviderMetadata,
        client_id: String,
        client_secret: SecretString,
        scope: String,
        extra_params: Vec<(String, String)>,
    ) -> anyhow::Result<Rp> {
        Ok(Rp {
            provider,
            client_id,
            client_secret,
            scope,
            extra_params,
            http: idp_client()?,
        })
    }

    /// `http://<host>/oauth2/idpresponse` for the host the browser used, if it is one of this
    /// stand-in's names; the ALB does the same for its DNS name and CNAMEs.
    fn redirect_uri(req: &HttpRequest, settings: &Settings) -> String {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("http://{h}"))
            .filter(|origin| settings.origins.iter().any(|o| o == origin))
            .unwrap_or_else(|| settings.base_url.clone());
        format!("{host}{CALLBACK_PATH}")
    }

    /// The redirect to the IdP, with the nonce cookie.
    pub(crate) fn start_login(
        &self,
        req: &HttpRequest,
        settings: &Settings,
        sealer: &CookieSealer,
        target: &str,
    ) -> HttpResponse {
        let result = (|| -> anyhow::Result<HttpResponse> {
            let state = random_hex(24)?;
            let nonce = random_hex(24)?;
            let sealed = sealer.seal_pending(&PendingLogin {
                state: state.clone(),
                nonce: nonce.clone(),
                target: target.to_owned(),
                expires_at: now() + LOGIN_TTL_SECS,
            })?;
            let mut url = url::Url::parse(&self.provider.authorization_endpoint)
                .context("the authorization endpoint is not a URL")?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("response_type", "code")
                    .append_pair("client_id", &self.client_id)
                    .append_pair("redirect_uri", &Self::redirect_uri(req, settings))
                    .append_pair("scope", &self.scope)
                    .append_pair("state", &state)
                    .append_pair("nonce", &nonce);
                for (k, v) in &self.extra_params {
                    q.append_pair(k, v);
                }
            }
            Ok(HttpResponse::Found()
                .cookie(nonce_cookie(sealed))
                .insert_header((header::LOCATION, url.as_str()))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish())
        })();
        result.unwrap_or_else(|e| {
            tracing::error!(error = ?e, "local ALB: starting a login failed");
            alb_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "starting the login failed",
            )
        })
    }

    /// The ID token came straight from the token endpoint over the connection this ALB opened
    /// (OpenID Connect Core §3.1.3.7: TLS server validation may then stand in for the
    /// signature check), so its claims are checked, not its signature: issuer, audience,
    /// expiry and the nonce bound to this browser.
    fn check_id_token(&self, id_token: &str, nonce: &str) -> Result<String, &'static str> {
        let claims = jwt_claims(id_token).ok_or("the ID token is not a JWT")?;
        if claims.get("iss").and_then(|v| v.as_str()) != Some(self.provider.issuer.as_str()) {
            return Err("the ID token names another issuer");
        }
        let aud_ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => *a == self.client_id,
            Some(serde_json::Value::Array(a)) => a.iter().any(|x| *x == *self.client_id),
            _ => false,
        };
        if !aud_ok {
            return Err("the ID token is for another client");
        }
        if claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .is_none_or(|e| e <= now())
        {
            return Err("the ID token has expired");
        }
        if claims.get("nonce").and_then(|v| v.as_str()) != Some(nonce) {
            return Err("the ID token's nonce does not match this browser's login");
        }
        claims
            .get("sub")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or("the ID token has no sub")
    }

    /// `GET /oauth2/idpresponse`: the IdP's answer.
    pub(crate) async fn callback(
        &self,
        req: &HttpRequest,
        settings: &Settings,
        sealer: &CookieSealer,
    ) -> HttpResponse {
        let now = now();
        let Some(pending) = sealer.pending(req).filter(|p| p.expires_at > now) else {
            return alb_error(
                StatusCode::UNAUTHORIZED,
                "no login is under way in this browser (the AWSALBAuthNonce cookie is missing or expired)",
            );
        };
        let Some(state) = query_param(req, "state") else {
            return alb_error(StatusCode::UNAUTHORIZED, "the IdP returned no state");
        };
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            state.as_bytes(),
            pending.state.as_bytes(),
        )
        .is_err()
        {
            tracing::warn!("local ALB: state mismatch at the callback");
            return alb_error(
                StatusCode::UNAUTHORIZED,
                "the state returned by the IdP does not belong to this browser's login",
            );
        }
        if let Some(error) = query_param(req, "error") {
            return alb_error(
                StatusCode::UNAUTHORIZED,
                &format!("the IdP refused the login: {error}"),
            );
        }
        let Some(code) = query_param(req, "code") else {
            return alb_error(StatusCode::UNAUTHORIZED, "the IdP returned no code");
        };

        // Code exchange.
        let resp = self
            .http
            .post(&self.provider.token_endpoint)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(self.client_secret.expose_secret())),
            )
            .header(header::ACCEPT.as_str(), "application/json")
            .header(
                header::CONTENT_TYPE.as_str(),
                "application/x-www-form-urlencoded",
            )
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "authorization_code")
                    .append_pair("code", &code)
                    .append_pair("redirect_uri", &Self::redirect_uri(req, settings))
                    .finish(),
            )
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "local ALB: the IdP token endpoint is not reachable");
                return alb_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the identity provider's token endpoint is not reachable",
                );
            }
        };
        if !resp.status().is_success() {
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let error = body["error"].as_str().unwrap_or("?").to_owned();
            tracing::warn!(%status, %error, "local ALB: the IdP refused the code exchange");
            return alb_error(
                StatusCode::UNAUTHORIZED,
                &format!("the identity provider refused the code exchange ({error})"),
            );
        }
        let tokens: TokenResponse = match resp.json().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "local ALB: unreadable token response");
                return alb_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the identity provider's token response is unreadable",
                );
            }
        };
        let Some(id_token) = tokens.id_token.as_deref() else {
            return alb_error(
                StatusCode::UNAUTHORIZED,
                "the identity provider returned no ID token (is openid in the scope?)",
            );
        };
        let sub = match self.check_id_token(id_token, &pending.nonce) {
            Ok(sub) => sub,
            Err(why) => return alb_error(StatusCode::UNAUTHORIZED, why),
        };

        // Userinfo: what x-amzn-oidc-data will carry.
        let resp = self
            .http
            .get(&self.provider.userinfo_endpoint)
            .bearer_auth(&tokens.access_token)
            .header(header::ACCEPT.as_str(), "application/json")
            .send()
            .await;
        let userinfo: serde_json::Map<String, serde_json::Value> = match resp {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(u) => u,
                Err(_) => {
                    return alb_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the identity provider's userinfo response is not a JSON object",
                    );
                }
            },
            Ok(r) => {
                tracing::warn!(status = %r.status(), "local ALB: the IdP refused the userinfo call");
                return alb_error(
                    StatusCode::UNAUTHORIZED,
                    "the identity provider refused the userinfo call",
                );
            }
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "local ALB: the IdP userinfo endpoint is not reachable");
                return alb_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the identity provider's userinfo endpoint is not reachable",
                );
            }
        };
        if userinfo.get("sub").and_then(|v| v.as_str()) != Some(sub.as_str()) {
            return alb_error(
                StatusCode::UNAUTHORIZED,
                "the userinfo response is about another user than the ID token",
            );
        }
        let claims_bytes = serde_json::to_vec(&userinfo).map_or(usize::MAX, |v| v.len());
        if claims_bytes.saturating_add(tokens.access_token.len()) > MAX_CLAIMS_BYTES {
            tracing::warn!(
                claims_bytes,
                access_token_bytes = tokens.access_token.len(),
                "local ALB: user claims plus access token exceed 11 KB"
            );
            return alb_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the user claims plus the access token exceed the ALB's 11 KB limit",
            );
        }

        // The session ends with the configured timeout, or earlier when the access token it
        // forwards expires: the browser then logs in again and gets a fresh one.
        let mut expires_at = now + settings.session_ttl_secs;
        if let Some(exp) = tokens.expires_in.filter(|e| *e > 0) {
            expires_at = expires_at.min(now + exp);
        }
        let session = Session {
            userinfo,
            access_token: tokens.access_token,
            sub,
            expires_at,
        };
        let shards = match sealer.seal_session(&session) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = ?e, "local ALB: sealing the session failed");
                return alb_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storing the session failed",
                );
            }
        };
        let mut resp = HttpResponse::Found();
        resp.insert_header((header::LOCATION, pending.target.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(nonce_removal());
        for c in session_cookies(&settings.cookie_name, &shards, expires_at - now) {
            resp.cookie(c);
        }
        tracing::info!("local ALB: logged in");
        resp.finish()
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before they go into HTTP Basic.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /oauth2/idpresponse`.
pub(crate) async fn idpresponse(
    req: HttpRequest,
    settings: web::Data<Settings>,
    sealer: web::Data<CookieSealer>,
    rp: web::Data<Rp>,
) -> HttpResponse {
    rp.callback(&req, &settings, &sealer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp() -> Rp {
        Rp::new(
            ProviderMetadata {
                issuer: "http://idp.test".into(),
                authorization_endpoint: "http://idp.test/authorize".into(),
                token_endpoint: "http://idp.test/token".into(),
                userinfo_endpoint: "http://idp.test/userinfo".into(),
                jwks_uri: "http://idp.test/jwks".into(),
                end_session_endpoint: None,
            },
            "browser".into(),
            SecretString::from("s"),
            "openid".into(),
            Vec::new(),
        )
        .unwrap()
    }

    fn jwt(claims: serde_json::Value) -> String {
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        )
    }

    #[test]
    fn id_token_checks() {
        let rp = rp();
        let exp = now() + 60;
        let ok = serde_json::json!({"iss":"http://idp.test","aud":"browser","exp":exp,"nonce":"n","sub":"u"});
        assert_eq!(rp.check_id_token(&jwt(ok.clone()), "n"), Ok("u".to_owned()));
        assert!(rp.check_id_token(&jwt(ok.clone()), "other").is_err());
        let mut bad = ok.clone();
        bad["aud"] = serde_json::json!(["x", "browser"]);
        assert!(rp.check_id_token(&jwt(bad.clone()), "n").is_ok());
        bad["aud"] = "x".into();
        assert!(rp.check_id_token(&jwt(bad), "n").is_err());
        let mut bad = ok.clone();
        bad["iss"] = "http://evil.test".into();
        assert!(rp.check_id_token(&jwt(bad), "n").is_err());
        let mut bad = ok;
        bad["exp"] = (now() - 1).into();
        assert!(rp.check_id_token(&jwt(bad), "n").is_err());
    }
}
