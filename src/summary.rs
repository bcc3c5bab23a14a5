//! Per-block session statistics (the table at the end of `plexo sim`/`run`, and `<session>.summary.json`) and the
//! movement-smoothness measure.
//!
//! Per block: trials, success rate, mean final handle error [mm], mean RMS joint tracking error [deg], mean
//! assistance (RMS norm of the mode torque, gravity and weight support excluded) [Nm], patient effort share
//! `effort / (effort + assistance)` of the RMS torque norms [-], and smoothness as the number of peaks of the hand
//! speed profile per reach (1 = one smooth bell; recovering stroke patients' reaches have many sub-movements that
//! merge as they recover: Rohrer et al. 2002, J Neurosci 22(18):8297–8304).

use nalgebra::Vector3;
use plexo_controller::{AanLaw, Mode, TrialRecord};
use serde::Serialize;

/// Running sums of one block. Updated on the control thread without allocation.
#[derive(Clone, Debug)]
pub struct BlockAccumulator {
    name: String,
    mode: Mode,
    law: AanLaw,
    trials: u32,
    successes: u32,
    final_error_m: f64,
    rms_error_rad: f64,
    assistance_nm: f64,
    effort_nm: f64,
    share: f64,
    peaks: u64,
    duration: f64,
}

impl BlockAccumulator {
    /// An empty block. Not real-time safe (copies the name).
    pub fn new(name: &str, mode: Mode, law: AanLaw) -> Self {
        Self {
            name: name.to_owned(),
            mode,
            law,
            trials: 0,
            successes: 0,
            final_error_m: 0.0,
            rms_error_rad: 0.0,
            assistance_nm: 0.0,
            effort_nm: 0.0,
            share: 0.0,
            peaks: 0,
            duration: 0.0,
        }
    }

    /// Adds one trial: the controller's record, the final handle distance to the target [m] and the number of
    /// speed peaks. Real-time safe.
    pub fn add_trial(&mut self, record: &TrialRecord, final_error_m: f64, peaks: u32) {
        let m = &record.metrics;
        self.trials += 1;
        self.successes += u32::from(record.reached);
        self.final_error_m += final_error_m;
        let n = m.rms_error.len().max(1) as f64;
        self.rms_error_rad += (m.rms_error.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
        self.assistance_nm += m.assistance_rms;
        self.effort_nm += m.effort_rms;
        let total = m.assistance_rms + m.effort_rms;
        self.share += if total > 1e-9 { m.effort_rms / total } else { 0.0 };
        self.peaks += u64::from(peaks);
        self.duration += m.duration;
    }
}

/// Statistics of one block (means over its trials).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BlockSummary {
    /// Block name from the protocol.
    pub name: String,
    /// Mode and law, e.g. `ActiveAssisted/Emken`.
    pub mode: String,
    /// Trials completed.
    pub trials: u32,
    /// Trials that reached the target in time.
    pub successes: u32,
    /// Success rate [-].
    pub success_rate: f64,
    /// Mean final distance of the handle to the target [m].
    pub mean_final_error_m: f64,
    /// Mean RMS joint tracking error (root mean square over joints) [rad].
    pub mean_rms_error_rad: f64,
    /// Mean RMS assistance torque norm [Nm].
    pub mean_assistance_nm: f64,
    /// Mean RMS patient torque norm (estimate) [Nm].
    pub mean_patient_effort_nm: f64,
    /// Mean patient effort share [-].
    pub patient_effort_share: f64,
    /// Mean hand-speed peaks per trial [-] (1 = smooth).
    pub mean_speed_peaks: f64,
    /// Mean trial duration [s].
    pub mean_duration_s: f64,
}

/// The session's blocks (only those with at least one trial).
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct SessionSummary {
    /// Per-block statistics in protocol order.
    pub blocks: Vec<BlockSummary>,
}

impl SessionSummary {
    /// Means from the accumulators. Not real-time safe.
    pub fn from_blocks(blocks: Vec<BlockAccumulator>) -> Self {
        let blocks = blocks
            .into_iter()
            .filter(|b| b.trials > 0)
            .map(|b| {
                let n = f64::from(b.trials);
                BlockSummary {
                    name: b.name,
                    mode: format!(
                        "{:?}{}",
                        b.mode,
                        if b.mode == Mode::ActiveAssisted { format!("/{:?}", b.law) } else { String::new() }
                    ),
                    trials: b.trials,
                    successes: b.successes,
                    success_rate: f64::from(b.successes) / n,
                    mean_final_error_m: b.final_error_m / n,
                    mean_rms_error_rad: b.rms_error_rad / n,
                    mean_assistance_nm: b.assistance_nm / n,
                    mean_patient_effort_nm: b.effort_nm / n,
                    patient_effort_share: b.share / n,
                    mean_speed_peaks: b.peaks as f64 / n,
                    mean_duration_s: b.duration / n,
                }
            })
            .collect();
        Self { blocks }
    }

    /// Total trials.
    pub fn trials(&self) -> u32 {
        self.blocks.iter().map(|b| b.trials).sum()
    }

    /// The table printed at the end of a session.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<20} {:<22} {:>6} {:>8} {:>10} {:>9} {:>10} {:>8} {:>7}\n",
            "block", "mode", "trials", "success", "error[mm]", "rms[deg]", "assist[Nm]", "effort%", "peaks"
        ));
        for b in &self.blocks {
            out.push_str(&format!(
                "{:<20} {:<22} {:>6} {:>7.0}% {:>10.1} {:>9.2} {:>10.2} {:>7.0}% {:>7.2}\n",
                truncate(&b.name, 20),
                truncate(&b.mode, 22),
                b.trials,
                b.success_rate * 100.0,
                b.mean_final_error_m * 1000.0,
                b.mean_rms_error_rad.to_degrees(),
                b.mean_assistance_nm,
                b.patient_effort_share * 100.0,
                b.mean_speed_peaks
            ));
        }
        out
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The hand speed of one trial, decimated to 100 Hz into a buffer allocated once; counts speed peaks at the end
/// of the trial. Real-time safe after [`SpeedProfile::new`].
#[derive(Clone, Debug)]
pub struct SpeedProfile {
    speeds: Vec<f64>,
    capacity: usize,
    decimation: u32,
    counter: u32,
    last: Option<Vector3<f64>>,
    interval: f64,
}

/// A peak counts only if the speed rose and then fell by at least this share of the trial's peak speed
/// (hysteresis: encoder noise and tremor make tiny wiggles that are not sub-movements).
const PEAK_PROMINENCE: f64 = 0.15;
/// Speeds below this are rest [m/s] (a trial with no movement has no peak).
const REST_SPEED: f64 = 0.01;

impl SpeedProfile {
    /// A profile holding `capacity` samples taken every `decimation` ticks of `dt` [s]. Not real-time safe.
    pub fn new(capacity: usize, decimation: u32, dt: f64) -> Self {
        Self {
            speeds: Vec::with_capacity(capacity),
            capacity,
            decimation: decimation.max(1),
            counter: 0,
            last: None,
            interval: dt * f64::from(decimation.max(1)),
        }
    }

    /// Starts a new trial. Real-time safe.
    pub fn reset(&mut self) {
        self.speeds.clear();
        self.counter = 0;
        self.last = None;
    }

    /// Adds the hand position of one tick [m]. Real-time safe (drops samples beyond the capacity).
    pub fn push(&mut self, hand: &Vector3<f64>) {
        if self.counter.is_multiple_of(self.decimation) {
            if let Some(last) = self.last
                && self.speeds.len() < self.capacity
            {
                self.speeds.push((hand - last).norm() / self.interval);
            }
            self.last = Some(*hand);
        }
        self.counter = self.counter.wrapping_add(1);
    }

    /// Number of speed peaks of the trial so far, after a 3-point moving average. Real-time safe.
    pub fn peaks(&self) -> u32 {
        count_peaks(&self.speeds)
    }
}

/// Peaks of a speed profile [m/s] with hysteresis ([`PEAK_PROMINENCE`] of the maximum). Allocation-free.
pub fn count_peaks(speeds: &[f64]) -> u32 {
    let smooth = |i: usize| {
        let lo = i.saturating_sub(1);
        let hi = (i + 1).min(speeds.len() - 1);
        (speeds[lo] + speeds[i] + speeds[hi]) / 3.0
    };
    if speeds.is_empty() {
        return 0;
    }
    let max = (0..speeds.len()).map(smooth).fold(0.0, f64::max);
    if max < REST_SPEED {
        return 0;
    }
    let delta = PEAK_PROMINENCE * max;
    let mut peaks = 0;
    let mut rising = true;
    let mut extreme = smooth(0); // running max while rising, running min while falling
    for i in 1..speeds.len() {
        let v = smooth(i);
        if rising {
            if v > extreme {
                extreme = v;
            } else if v < extreme - delta {
                peaks += 1;
                rising = false;
                extreme = v;
            }
        } else if v < extreme {
            extreme = v;
        } else if v > extreme + delta {
            rising = true;
            extreme = v;
        }
    }
    // A profile that ends while still high (trial cut at the timeout mid-reach) ends on a peak.
    if rising && extreme >= REST_SPEED.max(delta) {
        peaks += 1;
    }
    peaks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bell(n: usize, amplitude: f64) -> Vec<f64> {
        (0..n).map(|i| amplitude * (std::f64::consts::PI * i as f64 / (n - 1) as f64).sin().powi(2)).collect()
    }

    #[test]
    fn a_single_minimum_jerk_like_bell_has_one_peak() {
        assert_eq!(count_peaks(&bell(100, 0.4)), 1);
    }

    #[test]
    fn two_sub_movements_count_two_peaks_and_noise_does_not_add_any() {
        let mut s = bell(60, 0.4);
        s.extend(bell(60, 0.25));
        assert_eq!(count_peaks(&s), 2);
        // ±1 % noise of the peak speed is below the prominence threshold.
        let noisy: Vec<f64> =
            bell(100, 0.4).iter().enumerate().map(|(i, v)| v + 0.004 * (i as f64 * 2.7).sin()).collect();
        assert_eq!(count_peaks(&noisy), 1);
    }

    #[test]
    fn no_movement_no_peak() {
        assert_eq!(count_peaks(&[0.0; 50]), 0);
        assert_eq!(count_peaks(&[]), 0);
        assert_eq!(count_peaks(&[0.001, 0.002, 0.001]), 0);
    }

    #[test]
    fn speed_profile_differentiates_positions_at_the_decimated_rate() {
        // 0.2 m/s along x, sampled at 1 kHz, decimated by 10: every speed is 0.2 m/s.
        let mut p = SpeedProfile::new(100, 10, 0.001);
        for k in 0..500 {
            p.push(&Vector3::new(0.2 * k as f64 * 0.001, 0.0, 0.0));
        }
        assert_eq!(p.speeds.len(), 49);
        assert!(p.speeds.iter().all(|v| (v - 0.2).abs() < 1e-9));
        p.reset();
        assert_eq!(p.peaks(), 0);
    }

    #[test]
    fn block_means_and_effort_share() {
        use plexo_controller::TrialMetrics;
        use plexo_hal::JointArray;
        let mut acc = BlockAccumulator::new("assist", Mode::ActiveAssisted, AanLaw::Emken);
        let metrics = |assist: f64, effort: f64| TrialMetrics {
            rms_error: JointArray::from_slice(&[0.1, 0.1, 0.1, 0.1]).unwrap(),
            assistance_rms: assist,
            effort_rms: effort,
            mean_stiffness: 10.0,
            duration: 2.0,
            ticks: 2000,
        };
        acc.add_trial(&TrialRecord { block: 0, trial: 0, reached: true, metrics: metrics(3.0, 1.0) }, 0.01, 1);
        acc.add_trial(&TrialRecord { block: 0, trial: 1, reached: false, metrics: metrics(1.0, 3.0) }, 0.03, 3);
        let s = SessionSummary::from_blocks(vec![acc, BlockAccumulator::new("empty", Mode::Passive, AanLaw::Fixed)]);
        assert_eq!(s.blocks.len(), 1, "blocks without trials are left out");
        let b = &s.blocks[0];
        assert_eq!((b.trials, b.successes), (2, 1));
        assert!((b.success_rate - 0.5).abs() < 1e-12);
        assert!((b.mean_final_error_m - 0.02).abs() < 1e-12);
        assert!((b.mean_rms_error_rad - 0.1).abs() < 1e-12);
        assert!((b.patient_effort_share - 0.5).abs() < 1e-12, "(0.25 + 0.75) / 2");
        assert!((b.mean_speed_peaks - 2.0).abs() < 1e-12);
        assert_eq!(b.mode, "ActiveAssisted/Emken");
        assert!(s.render_table().contains("assist"));
    }
}
