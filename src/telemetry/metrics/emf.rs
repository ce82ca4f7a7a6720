//! Rendering one interval's totals as CloudWatch Embedded Metric Format documents: one per route
//! and status class, one per auth-failure reason, one for the service-wide counters. Every
//! document carries the `Service` dimension; latency goes out as a distribution
//! (`Values`/`Counts` with `Min`/`Max`/`Sum`/`Count`), split where it exceeds EMF's 100 values.

use serde_json::{Map, Value, json};

use super::histogram::Distribution;
use super::recorder::Aggregate;
use super::{
    AUTH_FAILURES, Counter, DB_POOL_IDLE, DB_POOL_IN_USE, DIM_REASON, DIM_ROUTE, DIM_SERVICE,
    DIM_STATUS_CLASS, LATENCY, MetricsSettings, REQUEST_COUNT,
};

/// EMF allows at most 100 values in one metric's array.
const MAX_VALUES: usize = 100;

/// The documents of one interval, stamped `timestamp_ms`.
pub(super) fn documents(s: &MetricsSettings, agg: Aggregate, timestamp_ms: i64) -> Vec<Value> {
    let mut docs = Vec::new();

    let mut routes: Vec<_> = agg.routes.into_iter().collect();
    routes.sort_by(|a, b| a.0.cmp(&b.0));
    for (route, classes) in routes {
        for (i, stats) in classes.iter().enumerate() {
            let Some(stats) = stats else { continue };
            let class = format!("{}xx", i + 1);
            let parts = stats.latency.distributions(MAX_VALUES);
            for (n, latency) in parts.into_iter().enumerate() {
                let mut directives = vec![directive(
                    s,
                    &[&[DIM_SERVICE], &[DIM_SERVICE, DIM_ROUTE]],
                    &[(LATENCY, "Milliseconds")],
                )];
                let mut root = Map::new();
                root.insert(LATENCY.into(), distribution(latency));
                // Further parts of a very wide distribution carry only latency.
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

fn distribution(d: Distribution) -> Value {
    json!({
        "Values": d.values,
        "Counts": d.counts,
        "Min": d.min,
        "Max": d.max,
        "Sum": (d.sum * 1000.0).round() / 1000.0,
        "Count": d.count,
    })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::SECRET_REFRESHES;
    use super::super::emf_spec::emf_violations;
    use super::super::test_support::{all_valid, recorder};
    use super::*;

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
}
