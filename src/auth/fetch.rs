//! Bounded outbound HTTP for key material (ALB public keys, JWKS documents).
//!
//! Every fetch has a connect timeout, a total timeout and a body-size cap enforced while the
//! body streams in, so a slow or hostile key endpoint can neither stall requests nor exhaust
//! memory. Redirects are not followed: a key endpoint that redirects is misconfigured.

use std::time::Duration;

/// Limits shared by the ALB key cache and the JWKS cache.
#[derive(Clone, Debug)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    /// Whole request, headers and body.
    pub timeout: Duration,
    pub max_body_bytes: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(3),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why a fetch failed. `reason()` is the stable code logged with the auth failure.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("key endpoint unreachable: {0}")]
    Unreachable(String),
    #[error("key endpoint timed out")]
    Timeout,
    #[error("key endpoint answered HTTP {0}")]
    Status(u16),
    #[error("key endpoint response exceeds {0} bytes")]
    TooLarge(usize),
}

impl FetchError {
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Unreachable(_) => "key_fetch_failed",
            FetchError::Timeout => "key_fetch_timeout",
            FetchError::Status(_) => "key_fetch_status",
            FetchError::TooLarge(_) => "key_too_large",
        }
    }
}

/// An HTTP client configured with the limits above.
#[derive(Clone, Debug)]
pub struct BoundedFetcher {
    client: reqwest::Client,
    limits: FetchLimits,
}

impl BoundedFetcher {
    pub fn new(limits: FetchLimits) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("players-api/", env!("CARGO_PKG_VERSION")))
            .build()
            // Building fails only if the TLS backend cannot initialise: nothing a request can
            // influence, so fall back to reqwest's default client rather than panic.
            .unwrap_or_default();
        BoundedFetcher { client, limits }
    }

    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// GET `url` and return the body, refusing bodies over the cap before reading them whole.
    #[tracing::instrument(name = "key_fetch", skip(self), fields(url = %url))]
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout
            } else {
                FetchError::Unreachable(e.without_url().to_string())
            }
        };
        let mut resp = self.client.get(url).send().await.map_err(map_err)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        let cap = self.limits.max_body_bytes;
        if resp.content_length().is_some_and(|len| len > cap as u64) {
            return Err(FetchError::TooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
