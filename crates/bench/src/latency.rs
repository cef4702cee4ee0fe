//! Latency samples reduced to the figures a report shows.

use std::time::Duration;

use serde::Serialize;

/// Percentiles of one kind of operation, in milliseconds.
///
/// Percentiles use the nearest-rank method: p99 of 200 samples is the 198th smallest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// Summarizes `samples` (all zeros when there are none).
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return LatencySummary {
                n: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            };
        }
        samples.sort_unstable();
        let n = samples.len();
        let rank = |fraction: f64| {
            let rank = (fraction * n as f64).ceil() as usize;
            samples[rank.clamp(1, n) - 1]
        };
        let total: Duration = samples.iter().sum();
        LatencySummary {
            n,
            p50_ms: milliseconds(rank(0.50)),
            p90_ms: milliseconds(rank(0.90)),
            p99_ms: milliseconds(rank(0.99)),
            max_ms: milliseconds(samples[n - 1]),
            mean_ms: milliseconds(total) / n as f64,
        }
    }
}

/// A duration as fractional milliseconds.
pub(crate) fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Operations per second (0 for an empty interval).
pub(crate) fn per_second(n: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let summary = LatencySummary::from_samples(ms(&(1..=200).rev().collect::<Vec<_>>()));
        assert_eq!(summary.n, 200);
        assert_eq!(summary.p50_ms, 100.0);
        assert_eq!(summary.p90_ms, 180.0);
        assert_eq!(summary.p99_ms, 198.0);
        assert_eq!(summary.max_ms, 200.0);
        assert_eq!(summary.mean_ms, 100.5);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let summary = LatencySummary::from_samples(ms(&[7]));
        assert_eq!(
            (summary.p50_ms, summary.p99_ms, summary.max_ms),
            (7.0, 7.0, 7.0)
        );
    }

    #[test]
    fn no_samples_summarize_to_zero() {
        let summary = LatencySummary::from_samples(Vec::new());
        assert_eq!(summary.n, 0);
        assert_eq!(summary.max_ms, 0.0);
    }

    #[test]
    fn rates_of_an_empty_interval_are_zero() {
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
    }
}
