//! Verification of the ALB's user-claims header `x-amzn-oidc-data` (ES256, signed by the
//! load balancer). The checks, in order of cost (`AlbVerifier::verify_uncached`): the header's
//! shape and length, `alg` ES256, a UUID `kid`, a `signer` among `ALB_SIGNER_ARNS`, `exp`
//! present and agreeing between header and payload, `iss` agreeing and equal to `ALB_ISSUER`,
//! `client` equal to `ALB_CLIENT_ID`, not expired beyond the skew, then the signature with the
//! key of that signer's region; each failure has its own `AlbError`.
//!
//! Self-contained: used by the server's authenticator and by `players-api verify-alb-header`.

mod error;
pub mod keys;
pub mod signer;
pub mod token;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use serde_json::{Map, Value};

pub use error::AlbError;
pub use keys::{AlbKey, KeyCache, KeyCacheConfig, KeySource};
pub use signer::{InvalidArn, SignerArn};

/// The real ALB caps claims plus access token at about 11 KB; anything bigger is not from it.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// What the verifier checks and where it finds keys.
#[derive(Clone, Debug)]
pub struct AlbVerifierConfig {
    /// Allow-list of ALB ARNs (required, non-empty).
    pub signers: Vec<SignerArn>,
    /// Expected `iss` (the IdP issuer), checked when set.
    pub issuer: Option<String>,
    /// Expected `client` (the IdP client id), checked when set.
    pub client_id: Option<String>,
    /// Overrides the key endpoint derived from each ARN (China, tests, the local ALB).
    pub key_endpoint: Option<String>,
    /// Allowed clock skew past `exp`.
    pub exp_skew: Duration,
    pub max_header_bytes: usize,
    /// Verified headers remembered (each until its `exp`).
    pub result_cache_capacity: u64,
    pub keys: KeyCacheConfig,
}

impl AlbVerifierConfig {
    pub fn new(signers: Vec<SignerArn>) -> Self {
        AlbVerifierConfig {
            signers,
            issuer: None,
            client_id: None,
            key_endpoint: None,
            exp_skew: Duration::from_secs(60),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            result_cache_capacity: 10_000,
            keys: KeyCacheConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlbConfigError {
    #[error(
        "ALB_SIGNER_ARNS is empty: ALB authentication needs the allow-list of load balancer ARNs"
    )]
    NoSigners,
    #[error("no known key endpoint for {0} (partition/region); set ALB_KEY_ENDPOINT")]
    NoEndpoint(String),
}

/// A verified header: the JWT header and the user claims, as the ALB sent them.
#[derive(Clone, Debug, Serialize)]
pub struct AlbClaims {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    #[serde(skip)]
    pub exp: i64,
}

impl AlbClaims {
    fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn subject(&self) -> Option<&str> {
        self.str_claim("sub").filter(|s| !s.is_empty())
    }

    pub fn email(&self) -> Option<&str> {
        self.str_claim("email")
    }

    pub fn name(&self) -> Option<&str> {
        self.str_claim("name")
            .or_else(|| self.str_claim("preferred_username"))
            .or_else(|| self.str_claim("username"))
    }

    /// `email_verified` arrives as the string `"true"` from the ALB, as a bool from others.
    pub fn email_verified(&self) -> Option<bool> {
        lenient_bool(self.claims.get("email_verified")?)
    }

    /// A list claim such as `cognito:groups`: a JSON array of strings, or one string, which
    /// is one value (group names may contain spaces and commas; they are never split).
    pub fn string_list(&self, name: &str) -> Vec<String> {
        string_list(self.claims.get(name))
    }
}

pub(crate) fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Cache entries expire at the token's `exp`, never later.
struct UntilExp;

/// The verified-result cache's key: the SHA-256 of the header's exact bytes. A fixed 32 bytes
/// rather than the ~1 KB header: hashed once per request instead of twice through SipHash
/// over the whole header (a cold request looks up and inserts), and a tenth of the memory
/// per cached user. Only a header with the same digest (no one can make one) finds the entry.
type ResultKey = [u8; 32];

fn result_key(raw: &str) -> ResultKey {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, raw.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

impl moka::Expiry<ResultKey, Arc<AlbClaims>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &ResultKey,
        value: &Arc<AlbClaims>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = value.exp.saturating_sub(unix_now());
        Some(Duration::from_secs(left.max(0) as u64))
    }
}

/// Verifies `x-amzn-oidc-data`. Build once, share (`Arc`): it owns the key and result caches.
pub struct AlbVerifier {
    /// Allowed signer ARN → key endpoint for it.
    signers: HashMap<String, Arc<str>>,
    issuer: Option<String>,
    client_id: Option<String>,
    skew: i64,
    max_len: usize,
    keys: KeySource,
    verified: moka::sync::Cache<ResultKey, Arc<AlbClaims>>,
}

impl AlbVerifier {
    /// Fetches keys from each signer's endpoint (or the configured override).
    pub fn new(config: AlbVerifierConfig) -> Result<Self, AlbConfigError> {
        let cache = Arc::new(KeyCache::new(config.keys.clone()));
        Self::build(config, KeySource::Endpoints(cache))
    }

    /// Uses one fixed key for every kid (operator CLI with `--public-key`).
    pub fn with_static_key(config: AlbVerifierConfig, key: AlbKey) -> Result<Self, AlbConfigError> {
        Self::build(config, KeySource::Static(Arc::new(key)))
    }

    fn build(config: AlbVerifierConfig, keys: KeySource) -> Result<Self, AlbConfigError> {
        if config.signers.is_empty() {
            return Err(AlbConfigError::NoSigners);
        }
        let mut signers = HashMap::new();
        for arn in &config.signers {
            let endpoint = match (&config.key_endpoint, &keys) {
                (Some(e), _) => e.trim_end_matches('/').to_owned(),
                (None, KeySource::Static(_)) => String::new(),
                (None, KeySource::Endpoints(_)) => arn
                    .default_key_endpoint()
                    .ok_or_else(|| AlbConfigError::NoEndpoint(arn.to_string()))?,
            };
            signers.insert(arn.as_str().to_owned(), Arc::from(endpoint));
        }
        Ok(AlbVerifier {
            signers,
            issuer: config.issuer,
            client_id: config.client_id,
            skew: config.exp_skew.as_secs() as i64,
            max_len: config.max_header_bytes,
            keys,
            verified: moka::sync::Cache::builder()
                .max_capacity(config.result_cache_capacity)
                .expire_after(UntilExp)
                .build(),
        })
    }

    /// The key cache, when keys come from endpoints (tests count its fetches).
    pub fn key_cache(&self) -> Option<&Arc<KeyCache>> {
        match &self.keys {
            KeySource::Endpoints(c) => Some(c),
            KeySource::Static(_) => None,
        }
    }

    /// Verifies `raw` now.
    pub async fn verify(&self, raw: &str) -> Result<Arc<AlbClaims>, AlbError> {
        self.verify_at(raw, unix_now()).await
    }

    /// Verifies `raw` judging expiry at `now` (seconds since the epoch).
    pub async fn verify_at(&self, raw: &str, now: i64) -> Result<Arc<AlbClaims>, AlbError> {
        let key = result_key(raw);
        if let Some(hit) = self.cached_at(&key, now) {
            return Ok(hit);
        }
        let claims = Arc::new(self.verify_uncached(raw, now).await?);
        if claims.exp > unix_now() {
            self.verified.insert(key, claims.clone());
        }
        Ok(claims)
    }

    /// The verified-result cache alone: exact header bytes → claims, still within `exp`.
    pub fn cached(&self, raw: &str, now: i64) -> Option<Arc<AlbClaims>> {
        self.cached_at(&result_key(raw), now)
    }

    fn cached_at(&self, key: &ResultKey, now: i64) -> Option<Arc<AlbClaims>> {
        self.verified
            .get(key)
            .filter(|c| now <= c.exp.saturating_add(self.skew))
    }

    /// Every check, in order of cost; the key is fetched only for an otherwise valid token.
    pub async fn verify_uncached(&self, raw: &str, now: i64) -> Result<AlbClaims, AlbError> {
        let t = token::parse(raw.as_bytes(), self.max_len)?;

        match t.header.get("alg") {
            None => return Err(AlbError::AlgMissing),
            Some(Value::String(a)) if a == "ES256" => {}
            Some(other) => return Err(AlbError::AlgNotAllowed(truncate(other))),
        }
        let kid = match t.header.get("kid") {
            None => return Err(AlbError::KidMissing),
            Some(Value::String(k)) if token::is_uuid_kid(k) => k.as_str(),
            Some(_) => return Err(AlbError::KidNotUuid),
        };
        let endpoint = match t.header.get("signer") {
            None => return Err(AlbError::SignerMissing),
            Some(Value::String(s)) => self
                .signers
                .get(s.as_str())
                .ok_or_else(|| AlbError::SignerNotAllowed(truncate(&Value::String(s.clone()))))?,
            Some(other) => return Err(AlbError::SignerNotAllowed(truncate(other))),
        };

        let exp = token::numeric_date(t.payload.get("exp").ok_or(AlbError::ExpMissing)?)
            .ok_or(AlbError::ExpInvalid)?;
        if let Some(header_exp) = t.header.get("exp")
            && token::numeric_date(header_exp) != Some(exp)
        {
            return Err(AlbError::ExpMismatch);
        }
        let header_iss = t.header.get("iss");
        let payload_iss = t.payload.get("iss");
        if let (Some(h), Some(p)) = (header_iss, payload_iss)
            && h != p
        {
            return Err(AlbError::IssMismatch);
        }
        if let Some(expected) = &self.issuer {
            let iss = payload_iss.or(header_iss).and_then(Value::as_str);
            if iss != Some(expected.as_str()) {
                return Err(AlbError::WrongIssuer);
            }
        }
        if let Some(expected) = &self.client_id
            && t.header.get("client").and_then(Value::as_str) != Some(expected.as_str())
        {
            return Err(AlbError::WrongClient);
        }
        if now > exp.saturating_add(self.skew) {
            return Err(AlbError::Expired { exp, now });
        }
        let Some(signature) = t.raw_signature() else {
            return Err(AlbError::SignatureLength(t.signature_len));
        };

        let key = match &self.keys {
            KeySource::Static(k) => k.clone(),
            KeySource::Endpoints(cache) => cache.get(endpoint, kid).await?,
        };
        if !key.verify(t.signed, signature) {
            return Err(AlbError::BadSignature);
        }
        Ok(AlbClaims {
            header: t.header,
            claims: t.payload,
            exp,
        })
    }
}

/// Attacker-controlled values go into error messages only shortened.
fn truncate(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::string_list;
    use serde_json::json;

    #[test]
    fn a_string_groups_claim_is_one_group_never_split() {
        assert_eq!(
            string_list(Some(&json!("Club Staff, North"))),
            ["Club Staff, North"]
        );
        assert_eq!(string_list(Some(&json!("admin editor"))), ["admin editor"]);
        assert_eq!(
            string_list(Some(&json!(["admin", "club staff"]))),
            ["admin", "club staff"]
        );
        assert!(string_list(Some(&json!(""))).is_empty());
        assert!(string_list(Some(&json!(7))).is_empty());
        assert!(string_list(None).is_empty());
    }
}
