//! Verification of `Authorization: Bearer` JWTs from the issuer of internal services' tokens
//! (client-credentials grant; Cognito access tokens are the model). Also verifies the ALB's
//! `x-amzn-oidc-accesstoken` when groups are read from it.

mod error;
pub mod jwks;

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

pub use error::BearerError;
pub use jwks::JwksCache;

use crate::auth::{
    alb::{string_list, unix_now},
    fetch::FetchLimits,
};

pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub struct BearerVerifierConfig {
    /// Exact expected `iss`.
    pub issuer: String,
    /// Default `{issuer}/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// `client_id` values accepted (Cognito access tokens carry no `aud`).
    pub client_ids: Vec<String>,
    /// `aud` values accepted (IdPs that set it).
    pub audiences: Vec<String>,
    pub leeway: Duration,
    /// An unknown kid refetches the JWKS at most once per this window.
    pub penalty: Duration,
    pub limits: FetchLimits,
    pub max_token_bytes: usize,
}

impl BearerVerifierConfig {
    pub fn new(issuer: impl Into<String>) -> Self {
        BearerVerifierConfig {
            issuer: issuer.into(),
            jwks_url: None,
            client_ids: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(60),
            penalty: Duration::from_secs(10),
            limits: FetchLimits {
                max_body_bytes: 150 * 1024,
                ..FetchLimits::default()
            },
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/jwks.json",
                self.issuer.trim_end_matches('/')
            )
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BearerConfigError {
    #[error(
        "BEARER_CLIENT_IDS and BEARER_AUDIENCES are both empty: bearer tokens need an allow-list of clients"
    )]
    NoClients,
}

/// The verified claims of a bearer token.
#[derive(Clone, Debug)]
pub struct BearerClaims {
    pub claims: Map<String, Value>,
    pub alg: Algorithm,
}

impl BearerClaims {
    pub fn client_id(&self) -> Option<&str> {
        self.claims.get("client_id").and_then(Value::as_str)
    }

    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// Scopes from `scope` (space-separated, RFC 8693 and RFC 9068) or `scp` (an array, or a
    /// space-separated string as Entra ID sends it).
    pub fn scopes(&self) -> Vec<String> {
        match self.claims.get("scope").or_else(|| self.claims.get("scp")) {
            Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
            other => string_list(other),
        }
    }

    pub fn string_list(&self, name: &str) -> Vec<String> {
        string_list(self.claims.get(name))
    }
}

pub struct BearerVerifier {
    config: BearerVerifierConfig,
    jwks: JwksCache,
}

impl BearerVerifier {
    pub fn new(config: BearerVerifierConfig) -> Result<Self, BearerConfigError> {
        if config.client_ids.is_empty() && config.audiences.is_empty() {
            return Err(BearerConfigError::NoClients);
        }
        let jwks = JwksCache::new(config.jwks_url(), config.penalty, config.limits.clone());
        Ok(BearerVerifier { config, jwks })
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    pub async fn verify(&self, token: &str) -> Result<BearerClaims, BearerError> {
        if token.len() > self.config.max_token_bytes {
            return Err(BearerError::Oversized {
                max: self.config.max_token_bytes,
            });
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| BearerError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(BearerError::AlgNotAllowed(format!("{:?}", header.alg)));
        }
        let kid = header.kid.as_deref().ok_or(BearerError::KidMissing)?;
        if kid.len() > 256 {
            return Err(BearerError::UnknownKid);
        }
        let key = self.jwks.get(kid).await?;
        if key.alg != header.alg {
            return Err(BearerError::AlgKeyMismatch);
        }

        let mut validation = Validation::new(key.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false; // checked below together with client_id
        validation.set_required_spec_claims(&["exp"]);
        validation.set_issuer(&[self.config.issuer.as_str()]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => BearerError::BadSignature,
                ErrorKind::ExpiredSignature => BearerError::Expired,
                ErrorKind::ImmatureSignature => BearerError::NotYetValid,
                ErrorKind::InvalidIssuer => BearerError::WrongIssuer,
                ErrorKind::MissingRequiredClaim(c) if c == "exp" => BearerError::ExpMissing,
                ErrorKind::MissingRequiredClaim(c) if c == "iss" => BearerError::WrongIssuer,
                ErrorKind::InvalidAlgorithm => BearerError::AlgKeyMismatch,
                _ => BearerError::Malformed,
            })?;
        let claims = data.claims;
        // jsonwebtoken only checks `iss` when present; it is required here.
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(BearerError::WrongIssuer);
        }
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_f64().ok_or(BearerError::Malformed)?;
            if iat > (unix_now() + self.config.leeway.as_secs() as i64) as f64 {
                return Err(BearerError::IatInFuture);
            }
        }
        if let Some(token_use) = claims.get("token_use")
            && token_use.as_str() != Some("access")
        {
            return Err(BearerError::NotAccessToken);
        }
        let client_ok = claims
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|c| self.config.client_ids.iter().any(|a| a == c));
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => self.config.audiences.contains(a),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.config.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !(client_ok || aud_ok) {
            return Err(BearerError::WrongClient);
        }
        Ok(BearerClaims {
            claims,
            alg: key.alg,
        })
    }
}

/// Shared ownership for the authenticator and the access-token check.
pub type SharedBearerVerifier = Arc<BearerVerifier>;
