//! Timing arithmetic: the peer's own functions (so both sides of a ratio are computed
//! alike), and a latency summary for the REST mode. Measurements in `f64`, never money.

#![allow(clippy::float_arithmetic)] // timings, not money

use serde_json::json;
use std::time::Duration;

pub use etr_peer_bench::stats::{ms, per_second, percentile, ratio, seconds};

/// Nearest-rank percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    pub fn of(mut values: Vec<Duration>) -> Latency {
        values.sort_unstable();
        Latency {
            p50: percentile(&values, 500),
            p90: percentile(&values, 900),
            p99: percentile(&values, 990),
            max: values.last().copied().unwrap_or_default(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
        })
    }
}

/// `v` rounded to 0.1.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `v` rounded to 0.001.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
