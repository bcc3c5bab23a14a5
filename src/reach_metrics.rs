//! Kinematic measures of one reaching movement, from the hand path, as the motor-control literature defines
//! them. Computed on the analysis side (never on the control thread); allocation happens only in
//! [`ReachAnalyzer::new`].
//!
//! Definitions (hand speed `v(t) = |ẋ(t)|`, `v_peak` its maximum in the trial):
//! - **movement onset / offset**: the first / last sample whose speed reaches [`ONSET_FRACTION`] of `v_peak`
//!   (a fraction-of-peak rule as in the Kinarm reaching task, Coderre et al. 2010, Neurorehabil Neural Repair
//!   24(6)); a trial whose peak speed stays below [`REST_SPEED`] has no movement.
//! - **reaction time** [s]: from the go cue (sample 0) to movement onset (Coderre et al. 2010).
//! - **movement time** [s]: from onset to offset (Coderre et al. 2010).
//! - **peak speed** [m/s] and **speed peaks** (local maxima with hysteresis, [`crate::smoothness::count_peaks`]) between
//!   onset and offset (Coderre et al. 2010; sub-movements: Rohrer et al. 2002, J Neurosci 22(18)).
//! - **path-length ratio** [-]: the distance the hand travelled from onset to offset divided by the straight
//!   distance from the start to the target (Coderre et al. 2010); 1 for a straight reach that ends on target.
//! - **maximum perpendicular deviation** [m]: the largest distance of the hand from the straight start→target
//!   line between onset and offset.
//! - **initial direction error** [rad]: the angle between the line from the hand at onset to the target and the
//!   line from the hand at onset to the hand at the end of the initial phase, the first speed minimum after the
//!   first speed peak (or offset when there is none) (Coderre et al. 2010).
//! - **SPARC** [-]: spectral arc length of the speed between onset and offset (Balasubramanian et al. 2015,
//!   J NeuroEng Rehabil 12:112; [`crate::smoothness::Sparc`]); ≈ −1.6 for one minimum-jerk reach.
//! - **LDLJ** [-]: log dimensionless jerk of the speed-based form, `−ln((t₂−t₁)³ / v_peak² · ∫ |d²v/dt²|² dt)` over
//!   onset..offset with `v` the velocity vector (Balasubramanian et al. 2015, after Hogan & Sternad 2009, J Mot
//!   Behav 41(6)); more negative = less smooth.
//! - **normalised jerk** [-]: `sqrt(½ ∫ |d³x/dt³|² dt · T⁵ / L²)` over onset..offset, `T` its duration and `L` the
//!   path length (Teulings, Contreras-Vidal, Stelmach & Adler 1997, Exp Neurol 146); √360 ≈ 18.97 for a whole
//!   minimum-jerk movement, larger = less smooth.
//! - **range of motion** [rad] per joint: largest minus smallest joint angle in the trial ([`range_of_motion`]).
//!
//! Derivatives are central differences of the samples as given: measured paths are low-passed first
//! ([`low_pass_zero_phase`]), so that differentiating three times does not amplify sensor noise.

use nalgebra::Vector3;
use plexo_hal::JointArray;

use crate::smoothness::{Sparc, count_peaks};

/// Onset and offset threshold as a share of the trial's peak speed [-].
pub const ONSET_FRACTION: f64 = 0.1;
/// A trial whose peak hand speed stays below this has no movement [m/s].
pub const REST_SPEED: f64 = 0.01;
/// Hysteresis of peaks and minima as a share of the peak speed [-] (the speed-peak count's rule).
const PEAK_PROMINENCE: f64 = 0.15;

/// The measures of one reach; `None` where the trial gives no value (no movement, a zero start-target distance).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReachMetrics {
    /// Go cue to movement onset [s].
    pub reaction_time: Option<f64>,
    /// Movement onset to offset [s].
    pub movement_time: Option<f64>,
    /// Largest hand speed of the trial [m/s].
    pub peak_speed: f64,
    /// Speed maxima between onset and offset [-].
    pub speed_peaks: u32,
    /// Hand path length (onset..offset) over the start-to-target distance [-].
    pub path_length_ratio: Option<f64>,
    /// Largest distance from the straight start-target line (onset..offset) [m].
    pub max_perpendicular_deviation: Option<f64>,
    /// Initial direction error [rad], 0..π.
    pub initial_direction_error: Option<f64>,
    /// Spectral arc length of the speed profile [-].
    pub sparc: Option<f64>,
    /// Log dimensionless jerk, speed-based [-].
    pub ldlj: Option<f64>,
    /// Normalised jerk (Teulings et al. 1997) [-].
    pub normalized_jerk: Option<f64>,
}

/// Computes [`ReachMetrics`] from hand paths of up to a fixed number of samples, reusing its buffers and its
/// planned FFT across trials. Not real-time safe to construct; [`ReachAnalyzer::analyze`] allocates nothing.
#[derive(Debug)]
pub struct ReachAnalyzer {
    sparc: Sparc,
    velocity: Vec<Vector3<f64>>,
    speed: Vec<f64>,
    max_samples: usize,
}

impl ReachAnalyzer {
    /// For paths of up to `max_samples` samples (longer paths are cut). Not real-time safe.
    pub fn new(max_samples: usize) -> Self {
        let max_samples = max_samples.max(3);
        Self {
            sparc: Sparc::new(max_samples),
            velocity: Vec::with_capacity(max_samples),
            speed: Vec::with_capacity(max_samples),
            max_samples,
        }
    }

    /// The measures of one reach: `hand` positions [m] sampled at `rate` [Hz] from the go cue on, `start` and
    /// `target` the start and target positions [m]. Allocation-free.
    pub fn analyze(
        &mut self,
        hand: &[Vector3<f64>],
        rate: f64,
        start: &Vector3<f64>,
        target: &Vector3<f64>,
    ) -> ReachMetrics {
        let hand = &hand[..hand.len().min(self.max_samples)];
        let mut out = ReachMetrics::default();
        if hand.len() < 3 || !(rate.is_finite() && rate > 0.0) {
            return out;
        }
        let dt = 1.0 / rate;
        central_difference(hand, dt, &mut self.velocity);
        self.speed.clear();
        self.speed.extend(self.velocity.iter().map(|v| v.norm()));
        let (peak_index, peak_speed) = self
            .speed
            .iter()
            .copied()
            .enumerate()
            .fold((0, 0.0), |best, (i, s)| if s > best.1 { (i, s) } else { best });
        out.peak_speed = peak_speed;
        if peak_speed < REST_SPEED {
            return out;
        }
        let threshold = ONSET_FRACTION * peak_speed;
        let onset = self.speed[..=peak_index].iter().position(|&s| s >= threshold).unwrap_or(peak_index);
        let offset = peak_index + self.speed[peak_index..].iter().rposition(|&s| s >= threshold).unwrap_or(0);
        out.reaction_time = Some(onset as f64 * dt);
        out.movement_time = Some((offset - onset) as f64 * dt);
        let window = onset..=offset;
        let speeds = &self.speed[window.clone()];
        out.speed_peaks = count_peaks(speeds);
        out.sparc = self.sparc.compute(speeds, rate);

        let path_length: f64 = hand[window.clone()].windows(2).map(|w| (w[1] - w[0]).norm()).sum();
        let line = target - start;
        let distance = line.norm();
        if distance > 0.0 {
            out.path_length_ratio = Some(path_length / distance);
            let along = line / distance;
            out.max_perpendicular_deviation = Some(
                hand[window.clone()]
                    .iter()
                    .map(|p| {
                        let rel = p - start;
                        (rel - along * rel.dot(&along)).norm()
                    })
                    .fold(0.0, f64::max),
            );
        }

        // End of the initial phase: the first speed minimum after the first speed peak, with the hysteresis of
        // the peak count (a wiggle smaller than PEAK_PROMINENCE of the peak speed is not a peak or a minimum).
        let delta = PEAK_PROMINENCE * peak_speed;
        let (mut rising, mut extreme, mut extreme_at, mut initial_end) = (true, self.speed[onset], onset, offset);
        for i in onset + 1..=offset {
            let v = self.speed[i];
            if rising {
                if v > extreme {
                    (extreme, extreme_at) = (v, i);
                } else if v < extreme - delta {
                    (rising, extreme, extreme_at) = (false, v, i);
                }
            } else if v < extreme {
                (extreme, extreme_at) = (v, i);
            } else if v > extreme + delta {
                initial_end = extreme_at;
                break;
            }
        }
        let aim = target - hand[onset];
        let initial = hand[initial_end] - hand[onset];
        if aim.norm() > 0.0 && initial.norm() > 0.0 {
            out.initial_direction_error =
                Some((aim.dot(&initial) / (aim.norm() * initial.norm())).clamp(-1.0, 1.0).acos());
        }

        // Jerk = second derivative of velocity, by central differences over the window (its ends excluded).
        let duration = (offset - onset) as f64 * dt;
        if offset >= onset + 4 && duration > 0.0 {
            let mut jerk_sq = 0.0;
            for i in onset + 1..offset {
                let jerk = (self.velocity[i + 1] - 2.0 * self.velocity[i] + self.velocity[i - 1]) / (dt * dt);
                jerk_sq += jerk.norm_squared() * dt;
            }
            if jerk_sq > 0.0 {
                out.ldlj = Some(-(duration.powi(3) / (peak_speed * peak_speed) * jerk_sq).ln());
                if path_length > 0.0 {
                    out.normalized_jerk = Some((0.5 * jerk_sq * duration.powi(5) / (path_length * path_length)).sqrt());
                }
            }
        }
        out
    }
}

/// Velocity by central differences (one-sided at the ends) [m/s], into `out`. Allocation-free once `out` has
/// the capacity.
fn central_difference(x: &[Vector3<f64>], dt: f64, out: &mut Vec<Vector3<f64>>) {
    out.clear();
    let n = x.len();
    for i in 0..n {
        let (lo, hi) = (i.saturating_sub(1), (i + 1).min(n - 1));
        out.push((x[hi] - x[lo]) / ((hi - lo) as f64 * dt));
    }
}

/// Range of motion of each of the first `dof` joints over a trial [rad]: largest minus smallest angle.
pub fn range_of_motion(q: &[JointArray<f64>], dof: usize) -> JointArray<f64> {
    let mut rom = JointArray::splat(dof, 0.0);
    for j in 0..dof {
        let (lo, hi) =
            q.iter().map(|s| s[j]).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        rom[j] = if hi >= lo { hi - lo } else { 0.0 };
    }
    rom
}

/// Zero-phase low-pass of a sampled path: a second-order Butterworth section at `cutoff` [Hz] run forward and
/// backward (the usual filtfilt of motion analysis: no delay, −6 dB at the cut-off), in place. The start and end
/// are padded with the edge values to avoid transients. `cutoff` at or above half of `rate` [Hz] leaves the
/// samples unchanged.
pub fn low_pass_zero_phase(x: &mut [Vector3<f64>], rate: f64, cutoff: f64) {
    if x.len() < 2 || !(cutoff > 0.0 && cutoff < 0.5 * rate) {
        return;
    }
    // Bilinear transform of the analogue Butterworth prototype, frequency pre-warped.
    let k = (std::f64::consts::PI * cutoff / rate).tan();
    let norm = 1.0 / (1.0 + std::f64::consts::SQRT_2 * k + k * k);
    let b0 = k * k * norm;
    let (b1, b2) = (2.0 * b0, b0);
    let a1 = 2.0 * (k * k - 1.0) * norm;
    let a2 = (1.0 - std::f64::consts::SQRT_2 * k + k * k) * norm;
    let pass = |x: &mut dyn Iterator<Item = &mut Vector3<f64>>, first: Vector3<f64>| {
        // Start in the steady state of a constant input equal to the first sample.
        let (mut x1, mut x2, mut y1, mut y2) = (first, first, first, first);
        for v in x {
            let y = b0 * *v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
            (x2, x1, y2, y1) = (x1, *v, y1, y);
            *v = y;
        }
    };
    let first = x[0];
    pass(&mut x.iter_mut(), first);
    let last = x[x.len() - 1];
    pass(&mut x.iter_mut().rev(), last);
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 1000.0;

    /// A minimum-jerk reach (Flash & Hogan 1985) of `distance` [m] along `direction` in `duration` [s], after
    /// `rest` [s] still at the start, then `tail` [s] still at the end.
    fn minimum_jerk(distance: f64, direction: Vector3<f64>, duration: f64, rest: f64, tail: f64) -> Vec<Vector3<f64>> {
        let n = ((rest + duration + tail) * RATE) as usize;
        (0..=n)
            .map(|i| {
                let t = i as f64 / RATE;
                let s = ((t - rest) / duration).clamp(0.0, 1.0);
                direction * distance * (10.0 * s.powi(3) - 15.0 * s.powi(4) + 6.0 * s.powi(5))
            })
            .collect()
    }

    /// The onset/offset phase of a minimum-jerk profile: 30 s²(1−s)² = 0.1 · 1.875.
    fn threshold_phase() -> f64 {
        let product = (ONSET_FRACTION * 1.875 / 30.0).sqrt();
        (1.0 - (1.0 - 4.0 * product).sqrt()) / 2.0
    }

    #[test]
    fn a_minimum_jerk_reach_has_its_analytic_times_speed_and_a_straight_path() {
        let (d, t, rest) = (0.2, 1.0, 0.3);
        let x = minimum_jerk(d, Vector3::x(), t, rest, 0.5);
        let m = ReachAnalyzer::new(x.len()).analyze(&x, RATE, &Vector3::zeros(), &(Vector3::x() * d));
        let phase = threshold_phase();
        approx::assert_abs_diff_eq!(m.peak_speed, 1.875 * d / t, epsilon = 1e-5);
        approx::assert_abs_diff_eq!(m.reaction_time.unwrap(), rest + phase * t, epsilon = 2.0 / RATE);
        approx::assert_abs_diff_eq!(m.movement_time.unwrap(), (1.0 - 2.0 * phase) * t, epsilon = 2.0 / RATE);
        assert_eq!(m.speed_peaks, 1);
        // The hand covers the distance between the 10 % thresholds only: the ratio is that share of the reach.
        let pos = |s: f64| 10.0 * s.powi(3) - 15.0 * s.powi(4) + 6.0 * s.powi(5);
        approx::assert_abs_diff_eq!(m.path_length_ratio.unwrap(), pos(1.0 - phase) - pos(phase), epsilon = 1e-3);
        approx::assert_abs_diff_eq!(m.max_perpendicular_deviation.unwrap(), 0.0, epsilon = 1e-12);
        approx::assert_abs_diff_eq!(m.initial_direction_error.unwrap(), 0.0, epsilon = 1e-6);
    }

    #[test]
    fn smoothness_of_a_minimum_jerk_reach_matches_the_closed_forms() {
        let (d, t) = (0.15, 0.8);
        let x = minimum_jerk(d, Vector3::new(0.6, 0.8, 0.0), t, 0.2, 0.4);
        let m = ReachAnalyzer::new(x.len()).analyze(&x, RATE, &Vector3::zeros(), &(Vector3::new(0.6, 0.8, 0.0) * d));
        // Closed forms over the onset..offset window [p, 1−p]·t: jerk = d/t³ · (60 − 360 s + 360 s²), whose
        // squared integral over the whole movement s ∈ [0, 1] is the textbook 720 d²/t⁵ (Hogan & Sternad 2009).
        let p = threshold_phase();
        let integral =
            |s: f64| 3600.0 * s - 21600.0 * s * s + 57600.0 * s.powi(3) - 64800.0 * s.powi(4) + 25920.0 * s.powi(5);
        approx::assert_abs_diff_eq!(integral(1.0) - integral(0.0), 720.0, epsilon = 1e-9);
        let jerk_sq = d * d / t.powi(5) * (integral(1.0 - p) - integral(p));
        let window = (1.0 - 2.0 * p) * t;
        let v_peak = 1.875 * d / t;
        let ldlj = -(window.powi(3) / (v_peak * v_peak) * jerk_sq).ln();
        let pos = |s: f64| 10.0 * s.powi(3) - 15.0 * s.powi(4) + 6.0 * s.powi(5);
        let length = d * (pos(1.0 - p) - pos(p));
        let nj = (0.5 * jerk_sq * window.powi(5) / (length * length)).sqrt();
        approx::assert_relative_eq!(m.ldlj.unwrap(), ldlj, max_relative = 5e-3);
        approx::assert_relative_eq!(m.normalized_jerk.unwrap(), nj, max_relative = 1e-2);
        // SPARC of one minimum-jerk reach (Balasubramanian et al. 2015: ≈ −1.6).
        let sparc = m.sparc.unwrap();
        assert!((-1.75..=-1.45).contains(&sparc), "SPARC {sparc}");
    }

    #[test]
    fn two_sub_movements_are_less_smooth_than_one_and_count_two_peaks() {
        let one = minimum_jerk(0.2, Vector3::x(), 1.0, 0.2, 0.4);
        let mut two = minimum_jerk(0.1, Vector3::x(), 0.5, 0.2, 0.0);
        let second = minimum_jerk(0.1, Vector3::x(), 0.5, 0.15, 0.4);
        let offset = *two.last().unwrap();
        two.extend(second.iter().map(|p| p + offset));
        let target = Vector3::x() * 0.2;
        let mut a = ReachAnalyzer::new(two.len());
        let m1 = a.analyze(&one, RATE, &Vector3::zeros(), &target);
        let m2 = a.analyze(&two, RATE, &Vector3::zeros(), &target);
        assert_eq!(m2.speed_peaks, 2);
        assert!(m2.sparc.unwrap() < m1.sparc.unwrap(), "SPARC {:?} vs {:?}", m2.sparc, m1.sparc);
        assert!(m2.ldlj.unwrap() < m1.ldlj.unwrap(), "LDLJ {:?} vs {:?}", m2.ldlj, m1.ldlj);
        assert!(m2.normalized_jerk.unwrap() > m1.normalized_jerk.unwrap());
    }

    #[test]
    fn a_reach_aimed_off_target_then_corrected_has_its_analytic_direction_error_deviation_and_path_ratio() {
        // A first sub-movement to P, aimed 0.3 rad off the target direction, then a correction from P to the
        // target: both straight minimum-jerk segments, the speed reaching zero at P.
        let (d, angle) = (0.2, 0.3_f64);
        let target = Vector3::new(d, 0.0, 0.0);
        let p = Vector3::new(angle.cos(), angle.sin(), 0.0) * 0.15;
        let mut x = minimum_jerk(p.norm(), p.normalize(), 0.6, 0.2, 0.0);
        let correction = minimum_jerk((target - p).norm(), (target - p).normalize(), 0.5, 0.1, 0.3);
        x.extend(correction.iter().map(|c| c + p));
        let m = ReachAnalyzer::new(x.len()).analyze(&x, RATE, &Vector3::zeros(), &target);
        // The hand at onset (the first sub-movement has the trial's peak speed) has already moved along P.
        let pos = |s: f64| 10.0 * s.powi(3) - 15.0 * s.powi(4) + 6.0 * s.powi(5);
        let onset = p * pos(threshold_phase());
        let expected = ((target - onset).normalize().dot(&(p - onset).normalize())).acos();
        assert!((expected - angle).abs() < 0.01, "onset moves the aim only slightly");
        approx::assert_abs_diff_eq!(m.initial_direction_error.unwrap(), expected, epsilon = 2e-4);
        approx::assert_abs_diff_eq!(m.max_perpendicular_deviation.unwrap(), p.y, epsilon = 1e-9);
        // Path from onset (in the first segment) to offset (where the slower correction falls below the threshold).
        let threshold = ONSET_FRACTION * 1.875 * p.norm() / 0.6;
        let product = (threshold * 0.5 / (30.0 * (target - p).norm())).sqrt();
        let offset_phase = (1.0 + (1.0 - 4.0 * product).sqrt()) / 2.0;
        let path = p.norm() * (1.0 - pos(threshold_phase())) + (target - p).norm() * pos(offset_phase);
        approx::assert_abs_diff_eq!(m.path_length_ratio.unwrap(), path / d, epsilon = 1e-3);
        assert_eq!(m.speed_peaks, 2);
    }

    #[test]
    fn no_movement_gives_no_times_and_no_smoothness() {
        let x = vec![Vector3::new(0.1, 0.2, 0.3); 500];
        let m = ReachAnalyzer::new(500).analyze(&x, RATE, &x[0], &Vector3::zeros());
        assert_eq!(m.reaction_time, None);
        assert_eq!(m.sparc, None);
        assert_eq!(m.speed_peaks, 0);
        assert_eq!(m.peak_speed, 0.0);
    }

    #[test]
    fn the_zero_phase_filter_removes_noise_without_delaying_the_reach() {
        let clean = minimum_jerk(0.2, Vector3::x(), 1.0, 0.3, 0.5);
        // Deterministic ±0.2 mm noise at 250 Hz (far above a reach's band).
        let mut noisy: Vec<_> = clean
            .iter()
            .enumerate()
            .map(|(i, p)| p + Vector3::x() * 2e-4 * (i as f64 * 0.25 * std::f64::consts::TAU).sin())
            .collect();
        let mut a = ReachAnalyzer::new(clean.len());
        let target = Vector3::x() * 0.2;
        let m_clean = a.analyze(&clean, RATE, &Vector3::zeros(), &target);
        let m_raw = a.analyze(&noisy, RATE, &Vector3::zeros(), &target);
        low_pass_zero_phase(&mut noisy, RATE, 10.0);
        let m_filtered = a.analyze(&noisy, RATE, &Vector3::zeros(), &target);
        assert!(m_raw.ldlj.unwrap() < m_clean.ldlj.unwrap() - 3.0, "noise makes the raw jerk meaningless");
        approx::assert_abs_diff_eq!(m_filtered.ldlj.unwrap(), m_clean.ldlj.unwrap(), epsilon = 0.1);
        approx::assert_abs_diff_eq!(m_filtered.reaction_time.unwrap(), m_clean.reaction_time.unwrap(), epsilon = 3e-3);
        approx::assert_abs_diff_eq!(m_filtered.peak_speed, m_clean.peak_speed, epsilon = 2e-3);
    }

    #[test]
    fn range_of_motion_is_the_spread_of_each_joint() {
        let q: Vec<_> = (0..100)
            .map(|i| JointArray::from_slice(&[0.1 * (i as f64 * 0.1).sin(), 0.5 + 0.001 * i as f64]).unwrap())
            .collect();
        let rom = range_of_motion(&q, 2);
        approx::assert_abs_diff_eq!(rom[0], 0.2, epsilon = 2e-3);
        approx::assert_abs_diff_eq!(rom[1], 0.099, epsilon = 1e-12);
    }
}
