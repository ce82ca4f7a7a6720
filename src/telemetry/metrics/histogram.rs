//! The latency histogram: log-spaced buckets, so an interval of any number of requests keeps a
//! few dozen counts instead of every value, and its exact count, sum, minimum and maximum.
//! It knows nothing of JSON; [`super::emf`] renders the distributions it hands out.

use std::collections::HashMap;

/// Latency buckets are 4% wide: plenty for p50/p99, and few distinct values per interval.
const BUCKET_BASE: f64 = 1.04;

/// Latency distribution on log-spaced buckets.
#[derive(Default)]
pub(super) struct Histogram {
    buckets: HashMap<i32, u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

/// One part of a histogram in the shape of an EMF distribution: bucket values with their
/// counts, and the part's own statistics.
pub(super) struct Distribution {
    pub values: Vec<f64>,
    pub counts: Vec<u64>,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub(super) fn record(&mut self, ms: f64) {
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

    /// The distribution in parts of at most `max_values` buckets each, in bucket order.
    pub(super) fn distributions(&self, max_values: usize) -> Vec<Distribution> {
        let mut buckets: Vec<(i32, u64)> = self.buckets.iter().map(|(b, c)| (*b, *c)).collect();
        buckets.sort_unstable();
        buckets
            .chunks(max_values)
            .map(|chunk| {
                // Each part's own statistics, so several parts add up to the whole.
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
                Distribution {
                    values,
                    counts,
                    min,
                    max,
                    sum,
                    count,
                }
            })
            .collect()
    }
}
