//! The CloudWatch Embedded Metric Format specification's rules as a checker, for tests only:
//! the integration suites run it on the service's captured stdout, and the unit tests of
//! `src/telemetry/metrics` include this file by path (`#[path]`) to check the documents they
//! render. So it names nothing of either crate, only `serde_json`, and none of it ships in the
//! binary.

use serde_json::Value;

/// EMF allows at most 100 values in one metric's array.
const MAX_VALUES: usize = 100;

/// Checks one document against the EMF specification's rules; returns every violation.
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
