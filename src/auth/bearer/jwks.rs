//! The issuer's JWKS, cached. An unknown kid triggers a refetch at most once per penalty
//! window; concurrent refetches are merged; the previous key set stays in use until a refetch
//! succeeds.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse},
};

use super::BearerError;
use crate::{
    auth::fetch::{BoundedFetcher, FetchLimits},
    telemetry::metrics::{self, Counter},
};

/// A usable key and the one algorithm it may verify (alg confusion is refused by matching).
#[derive(Clone)]
pub struct JwksKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

type KeyMap = Arc<HashMap<String, Arc<JwksKey>>>;

pub struct JwksCache {
    url: String,
    penalty: Duration,
    keys: RwLock<KeyMap>,
    /// Held while a refetch runs; also remembers when the last one started.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    fetcher: BoundedFetcher,
    fetches: AtomicU64,
}

impl JwksCache {
    pub fn new(url: String, penalty: Duration, limits: FetchLimits) -> Self {
        JwksCache {
            url,
            penalty,
            keys: RwLock::new(Arc::new(HashMap::new())),
            refresh: tokio::sync::Mutex::new(None),
            fetcher: BoundedFetcher::new(limits),
            fetches: AtomicU64::new(0),
        }
    }

    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn lookup(&self, kid: &str) -> Option<Arc<JwksKey>> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(kid).cloned()
    }

    pub async fn get(&self, kid: &str) -> Result<Arc<JwksKey>, BearerError> {
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        let mut last = self.refresh.lock().await;
        // Someone else may have refreshed while this caller waited for the lock.
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        if last.is_some_and(|t| t.elapsed() < self.penalty) {
            return Err(BearerError::UnknownKid);
        }
        *last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        metrics::incr(Counter::JwksRefreshes);
        let fresh = self.fetch().await.inspect_err(|e| {
            metrics::incr(Counter::JwksRefreshErrors);
            tracing::warn!(event = "jwks_refresh_error", reason = e.reason(), error = %e, "JWKS refresh failed");
        })?;
        tracing::info!(event = "jwks_refresh", keys = fresh.len(), "JWKS refreshed");
        let found = fresh.get(kid).cloned();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        found.ok_or(BearerError::UnknownKid)
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<JwksKey>>, BearerError> {
        let body = self
            .fetcher
            .get(&self.url)
            .await
            .map_err(BearerError::JwksFetch)?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|_| BearerError::JwksInvalid)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => continue,
            };
            // A key that declares another alg than the one we would use is not used at all.
            let declared = jwk.common.key_algorithm;
            let consistent = match declared {
                None => true,
                Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
                Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
                Some(_) => false,
            };
            if !consistent {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.insert(kid, Arc::new(JwksKey { alg, key }));
        }
        if keys.is_empty() {
            return Err(BearerError::JwksInvalid);
        }
        Ok(keys)
    }
}
