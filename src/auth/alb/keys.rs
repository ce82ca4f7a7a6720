//! ALB public keys: parsing (PEM SubjectPublicKeyInfo with `p256`) and the per-(endpoint, kid)
//! cache with merged fetches, a penalty box and a global fetch budget.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use p256::pkcs8::DecodePublicKey;

use super::AlbError;
use crate::{
    auth::fetch::{BoundedFetcher, FetchLimits},
    telemetry::metrics::{self, Counter},
};

/// A P-256 public key ready for verification. Parsed once with `p256` (strict SPKI/PEM and
/// point validation), verified with aws-lc-rs (about 4× faster than `p256`'s verify, see
/// `benches/auth.rs`).
pub struct AlbKey {
    key: ParsedPublicKey,
}

impl std::fmt::Debug for AlbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlbKey(P-256)")
    }
}

impl AlbKey {
    /// From a PEM `-----BEGIN PUBLIC KEY-----` (what the AWS key endpoint serves).
    pub fn from_pem(pem: &str) -> Result<Self, AlbError> {
        let key =
            p256::PublicKey::from_public_key_pem(pem.trim()).map_err(|_| AlbError::KeyInvalid)?;
        Self::from_p256(&key)
    }

    pub fn from_p256(key: &p256::PublicKey) -> Result<Self, AlbError> {
        let sec1 = key.to_sec1_bytes();
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &sec1)
            .map_err(|_| AlbError::KeyInvalid)?;
        Ok(AlbKey { key })
    }

    /// `signature` must be the raw 64-byte `r||s` form.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// Tuning of the key cache. Defaults suit production; tests shorten the windows.
#[derive(Clone, Debug)]
pub struct KeyCacheConfig {
    /// Distinct (endpoint, kid) keys kept.
    pub capacity: u64,
    /// How long a failed kid is not fetched again.
    pub penalty: Duration,
    /// At most this many fetches of kids not yet cached per `penalty` window, in total, so a
    /// flood of random kids (the kid is not signed) cannot become a flood of requests.
    pub max_fetches_per_window: u32,
    pub limits: FetchLimits,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        KeyCacheConfig {
            capacity: 1_000,
            penalty: Duration::from_secs(10),
            max_fetches_per_window: 20,
            limits: FetchLimits {
                max_body_bytes: 4 * 1024, // a PEM P-256 key is ~180 bytes
                ..FetchLimits::default()
            },
        }
    }
}

type CacheKey = (Arc<str>, Arc<str>);

struct Budget {
    window_start: Instant,
    used: u32,
}

/// Keys per (endpoint, kid). Keys never change behind a kid, so a cached key lives until
/// evicted by size; a known kid keeps working while the endpoint is down.
pub struct KeyCache {
    keys: moka::future::Cache<CacheKey, Arc<AlbKey>>,
    penalty: moka::sync::Cache<CacheKey, ()>,
    budget: Mutex<Budget>,
    config: KeyCacheConfig,
    fetcher: BoundedFetcher,
    fetches: AtomicU64,
}

impl KeyCache {
    pub fn new(config: KeyCacheConfig) -> Self {
        KeyCache {
            keys: moka::future::Cache::builder()
                .max_capacity(config.capacity)
                .build(),
            penalty: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(config.penalty)
                .build(),
            budget: Mutex::new(Budget {
                window_start: Instant::now(),
                used: 0,
            }),
            fetcher: BoundedFetcher::new(config.limits.clone()),
            config,
            fetches: AtomicU64::new(0),
        }
    }

    /// Outbound requests made so far (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key for `kid` at `endpoint`. `kid` must already be checked to be a UUID.
    pub async fn get(&self, endpoint: &Arc<str>, kid: &str) -> Result<Arc<AlbKey>, AlbError> {
        let key: CacheKey = (endpoint.clone(), Arc::from(kid));
        if let Some(found) = self.keys.get(&key).await {
            return Ok(found);
        }
        if self.penalty.contains_key(&key) {
            return Err(AlbError::KeyPenalty);
        }
        // Concurrent callers for one key wait on the same future: one request per kid.
        self.keys
            .try_get_with(key.clone(), async {
                let result = self.fetch(&key).await;
                if let Err(e) = &result
                    && *e != AlbError::KeyFetchBudget
                {
                    self.penalty.insert(key.clone(), ());
                }
                result
            })
            .await
            .map_err(|e| AlbError::clone(&e))
    }

    fn take_budget(&self) -> bool {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        if budget.window_start.elapsed() >= self.config.penalty {
            budget.window_start = Instant::now();
            budget.used = 0;
        }
        if budget.used >= self.config.max_fetches_per_window {
            return false;
        }
        budget.used += 1;
        true
    }

    async fn fetch(&self, (endpoint, kid): &CacheKey) -> Result<Arc<AlbKey>, AlbError> {
        if !self.take_budget() {
            tracing::warn!(event = "key_fetch_budget", "ALB key fetch budget exhausted");
            return Err(AlbError::KeyFetchBudget);
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        metrics::incr(Counter::KeyFetches);
        let url = format!("{}/{kid}", endpoint.trim_end_matches('/'));
        let body = self.fetcher.get(&url).await.map_err(|e| {
            tracing::warn!(event = "key_fetch_error", reason = e.reason(), error = %e, "ALB key fetch failed");
            metrics::incr(Counter::KeyFetchErrors);
            AlbError::KeyFetch(e)
        })?;
        let key = std::str::from_utf8(&body)
            .map_err(|_| AlbError::KeyInvalid)
            .and_then(AlbKey::from_pem)
            .inspect_err(|_| {
                tracing::warn!(
                    event = "key_fetch_error",
                    reason = "key_invalid",
                    "ALB key endpoint served no P-256 key"
                );
                metrics::incr(Counter::KeyFetchErrors);
            })?;
        tracing::info!(event = "key_fetch", kid = %kid, "ALB public key fetched");
        Ok(Arc::new(key))
    }
}

/// Where the verifier gets keys: the cached endpoints (server) or one fixed key (the CLI's
/// `--public-key`, which must then be the key of every kid it is shown).
pub enum KeySource {
    Endpoints(Arc<KeyCache>),
    Static(Arc<AlbKey>),
}
