//! Service metrics in CloudWatch Embedded Metric Format (EMF): the metric and dimension names,
//! the `METRICS_*` settings, and the functions the rest of the service calls to record.
//!
//! Recording only bumps counters under a mutex (`recorder`); a flusher task turns each
//! interval's totals into a handful of EMF documents (`emf`) and writes them to stdout, where
//! awslogs ships them and CloudWatch extracts the metrics. Latency is kept on log-spaced buckets
//! (`histogram`) and goes out in the distribution form, so CloudWatch can compute p50/p99.
//!
//! | metric | unit | dimension sets |
//! | --- | --- | --- |
//! | `RequestCount` | Count | `[Service]`, `[Service, Route, StatusClass]` |
//! | `Latency` | Milliseconds | `[Service]`, `[Service, Route]` |
//! | `AuthFailures` | Count | `[Service]`, `[Service, Reason]` |
//! | `KeyFetches`, `KeyFetchErrors`, `JwksRefreshes`, `JwksRefreshErrors` | Count | `[Service]` |
//! | `DbPoolInUse`, `DbPoolIdle` | Count | `[Service]` |
//! | `SecretRefreshes`, `SecretRefreshErrors` | Count | `[Service]` |
//!
//! Why a recorder of our own rather than the `metrics` facade with `metrics_cloudwatch_embedded`:
//! that recorder can flush on an interval in a long-running process (a background tokio task),
//! but it keeps at most 100 raw latency values per label set between flushes and drops the rest
//! with an error line, where one busy route passes 100 requests within seconds; our buckets count
//! every request in a few dozen values. It writes one dimension set per document, so the
//! `[Service]` roll-ups beside `[Service, Route, ...]` would cost a second recording of every
//! request, and it bounds no label's cardinality. The facade on its own would add a second global
//! registry beside this one, metric names as strings no compiler checks, and a key built (label
//! strings copied, a mutex taken) on every call, for nothing in return: no dependency of this
//! service records through it.

mod emf;
mod histogram;
mod recorder;

use std::sync::OnceLock;
use std::time::Duration;

pub use recorder::Recorder;

pub const REQUEST_COUNT: &str = "RequestCount";
pub const LATENCY: &str = "Latency";
pub const AUTH_FAILURES: &str = "AuthFailures";
pub const KEY_FETCHES: &str = "KeyFetches";
pub const KEY_FETCH_ERRORS: &str = "KeyFetchErrors";
pub const JWKS_REFRESHES: &str = "JwksRefreshes";
pub const JWKS_REFRESH_ERRORS: &str = "JwksRefreshErrors";
pub const DB_POOL_IN_USE: &str = "DbPoolInUse";
pub const DB_POOL_IDLE: &str = "DbPoolIdle";
pub const SECRET_REFRESHES: &str = "SecretRefreshes";
pub const SECRET_REFRESH_ERRORS: &str = "SecretRefreshErrors";

pub const DIM_SERVICE: &str = "Service";
pub const DIM_ROUTE: &str = "Route";
pub const DIM_STATUS_CLASS: &str = "StatusClass";
pub const DIM_REASON: &str = "Reason";

/// Route value for requests that matched no route (keeps scanners from creating dimensions).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// `METRICS_*` settings.
#[derive(Clone, Debug, clap::Args)]
pub struct MetricsSettings {
    /// CloudWatch namespace of the EMF metrics.
    #[arg(
        long = "metrics-namespace",
        env = "METRICS_NAMESPACE",
        default_value = "PlayersApi"
    )]
    pub namespace: String,
    /// Value of the `Service` dimension every metric carries.
    #[arg(
        long = "metrics-service-dimension",
        env = "METRICS_SERVICE_DIMENSION",
        default_value = "players-api"
    )]
    pub service: String,
    /// Seconds aggregated into one set of EMF documents.
    #[arg(
        long = "metrics-interval-secs",
        env = "METRICS_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub interval_secs: u64,
    /// `false` turns recording into no-ops and writes nothing.
    #[arg(
        long = "metrics-enabled",
        env = "METRICS_ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub enabled: bool,
}

/// The service-wide counters other modules bump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    KeyFetches,
    KeyFetchErrors,
    JwksRefreshes,
    JwksRefreshErrors,
    SecretRefreshes,
    SecretRefreshErrors,
}

impl Counter {
    pub const ALL: [Counter; 6] = [
        Counter::KeyFetches,
        Counter::KeyFetchErrors,
        Counter::JwksRefreshes,
        Counter::JwksRefreshErrors,
        Counter::SecretRefreshes,
        Counter::SecretRefreshErrors,
    ];

    pub fn metric_name(self) -> &'static str {
        match self {
            Counter::KeyFetches => KEY_FETCHES,
            Counter::KeyFetchErrors => KEY_FETCH_ERRORS,
            Counter::JwksRefreshes => JWKS_REFRESHES,
            Counter::JwksRefreshErrors => JWKS_REFRESH_ERRORS,
            Counter::SecretRefreshes => SECRET_REFRESHES,
            Counter::SecretRefreshErrors => SECRET_REFRESH_ERRORS,
        }
    }
}

static GLOBAL: OnceLock<Recorder> = OnceLock::new();

/// Makes `recorder` the one the free functions below use. Later calls are ignored.
pub fn install(recorder: Recorder) {
    let _ = GLOBAL.set(recorder);
}

/// The installed recorder, if any.
pub fn global() -> Option<&'static Recorder> {
    GLOBAL.get()
}

/// See [`Recorder::record_request`]; a no-op until [`install`] ran.
pub fn record_request(route: &str, status: u16, latency: Duration) {
    if let Some(r) = GLOBAL.get() {
        r.record_request(route, status, latency);
    }
}

/// See [`Recorder::record_auth_failure`].
pub fn record_auth_failure(reason: &str) {
    if let Some(r) = GLOBAL.get() {
        r.record_auth_failure(reason);
    }
}

/// See [`Recorder::incr`].
pub fn incr(counter: Counter) {
    if let Some(r) = GLOBAL.get() {
        r.incr(counter);
    }
}

/// See [`Recorder::set_pool`].
pub fn set_pool(in_use: u32, idle: u32) {
    if let Some(r) = GLOBAL.get() {
        r.set_pool(in_use, idle);
    }
}

/// Flushes the installed recorder (at shutdown).
pub fn flush() {
    if let Some(r) = GLOBAL.get() {
        r.flush();
    }
}

#[cfg(test)]
#[path = "../../../tests/integration/support/emf_spec.rs"]
mod emf_spec;

#[cfg(test)]
mod test_support {
    use serde_json::Value;

    use super::{MetricsSettings, Recorder};

    pub fn recorder() -> Recorder {
        Recorder::new(MetricsSettings {
            namespace: "TestNs".into(),
            service: "svc".into(),
            interval_secs: 1,
            enabled: true,
        })
    }

    pub fn all_valid(docs: &[Value]) {
        for d in docs {
            // Round-trip through text: what CloudWatch sees is a line of JSON.
            let parsed: Value = serde_json::from_str(&d.to_string()).unwrap();
            let errs = super::emf_spec::emf_violations(&parsed);
            assert!(errs.is_empty(), "{errs:?} in {parsed}");
            assert_eq!(parsed["Service"], "svc");
        }
    }
}
