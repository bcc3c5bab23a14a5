//! Loop timing statistics: per-tick wake-up jitter, deadline misses and the tick's own compute time,
//! summarised as percentiles.
//!
//! The control thread records into preallocated histograms (no allocation per tick); percentiles are computed
//! once at the end.

use std::time::Duration;

/// Width of one jitter bucket [ns]: 1 µs resolution up to [`JITTER_RANGE_NS`].
const JITTER_BUCKET_NS: u64 = 1_000;
/// Jitter beyond this lands in the overflow bucket [ns] (still counted in `max`).
const JITTER_RANGE_NS: u64 = 20_000_000;
/// Width of one compute-time bucket [ns]: 50 ns resolution (a tick computes in a few µs) up to
/// [`COMPUTE_RANGE_NS`].
const COMPUTE_BUCKET_NS: u64 = 50;
/// Compute times beyond this land in the overflow bucket [ns] (still counted in `max`).
const COMPUTE_RANGE_NS: u64 = 5_000_000;

/// A fixed-memory histogram of durations with nearest-rank percentiles.
#[derive(Clone)]
struct Histogram {
    bucket_ns: u64,
    buckets: Vec<u32>,
    count: u64,
    max_ns: u64,
    sum_ns: u128,
}

impl Histogram {
    /// Buckets of `bucket_ns` up to `range_ns`, plus one overflow bucket. Not real-time safe (allocates).
    fn new(bucket_ns: u64, range_ns: u64) -> Self {
        Self { bucket_ns, buckets: vec![0; (range_ns / bucket_ns) as usize + 1], count: 0, max_ns: 0, sum_ns: 0 }
    }

    /// Records one duration [ns]. Real-time safe.
    fn record(&mut self, ns: u64) {
        let bucket = ((ns / self.bucket_ns) as usize).min(self.buckets.len() - 1);
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
        self.count += 1;
        self.sum_ns += ns as u128;
        self.max_ns = self.max_ns.max(ns);
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
                return ((i as u64 + 1) * self.bucket_ns).min(self.max_ns);
            }
        }
        self.max_ns
    }

    fn mean_ns(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum_ns as f64 / self.count as f64 }
    }
}

/// Per-tick timing of the loop: wake-up jitter (lateness of each wake-up against its absolute deadline), the
/// tick's own compute time, and deadline misses (a tick whose work ended after the next tick's deadline).
#[derive(Clone)]
pub struct LoopStats {
    jitter: Histogram,
    compute: Histogram,
    deadline_misses: u64,
    max_work_ns: u64,
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
    /// Longest work of a tick: read → update → safety → write → hand-over of the sample [µs].
    pub max_compute_us: f64,
    /// The tick's own compute time (controller update, supervisor, bookkeeping, building the sample; the
    /// backend's read/write — the plant step or the bus I/O — and the telemetry hand-over excluded): median [µs].
    pub tick_compute_p50_us: f64,
    /// The tick's own compute time: 99th percentile [µs].
    pub tick_compute_p99_us: f64,
    /// The tick's own compute time: maximum [µs].
    pub tick_compute_max_us: f64,
}

impl Default for LoopStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopStats {
    /// Allocates the histograms (≈ 80 KB jitter, ≈ 400 KB compute). Not real-time safe; call before the loop.
    pub fn new() -> Self {
        Self {
            jitter: Histogram::new(JITTER_BUCKET_NS, JITTER_RANGE_NS),
            compute: Histogram::new(COMPUTE_BUCKET_NS, COMPUTE_RANGE_NS),
            deadline_misses: 0,
            max_work_ns: 0,
        }
    }

    /// Records one tick: how late it woke against its deadline, how long its work took (backend calls
    /// included) and how long its own computation took (backend calls and telemetry hand-over excluded), given
    /// the period. Real-time safe (no allocation).
    pub fn record(&mut self, lateness: Duration, work: Duration, tick_compute: Duration, period: Duration) {
        let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        self.jitter.record(ns(lateness));
        self.compute.record(ns(tick_compute));
        self.max_work_ns = self.max_work_ns.max(ns(work));
        if lateness + work > period {
            self.deadline_misses += 1;
        }
    }

    /// Percentiles and counters. Not real-time safe (scans the histograms).
    pub fn summary(&self) -> TimingSummary {
        let us = |ns: u64| ns as f64 / 1_000.0;
        TimingSummary {
            ticks: self.jitter.count,
            p50_us: us(self.jitter.percentile_ns(500)),
            p99_us: us(self.jitter.percentile_ns(990)),
            p999_us: us(self.jitter.percentile_ns(999)),
            max_us: us(self.jitter.max_ns),
            mean_us: self.jitter.mean_ns() / 1_000.0,
            deadline_misses: self.deadline_misses,
            max_compute_us: us(self.max_work_ns),
            tick_compute_p50_us: us(self.compute.percentile_ns(500)),
            tick_compute_p99_us: us(self.compute.percentile_ns(990)),
            tick_compute_max_us: us(self.compute.max_ns),
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
            s.record(Duration::from_micros(5), Duration::from_micros(10), Duration::from_micros(3), period);
        }
        for _ in 0..9 {
            s.record(Duration::from_micros(50), Duration::from_micros(10), Duration::from_micros(3), period);
        }
        s.record(Duration::from_millis(2), Duration::from_micros(10), Duration::from_micros(3), period);
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
        s.record(Duration::ZERO, Duration::from_micros(1500), Duration::from_micros(3), Duration::from_millis(1));
        assert_eq!(s.summary().deadline_misses, 1);
        assert_eq!(s.summary().max_compute_us, 1500.0);
    }

    #[test]
    fn empty_stats_are_zero_not_nan() {
        let sum = LoopStats::new().summary();
        assert_eq!(sum.ticks, 0);
        assert_eq!(sum.mean_us, 0.0);
    }

    #[test]
    fn tick_compute_percentiles_have_sub_microsecond_resolution() {
        let mut s = LoopStats::new();
        let period = Duration::from_millis(1);
        // 98 ticks computing 1.2 µs, 2 ticks computing 40 µs (a trial end, say).
        for _ in 0..98 {
            s.record(Duration::ZERO, Duration::from_micros(20), Duration::from_nanos(1_200), period);
        }
        for _ in 0..2 {
            s.record(Duration::ZERO, Duration::from_micros(60), Duration::from_micros(40), period);
        }
        let sum = s.summary();
        assert!((1.2..=1.25).contains(&sum.tick_compute_p50_us), "{sum:?}");
        assert!((40.0..=40.05).contains(&sum.tick_compute_p99_us), "{sum:?}");
        assert_eq!(sum.tick_compute_max_us, 40.0);
        assert_eq!(sum.max_compute_us, 60.0, "the whole work of a tick, backend included");
    }
}
