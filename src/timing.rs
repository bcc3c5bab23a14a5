//! Loop timing statistics: per-tick wake-up jitter and deadline misses, summarised as percentiles.
//!
//! The control thread records into a preallocated histogram (no allocation per tick); percentiles are computed
//! once at the end.

use std::time::Duration;

/// Width of one histogram bucket [ns]. 1 µs resolution up to [`HISTOGRAM_RANGE_NS`].
const BUCKET_NS: u64 = 1_000;
/// Jitter beyond this lands in the overflow bucket [ns] (still counted in `max`).
const HISTOGRAM_RANGE_NS: u64 = 20_000_000;
const BUCKETS: usize = (HISTOGRAM_RANGE_NS / BUCKET_NS) as usize + 1;

/// Fixed-memory histogram of tick jitter (lateness of each wake-up against its absolute deadline) and counters of
/// deadline misses (a tick whose work ended after the next tick's deadline).
#[derive(Clone)]
pub struct LoopStats {
    buckets: Vec<u32>,
    count: u64,
    max_ns: u64,
    sum_ns: u128,
    deadline_misses: u64,
    max_compute_ns: u64,
}

/// Summary of a run's loop timing.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TimingSummary {
    /// Ticks recorded.
    pub ticks: u64,
    /// Median wake-up jitter [µs].
    pub p50_us: f64,
    /// 99th percentile jitter [µs].
    pub p99_us: f64,
    /// 99.9th percentile jitter [µs].
    pub p999_us: f64,
    /// Largest jitter [µs].
    pub max_us: f64,
    /// Mean jitter [µs].
    pub mean_us: f64,
    /// Ticks whose work ended after the next deadline.
    pub deadline_misses: u64,
    /// Longest read→update→safety→write computation [µs].
    pub max_compute_us: f64,
}

impl Default for LoopStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopStats {
    /// Allocates the histogram (≈ 80 KB). Not real-time safe; call before the loop.
    pub fn new() -> Self {
        Self { buckets: vec![0; BUCKETS], count: 0, max_ns: 0, sum_ns: 0, deadline_misses: 0, max_compute_ns: 0 }
    }

    /// Records one tick: how late it woke against its deadline and how long its work took, given the period.
    /// Real-time safe (no allocation).
    pub fn record(&mut self, lateness: Duration, compute: Duration, period: Duration) {
        let late_ns = lateness.as_nanos().min(u64::MAX as u128) as u64;
        let bucket = ((late_ns / BUCKET_NS) as usize).min(BUCKETS - 1);
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
        self.count += 1;
        self.sum_ns += late_ns as u128;
        self.max_ns = self.max_ns.max(late_ns);
        let compute_ns = compute.as_nanos().min(u64::MAX as u128) as u64;
        self.max_compute_ns = self.max_compute_ns.max(compute_ns);
        if lateness + compute > period {
            self.deadline_misses += 1;
        }
    }

    /// Ticks recorded so far.
    pub fn ticks(&self) -> u64 {
        self.count
    }

    /// Nearest-rank percentile, `per_mille` = 500 for the median, 999 for p99.9. The rank is computed in integers:
    /// in floating point 0.999 · 1000 rounds up past 999 and the p99.9 of 1000 ticks became their maximum.
    fn percentile_ns(&self, per_mille: u64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = (per_mille * self.count).div_ceil(1000).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n as u64;
            if seen >= rank {
                // Upper edge of the bucket, capped by the true maximum: never under-reports.
                return ((i as u64 + 1) * BUCKET_NS).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Percentiles and counters. Not real-time safe (scans the histogram).
    pub fn summary(&self) -> TimingSummary {
        let us = |ns: u64| ns as f64 / 1_000.0;
        TimingSummary {
            ticks: self.count,
            p50_us: us(self.percentile_ns(500)),
            p99_us: us(self.percentile_ns(990)),
            p999_us: us(self.percentile_ns(999)),
            max_us: us(self.max_ns),
            mean_us: if self.count == 0 { 0.0 } else { self.sum_ns as f64 / self.count as f64 / 1_000.0 },
            deadline_misses: self.deadline_misses,
            max_compute_us: us(self.max_compute_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution_p999_is_not_the_max() {
        let mut s = LoopStats::new();
        let period = Duration::from_millis(1);
        // 990 ticks 5 µs late, 9 ticks 50 µs late, 1 tick 2 ms late (a miss).
        for _ in 0..990 {
            s.record(Duration::from_micros(5), Duration::from_micros(10), period);
        }
        for _ in 0..9 {
            s.record(Duration::from_micros(50), Duration::from_micros(10), period);
        }
        s.record(Duration::from_millis(2), Duration::from_micros(10), period);
        let sum = s.summary();
        assert_eq!(sum.ticks, 1000);
        assert!((5.0..=6.0).contains(&sum.p50_us), "{sum:?}");
        assert!((5.0..=6.0).contains(&sum.p99_us), "{sum:?}");
        assert!((50.0..=51.0).contains(&sum.p999_us), "{sum:?}");
        assert_eq!(sum.max_us, 2000.0);
        assert_eq!(sum.deadline_misses, 1);
    }

    #[test]
    fn compute_overrun_counts_as_a_deadline_miss() {
        let mut s = LoopStats::new();
        s.record(Duration::ZERO, Duration::from_micros(1500), Duration::from_millis(1));
        assert_eq!(s.summary().deadline_misses, 1);
        assert_eq!(s.summary().max_compute_us, 1500.0);
    }

    #[test]
    fn empty_stats_are_zero_not_nan() {
        let sum = LoopStats::new().summary();
        assert_eq!(sum.ticks, 0);
        assert_eq!(sum.mean_us, 0.0);
    }
}
