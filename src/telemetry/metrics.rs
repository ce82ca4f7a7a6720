//! Service metrics in CloudWatch Embedded Metric Format (EMF).
//!
//! Recording only bumps counters under a mutex; a flusher task turns each interval's totals into
//! a handful of EMF documents (one per route and status class, one per auth-failure reason, one
//! for the service-wide counters) and writes them to stdout, where awslogs ships them and
//! CloudWatch extracts the metrics. Latency goes out in the distribution form
//! (`Values`/`Counts` with `Min`/`Max`/`Sum`/`Count`), so CloudWatch can compute p50/p99.
//!
//! | metric | unit | dimension sets |
//! | --- | --- | --- |
//! | `RequestCount` | Count | `[Service]`, `[Service, Route, StatusClass]` |
//! | `Latency` | Milliseconds | `[Service]`, `[Service, Route]` |
//! | `AuthFailures` | Count | `[Service]`, `[Service, Reason]` |
//! | `KeyFetches`, `KeyFetchErrors`, `JwksRefreshes`, `JwksRefreshErrors` | Count | `[Service]` |
//! | `DbPoolInUse`, `DbPoolIdle` | Count | `[Service]` |
//! | `SecretRefreshes`, `SecretRefreshErrors` | Count | `[Service]` |

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value, json};

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
/// Distinct routes or reasons kept per interval; more are counted under `other`.
const MAX_KEYS: usize = 200;
const OVERFLOW_KEY: &str = "other";
/// EMF allows at most 100 values in one metric's array.
const MAX_VALUES: usize = 100;
/// Latency buckets are 4% wide: plenty for p50/p99, and few distinct values per interval.
const BUCKET_BASE: f64 = 1.04;

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

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            namespace: "PlayersApi".into(),
            service: "players-api".into(),
            interval_secs: 60,
            enabled: true,
        }
    }
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

/// Latency distribution on log-spaced buckets.
#[derive(Default)]
struct Histogram {
    buckets: HashMap<i32, u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Histogram {
    fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
        // Clamp so that sub-microsecond values share one bucket instead of -inf.
        let bucket = (ms.max(0.001).ln() / BUCKET_BASE.ln()).floor() as i32;
        *self.buckets.entry(bucket).or_default() += 1;
        if self.count == 0 {
            self.min = ms;
            self.max = ms;
        } else {
            self.min = self.min.min(ms);
            self.max = self.max.max(ms);
        }
        self.count += 1;
        self.sum += ms;
    }

    /// EMF distribution objects, each with at most 100 values.
    fn to_emf(&self) -> Vec<Value> {
        let mut buckets: Vec<(i32, u64)> = self.buckets.iter().map(|(b, c)| (*b, *c)).collect();
        buckets.sort_unstable();
        buckets
            .chunks(MAX_VALUES)
            .map(|chunk| {
                // Each chunk's own statistics, so several chunks add up to the whole.
                let values: Vec<f64> = chunk
                    .iter()
                    .map(|(b, _)| {
                        let mid = BUCKET_BASE.powf(*b as f64 + 0.5);
                        (mid.clamp(self.min, self.max) * 1000.0).round() / 1000.0
                    })
                    .collect();
                let counts: Vec<u64> = chunk.iter().map(|(_, c)| *c).collect();
                let count: u64 = counts.iter().sum();
                let (sum, min, max) = if chunk.len() == self.buckets.len() {
                    (self.sum, self.min, self.max)
                } else {
                    let sum = values.iter().zip(&counts).map(|(v, c)| v * *c as f64).sum();
                    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (sum, min, max)
                };
                json!({
                    "Values": values,
                    "Counts": counts,
                    "Min": min,
                    "Max": max,
                    "Sum": (sum * 1000.0).round() / 1000.0,
                    "Count": count,
                })
            })
            .collect()
    }
}

#[derive(Default)]
struct RouteStats {
    count: u64,
    latency: Histogram,
}

#[derive(Default)]
struct Aggregate {
    /// Route pattern -> stats per status class (index 0 = 1xx ... 4 = 5xx).
    routes: HashMap<String, [Option<RouteStats>; 5]>,
    auth_failures: HashMap<String, u64>,
    counters: [u64; Counter::ALL.len()],
    pool: Option<(u32, u32)>,
}

struct Inner {
    settings: MetricsSettings,
    aggregate: Mutex<Aggregate>,
}

/// Cheap to clone; every clone records into the same totals.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

fn status_class(status: u16) -> usize {
    (status / 100).clamp(1, 5) as usize - 1
}

fn bounded_key(map_len: usize, key: &str) -> &str {
    if map_len < MAX_KEYS {
        key
    } else {
        OVERFLOW_KEY
    }
}

impl Recorder {
    pub fn new(settings: MetricsSettings) -> Self {
        Recorder {
            inner: Arc::new(Inner {
                settings,
                aggregate: Mutex::new(Aggregate::default()),
            }),
        }
    }

    pub fn settings(&self) -> &MetricsSettings {
        &self.inner.settings
    }

    fn with<R>(&self, f: impl FnOnce(&mut Aggregate) -> R) -> Option<R> {
        if !self.inner.settings.enabled {
            return None;
        }
        // A panic while holding the lock leaves plain counters behind: still usable.
        let mut agg = self
            .inner
            .aggregate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(f(&mut agg))
    }

    /// One served request. `route` is the route pattern (`/v1/players/{id}`), never the raw
    /// path; pass [`UNMATCHED_ROUTE`] for requests no route matched.
    pub fn record_request(&self, route: &str, status: u16, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        self.with(|agg| {
            let len = agg.routes.len();
            let stats = match agg.routes.get_mut(route) {
                Some(s) => s,
                None => agg
                    .routes
                    .entry(bounded_key(len, route).to_owned())
                    .or_default(),
            };
            let slot = stats[status_class(status)].get_or_insert_with(RouteStats::default);
            slot.count += 1;
            slot.latency.record(ms);
        });
    }

    /// One rejected credential; `reason` is the stable code of the failed check.
    pub fn record_auth_failure(&self, reason: &str) {
        self.with(|agg| {
            let len = agg.auth_failures.len();
            match agg.auth_failures.get_mut(reason) {
                Some(n) => *n += 1,
                None => {
                    *agg.auth_failures
                        .entry(bounded_key(len, reason).to_owned())
                        .or_default() += 1
                }
            }
        });
    }

    pub fn incr(&self, counter: Counter) {
        self.with(|agg| agg.counters[counter as usize] += 1);
    }

    /// The database pool's current connections in use and idle (last value per interval wins).
    pub fn set_pool(&self, in_use: u32, idle: u32) {
        self.with(|agg| agg.pool = Some((in_use, idle)));
    }

    /// Takes the interval's totals and renders them as EMF documents stamped `timestamp_ms`.
    pub fn drain_documents(&self, timestamp_ms: i64) -> Vec<Value> {
        let Some(agg) = self.with(std::mem::take) else {
            return Vec::new();
        };
        let s = &self.inner.settings;
        let mut docs = Vec::new();

        let mut routes: Vec<_> = agg.routes.into_iter().collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        for (route, classes) in routes {
            for (i, stats) in classes.iter().enumerate() {
                let Some(stats) = stats else { continue };
                let class = format!("{}xx", i + 1);
                for (n, latency) in stats.latency.to_emf().into_iter().enumerate() {
                    let mut directives = vec![directive(
                        s,
                        &[&[DIM_SERVICE], &[DIM_SERVICE, DIM_ROUTE]],
                        &[(LATENCY, "Milliseconds")],
                    )];
                    let mut root = Map::new();
                    root.insert(LATENCY.into(), latency);
                    // Further chunks of a very wide distribution carry only latency.
                    if n == 0 {
                        directives.push(directive(
                            s,
                            &[&[DIM_SERVICE], &[DIM_SERVICE, DIM_ROUTE, DIM_STATUS_CLASS]],
                            &[(REQUEST_COUNT, "Count")],
                        ));
                        root.insert(REQUEST_COUNT.into(), json!(stats.count));
                    }
                    root.insert(DIM_ROUTE.into(), json!(route));
                    root.insert(DIM_STATUS_CLASS.into(), json!(class));
                    docs.push(document(s, timestamp_ms, directives, root));
                }
            }
        }

        let mut reasons: Vec<_> = agg.auth_failures.into_iter().collect();
        reasons.sort();
        for (reason, count) in reasons {
            let mut root = Map::new();
            root.insert(AUTH_FAILURES.into(), json!(count));
            root.insert(DIM_REASON.into(), json!(reason));
            let d = directive(
                s,
                &[&[DIM_SERVICE], &[DIM_SERVICE, DIM_REASON]],
                &[(AUTH_FAILURES, "Count")],
            );
            docs.push(document(s, timestamp_ms, vec![d], root));
        }

        // Service-wide counters go out every interval, zeros included, so alarms see data.
        let mut root = Map::new();
        let mut metrics: Vec<(&str, &str)> = Vec::new();
        for c in Counter::ALL {
            root.insert(c.metric_name().into(), json!(agg.counters[c as usize]));
            metrics.push((c.metric_name(), "Count"));
        }
        if let Some((in_use, idle)) = agg.pool {
            root.insert(DB_POOL_IN_USE.into(), json!(in_use));
            root.insert(DB_POOL_IDLE.into(), json!(idle));
            metrics.push((DB_POOL_IN_USE, "Count"));
            metrics.push((DB_POOL_IDLE, "Count"));
        }
        let d = directive(s, &[&[DIM_SERVICE]], &metrics);
        docs.push(document(s, timestamp_ms, vec![d], root));
        docs
    }

    /// Writes the interval's documents to stdout, one JSON object per line.
    pub fn flush(&self) {
        let docs = self.drain_documents(chrono::Utc::now().timestamp_millis());
        let mut out = std::io::stdout().lock();
        for doc in docs {
            // One write per line, under the stdout lock, so log lines never interleave.
            let mut line = doc.to_string();
            line.push('\n');
            let _ = out.write_all(line.as_bytes());
        }
        let _ = out.flush();
    }

    /// Flushes every `interval_secs` until the returned task is aborted; call [`flush`] once
    /// more at shutdown for the last partial interval.
    ///
    /// [`flush`]: Recorder::flush
    pub fn spawn_flusher(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.inner.settings.enabled {
            return None;
        }
        let recorder = self.clone();
        let period = Duration::from_secs(self.inner.settings.interval_secs.max(1));
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                recorder.flush();
            }
        }))
    }
}

fn directive(s: &MetricsSettings, dims: &[&[&str]], metrics: &[(&str, &str)]) -> Value {
    json!({
        "Namespace": s.namespace,
        "Dimensions": dims,
        "Metrics": metrics.iter().map(|(n, u)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
    })
}

fn document(
    s: &MetricsSettings,
    timestamp_ms: i64,
    directives: Vec<Value>,
    mut root: Map<String, Value>,
) -> Value {
    root.insert(DIM_SERVICE.into(), json!(s.service));
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(root)
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

/// Checks one document against the EMF specification's rules; returns every violation.
/// Public so integration tests of the whole service can validate captured stdout too.
pub fn emf_violations(doc: &Value) -> Vec<String> {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let mut errs = Vec::new();
    let Some(root) = doc.as_object() else {
        return vec!["root is not an object".into()];
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["_aws missing or not an object".into()];
    };
    match aws.get("Timestamp").and_then(Value::as_i64) {
        // Milliseconds since the epoch: after 2001 in ms is > 1e12; seconds would be < 1e10.
        Some(ts) if ts > 1_000_000_000_000 => {}
        other => errs.push(format!("Timestamp not epoch milliseconds: {other:?}")),
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        errs.push("CloudWatchMetrics missing or not an array".into());
        return errs;
    };
    let mut metric_total = 0;
    for d in directives {
        match d.get("Namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns.len() <= 255 && !ns.starts_with("AWS/") => {}
            other => errs.push(format!("bad Namespace {other:?}")),
        }
        let Some(dim_sets) = d.get("Dimensions").and_then(Value::as_array) else {
            errs.push("Dimensions missing".into());
            continue;
        };
        for set in dim_sets {
            let Some(set) = set.as_array() else {
                errs.push("dimension set not an array".into());
                continue;
            };
            if set.len() > 30 {
                errs.push(format!("dimension set has {} > 30 dimensions", set.len()));
            }
            for dim in set {
                let name = dim.as_str().unwrap_or_default();
                match root.get(name) {
                    Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {}
                    other => errs.push(format!("dimension {name:?} at root is {other:?}")),
                }
            }
        }
        let Some(metrics) = d.get("Metrics").and_then(Value::as_array) else {
            errs.push("Metrics missing".into());
            continue;
        };
        metric_total += metrics.len();
        for m in metrics {
            let name = m.get("Name").and_then(Value::as_str).unwrap_or_default();
            if name.is_empty() || name.len() > 1024 {
                errs.push(format!("bad metric name {name:?}"));
            }
            if let Some(unit) = m.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                errs.push(format!("metric {name}: invalid unit {unit}"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(a))
                    if a.len() <= MAX_VALUES && a.iter().all(Value::is_number) => {}
                Some(Value::Object(o)) => {
                    let values = o.get("Values").and_then(Value::as_array);
                    let counts = o.get("Counts").and_then(Value::as_array);
                    let stats_ok = ["Min", "Max", "Sum", "Count"]
                        .iter()
                        .all(|k| o.get(*k).is_some_and(Value::is_number));
                    let ok = match (values, counts) {
                        (Some(v), Some(c)) => {
                            v.len() == c.len()
                                && v.len() <= MAX_VALUES
                                && v.iter().all(Value::is_number)
                                && c.iter().all(Value::is_number)
                        }
                        _ => false,
                    };
                    if !ok || !stats_ok {
                        errs.push(format!("metric {name}: malformed distribution"));
                    }
                }
                other => errs.push(format!("metric {name} at root is {other:?}")),
            }
        }
    }
    if metric_total > 100 {
        errs.push(format!("{metric_total} metrics > 100"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        Recorder::new(MetricsSettings {
            namespace: "TestNs".into(),
            service: "svc".into(),
            interval_secs: 1,
            enabled: true,
        })
    }

    fn all_valid(docs: &[Value]) {
        for d in docs {
            // Round-trip through text: what CloudWatch sees is a line of JSON.
            let parsed: Value = serde_json::from_str(&d.to_string()).unwrap();
            let errs = emf_violations(&parsed);
            assert!(errs.is_empty(), "{errs:?} in {parsed}");
            assert_eq!(parsed["Service"], "svc");
        }
    }

    #[test]
    fn requests_are_aggregated_per_route_and_status_class() {
        let r = recorder();
        for _ in 0..10 {
            r.record_request("/v1/players", 200, Duration::from_millis(5));
        }
        r.record_request("/v1/players", 201, Duration::from_millis(50));
        r.record_request("/v1/players/{id}", 404, Duration::from_millis(1));
        let docs = r.drain_documents(1_700_000_000_000);
        all_valid(&docs);
        // 2 route/class documents + the service document: not one per request.
        assert_eq!(docs.len(), 3);
        let ok = docs
            .iter()
            .find(|d| d["Route"] == "/v1/players" && d["StatusClass"] == "2xx")
            .unwrap();
        assert_eq!(ok[REQUEST_COUNT], 11);
        assert_eq!(ok[LATENCY]["Count"], 11);
        assert_eq!(ok[LATENCY]["Min"], 5.0);
        assert_eq!(ok[LATENCY]["Max"], 50.0);
        assert_eq!(ok[LATENCY]["Values"].as_array().unwrap().len(), 2);
        assert_eq!(ok[LATENCY]["Counts"], json!([10, 1]));
        let nf = docs.iter().find(|d| d["StatusClass"] == "4xx").unwrap();
        assert_eq!(nf["Route"], "/v1/players/{id}");
        assert_eq!(nf["_aws"]["Timestamp"], 1_700_000_000_000i64);
        // Draining resets the interval.
        let docs = r.drain_documents(1_700_000_060_000);
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn dimension_sets_match_the_documented_ones() {
        let r = recorder();
        r.record_request("/health", 200, Duration::from_millis(1));
        r.record_auth_failure("expired");
        let docs = r.drain_documents(1_700_000_000_000);
        all_valid(&docs);
        let dims_of = |doc: &Value, metric: &str| -> Value {
            doc["_aws"]["CloudWatchMetrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| {
                    d["Metrics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["Name"] == metric)
                })
                .map(|d| {
                    assert_eq!(d["Namespace"], "TestNs");
                    d["Dimensions"].clone()
                })
                .unwrap()
        };
        assert_eq!(
            dims_of(&docs[0], REQUEST_COUNT),
            json!([["Service"], ["Service", "Route", "StatusClass"]])
        );
        assert_eq!(
            dims_of(&docs[0], LATENCY),
            json!([["Service"], ["Service", "Route"]])
        );
        assert_eq!(
            dims_of(&docs[1], AUTH_FAILURES),
            json!([["Service"], ["Service", "Reason"]])
        );
        assert_eq!(docs[1]["Reason"], "expired");
        assert_eq!(dims_of(&docs[2], SECRET_REFRESHES), json!([["Service"]]));
    }

    #[test]
    fn service_counters_and_pool_gauges() {
        let r = recorder();
        r.incr(Counter::KeyFetches);
        r.incr(Counter::KeyFetches);
        r.incr(Counter::SecretRefreshErrors);
        r.set_pool(3, 7);
        let docs = r.drain_documents(1_700_000_000_000);
        all_valid(&docs);
        let d = docs.last().unwrap();
        assert_eq!(d[KEY_FETCHES], 2);
        assert_eq!(d[SECRET_REFRESH_ERRORS], 1);
        assert_eq!(d[JWKS_REFRESHES], 0);
        assert_eq!(d[DB_POOL_IN_USE], 3);
        assert_eq!(d[DB_POOL_IDLE], 7);
    }

    #[test]
    fn wide_latency_distributions_are_split_at_100_values() {
        let r = recorder();
        // 0.01 ms .. ~10 minutes: several hundred buckets.
        let mut ms = 0.01f64;
        let mut n = 0;
        while ms < 600_000.0 {
            r.record_request("/v1/players", 200, Duration::from_secs_f64(ms / 1000.0));
            ms *= 1.03;
            n += 1;
        }
        let docs = r.drain_documents(1_700_000_000_000);
        all_valid(&docs);
        let route_docs: Vec<_> = docs.iter().filter(|d| d.get("Route").is_some()).collect();
        assert!(route_docs.len() > 1);
        let total: u64 = route_docs
            .iter()
            .map(|d| d[LATENCY]["Count"].as_u64().unwrap())
            .sum();
        assert_eq!(total, n);
        let counted: Vec<_> = route_docs
            .iter()
            .filter(|d| d.get(REQUEST_COUNT).is_some())
            .collect();
        assert_eq!(counted.len(), 1, "the request count is emitted once");
        assert_eq!(counted[0][REQUEST_COUNT], n);
    }

    #[test]
    fn route_cardinality_is_bounded() {
        let r = recorder();
        for i in 0..(MAX_KEYS + 50) {
            r.record_request(&format!("/r{i}"), 200, Duration::from_millis(1));
            r.record_auth_failure(&format!("reason{i}"));
        }
        let docs = r.drain_documents(1_700_000_000_000);
        all_valid(&docs);
        assert!(docs.iter().any(|d| d["Route"] == OVERFLOW_KEY));
        assert_eq!(docs.len(), 2 * (MAX_KEYS + 1) + 1);
    }

    #[test]
    fn disabled_recorder_records_and_writes_nothing() {
        let r = Recorder::new(MetricsSettings {
            enabled: false,
            ..MetricsSettings::default()
        });
        r.record_request("/health", 200, Duration::from_millis(1));
        assert!(r.drain_documents(1_700_000_000_000).is_empty());
        assert!(r.spawn_flusher().is_none());
    }

    #[test]
    fn validator_catches_spec_violations() {
        let bad = json!({
            "_aws": {"Timestamp": 1_700_000_000, "CloudWatchMetrics": [{
                "Namespace": "Ns", "Dimensions": [["Service", "Missing"]],
                "Metrics": [{"Name": "X", "Unit": "Furlongs"}, {"Name": "Y"}]}]},
            "Service": "svc", "X": 1
        });
        let errs = emf_violations(&bad);
        assert!(errs.iter().any(|e| e.contains("Timestamp")));
        assert!(errs.iter().any(|e| e.contains("Missing")));
        assert!(errs.iter().any(|e| e.contains("Furlongs")));
        assert!(errs.iter().any(|e| e.contains("metric Y")));
    }

    #[test]
    fn recording_is_cheap() {
        let r = recorder();
        let start = std::time::Instant::now();
        for i in 0..100_000u32 {
            r.record_request(
                "/v1/players/{id}",
                200 + (i % 3) as u16 * 100,
                Duration::from_micros(i as u64),
            );
        }
        // Generous bound for a shared, unoptimised test build: well under 2 µs per call.
        assert!(
            start.elapsed() < Duration::from_millis(200 * 5),
            "{:?}",
            start.elapsed()
        );
    }
}
