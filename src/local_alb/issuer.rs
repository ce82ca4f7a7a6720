//! A local stand-in for the Cognito user pool: a JWKS, and a `client_credentials` token endpoint
//! for service clients. Tokens are Cognito-shaped access tokens (RS256, `kid`, `token_use`,
//! `client_id`, space-separated `scope`, no `aud`), so the API's bearer verifier runs the same
//! path it runs in production.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeySize,
    signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;

use super::{
    DevClient,
    signing::{b64url_nopad, random_hex},
};

/// Lifetime of issued access tokens (Cognito's default is one hour).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;

/// The local issuer: its URL, its RSA key and the service clients it knows.
pub struct Issuer {
    url: String,
    kid: String,
    key: RsaKeyPair,
    clients: Vec<DevClient>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("url", &self.url)
            .field("kid", &self.kid)
            .field("key", &"[REDACTED]")
            .field("clients", &self.clients)
            .finish()
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
        })
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

pub(crate) async fn jwks(issuer: web::Data<Issuer>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(issuer.jwks())
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

/// `POST {issuer}/oauth2/token` (RFC 6749 §4.4). The client authenticates with HTTP Basic or
/// with `client_id`/`client_secret` form fields; a requested `scope` must be a subset of the
/// client's allowed scopes, and no `scope` means all of them (Cognito's behaviour).
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
    for (k, v) in url::form_urlencoded::parse(&body) {
        match &*k {
            "grant_type" => grant_type = Some(v.into_owned()),
            "scope" => scope = Some(v.into_owned()),
            "client_id" => form_id = Some(v.into_owned()),
            "client_secret" => form_secret = Some(v.into_owned()),
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
    let Some(client) = issuer.client(&client_id, &secret) else {
        tracing::info!(client_id = %client_id, "local issuer: client authentication failed");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    if grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
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

    match issuer.service_token(&client.client_id, &granted, chrono::Utc::now().timestamp()) {
        Ok(access_token) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_TTL_SECS,
            })),
        Err(e) => {
            tracing::error!(error = ?e, "local issuer: minting a token failed");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "token minting failed",
            )
        }
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
