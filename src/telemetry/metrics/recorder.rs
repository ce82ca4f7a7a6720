//! The aggregating recorder: one interval's totals under a mutex (recording a request is a map
//! lookup and a few additions, whatever the traffic), drained by a flusher task every
//! `METRICS_INTERVAL_SECS` into EMF documents on stdout.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::histogram::Histogram;
use super::{Counter, MetricsSettings, emf};

/// Distinct routes or reasons kept per interval; more are counted under `other`.
const MAX_KEYS: usize = 200;
const OVERFLOW_KEY: &str = "other";

#[derive(Default)]
pub(super) struct RouteStats {
    pub count: u64,
    pub latency: Histogram,
}

/// One interval's totals.
#[derive(Default)]
pub(super) struct Aggregate {
    /// Route pattern -> stats per status class (index 0 = 1xx ... 4 = 5xx).
    pub routes: HashMap<String, [Option<RouteStats>; 5]>,
    pub auth_failures: HashMap<String, u64>,
    pub counters: [u64; Counter::ALL.len()],
    pub pool: Option<(u32, u32)>,
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
    /// path; pass [`super::UNMATCHED_ROUTE`] for requests no route matched.
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
        match self.with(std::mem::take) {
            Some(agg) => emf::documents(&self.inner.settings, agg, timestamp_ms),
            None => Vec::new(),
        }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{all_valid, recorder};
    use super::super::*;
    use super::*;

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
            ..crate::config::defaults()
        });
        r.record_request("/health", 200, Duration::from_millis(1));
        assert!(r.drain_documents(1_700_000_000_000).is_empty());
        assert!(r.spawn_flusher().is_none());
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
