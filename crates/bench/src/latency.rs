//! Latency samples reduced to the figures a report shows: from a list of samples, or from a
//! fixed-size histogram when a run is too long to keep every sample.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// Bits of sub-bucket index per power of two: a [`LatencyHistogram`] keeps every value to
/// within 1/64 (1.6 %) of itself.
const SUB_BUCKET_BITS: u32 = 6;
/// Sub-buckets per power of two.
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// The highest power of two a [`LatencyHistogram`] tells apart: 2^40 µs is about 12 days;
/// longer samples count as that.
const MAX_OCTAVE: u32 = 40;
/// Buckets of a [`LatencyHistogram`]: one per microsecond below `2 * SUB_BUCKETS`, then
/// `SUB_BUCKETS` per power of two up to `MAX_OCTAVE`.
const N_BUCKETS: usize =
    (2 * SUB_BUCKETS + (MAX_OCTAVE - SUB_BUCKET_BITS) as u64 * SUB_BUCKETS) as usize;

/// Latencies counted in log-linear buckets of microseconds, shared by any number of tasks:
/// memory stays the same (18 KiB) however long a run records, and percentiles come out
/// within 1.6 % of the exact ones. The count, mean and maximum are exact.
pub(crate) struct LatencyHistogram {
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub(crate) fn new() -> Self {
        LatencyHistogram {
            counts: (0..N_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    /// Counts one sample.
    pub(crate) fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The samples counted so far, summarized (nearest-rank percentiles, each the middle of
    /// its bucket and never more than the maximum).
    pub(crate) fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return LatencySummary::from_samples(Vec::new());
        }
        let max_us = self.max_us.load(Ordering::Relaxed);
        let percentile = |fraction: f64| {
            let rank = ((fraction * n as f64).ceil() as u64).clamp(1, n);
            let mut seen = 0;
            let bucket = counts
                .iter()
                .position(|count| {
                    seen += count;
                    seen >= rank
                })
                .unwrap_or(N_BUCKETS - 1);
            microseconds_ms(bucket_middle(bucket).min(max_us))
        };
        LatencySummary {
            n: usize::try_from(n).unwrap_or(usize::MAX),
            p50_ms: percentile(0.50),
            p90_ms: percentile(0.90),
            p99_ms: percentile(0.99),
            max_ms: microseconds_ms(max_us),
            mean_ms: microseconds_ms(self.sum_us.load(Ordering::Relaxed)) / n as f64,
        }
    }
}

/// The bucket of a value in microseconds.
fn bucket_of(us: u64) -> usize {
    if us < 2 * SUB_BUCKETS {
        return us as usize;
    }
    let octave = (63 - us.leading_zeros()).min(MAX_OCTAVE);
    let us = us.min((1 << (MAX_OCTAVE + 1)) - 1);
    let shift = octave - SUB_BUCKET_BITS;
    let sub_bucket = (us >> shift) - SUB_BUCKETS;
    (2 * SUB_BUCKETS + u64::from(shift - 1) * SUB_BUCKETS + sub_bucket) as usize
}

/// The middle of a bucket's values, in microseconds.
fn bucket_middle(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < 2 * SUB_BUCKETS {
        return bucket;
    }
    let above = bucket - 2 * SUB_BUCKETS;
    let shift = above / SUB_BUCKETS + 1;
    let low = (SUB_BUCKETS + above % SUB_BUCKETS) << shift;
    low + ((1 << shift) - 1) / 2
}

fn microseconds_ms(us: u64) -> f64 {
    us as f64 / 1000.0
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
    fn buckets_are_contiguous_and_their_middles_fall_inside() {
        let mut previous = 0;
        for us in (0..1_000_000).chain([u64::MAX / 2, u64::MAX]) {
            let bucket = bucket_of(us);
            assert!(bucket < N_BUCKETS, "{us} µs");
            assert!(
                bucket == previous || bucket == previous + 1 || us >= 1_000_000,
                "{us} µs"
            );
            previous = bucket;
            if us < 1_000_000 {
                assert_eq!(bucket_of(bucket_middle(bucket)), bucket, "{us} µs");
                let error = bucket_middle(bucket).abs_diff(us) as f64;
                assert!(error <= us as f64 / SUB_BUCKETS as f64, "{us} µs");
            }
        }
        assert_eq!(bucket_of(u64::MAX), N_BUCKETS - 1);
    }

    #[test]
    fn histogram_percentiles_are_close_to_the_exact_ones() {
        let histogram = LatencyHistogram::new();
        let samples = ms(&(1..=200).rev().collect::<Vec<_>>());
        for sample in &samples {
            histogram.record(*sample);
        }
        let exact = LatencySummary::from_samples(samples);
        let summary = histogram.summary();
        assert_eq!(
            (summary.n, summary.max_ms, summary.mean_ms),
            (200, 200.0, 100.5)
        );
        for (approximate, exact) in [
            (summary.p50_ms, exact.p50_ms),
            (summary.p90_ms, exact.p90_ms),
            (summary.p99_ms, exact.p99_ms),
        ] {
            assert!(
                (approximate - exact).abs() <= exact / 64.0,
                "{approximate} vs {exact}"
            );
        }
    }

    #[test]
    fn an_empty_histogram_summarizes_to_zero() {
        assert_eq!(
            LatencyHistogram::new().summary(),
            LatencySummary::from_samples(Vec::new())
        );
    }

    #[test]
    fn rates_of_an_empty_interval_are_zero() {
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
    }
}
