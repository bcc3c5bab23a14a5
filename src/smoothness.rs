//! Movement smoothness of a reach from the hand speed profile, two ways: the number of speed peaks per reach
//! (1 = one smooth bell; recovering stroke patients' reaches have many sub-movements that merge as they
//! recover: Rohrer et al. 2002, J Neurosci 22(18):8297–8304) and SPARC, the spectral arc length
//! (Balasubramanian, Melendez-Calderon, Roby-Brami, Burdet 2015, J NeuroEng Rehabil 12:112): valid, consistent
//! and sensitive for reaching, ≈ −1.6 for a minimum-jerk reach and more negative for intermittent movement.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// A peak counts only if the speed rose and then fell by at least this share of the trial's peak speed
/// (hysteresis: encoder noise and tremor make tiny wiggles that are not sub-movements).
const PEAK_PROMINENCE: f64 = 0.15;
/// Speeds below this are rest [m/s] (a trial with no movement has no peak).
const REST_SPEED: f64 = 0.01;

/// SPARC parameters of Balasubramanian et al. 2015: amplitude threshold of the normalised spectrum that sets the
/// adaptive cut-off, the largest cut-off [Hz] (10 Hz covers voluntary reaching), and the zero-padding level
/// (the profile is padded to at least 2⁴ times its length).
const SPARC_THRESHOLD: f64 = 0.05;
const SPARC_MAX_CUTOFF_HZ: f64 = 10.0;
const SPARC_PADDING_LEVEL: u32 = 4;

/// Spectral arc length of speed profiles, with the FFT planned and its buffers sized once for the longest
/// profile. Real-time safe after [`Sparc::new`] (one FFT of a fixed size, no allocation).
#[derive(Clone)]
pub struct Sparc {
    fft: Arc<dyn Fft<f64>>,
    buffer: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    max_samples: usize,
}

impl std::fmt::Debug for Sparc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sparc").field("fft_len", &self.buffer.len()).finish()
    }
}

impl Sparc {
    /// For profiles of up to `max_samples` samples: the FFT length is the next power of two times
    /// 2^[`SPARC_PADDING_LEVEL`] (a profile shorter than that is padded further, which only refines the
    /// spectrum's sampling). Not real-time safe (plans the FFT, allocates).
    pub fn new(max_samples: usize) -> Self {
        let max_samples = max_samples.max(2);
        let len = max_samples.next_power_of_two() << SPARC_PADDING_LEVEL;
        let fft = FftPlanner::new().plan_fft_forward(len);
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        Self { fft, buffer: vec![Complex::default(); len], scratch, max_samples }
    }

    /// SPARC of a speed profile `speeds` [m/s] sampled at `rate` [Hz]: minus the arc length of its Fourier
    /// magnitude spectrum, normalised to its peak, over frequencies normalised to the adaptive cut-off — the
    /// highest frequency up to [`SPARC_MAX_CUTOFF_HZ`] whose normalised magnitude still reaches
    /// [`SPARC_THRESHOLD`]. `None` for a profile with no movement (or fewer than 2 samples); profiles longer
    /// than the planned size are cut. Real-time safe.
    pub fn compute(&mut self, speeds: &[f64], rate: f64) -> Option<f64> {
        let speeds = &speeds[..speeds.len().min(self.max_samples)];
        if speeds.len() < 2 || rate.is_nan() || rate <= 0.0 || speeds.iter().all(|v| v.abs() < REST_SPEED) {
            return None;
        }
        for (b, s) in self.buffer.iter_mut().zip(speeds.iter().chain(std::iter::repeat(&0.0))) {
            *b = Complex::new(*s, 0.0);
        }
        self.fft.process_with_scratch(&mut self.buffer, &mut self.scratch);
        let n = self.buffer.len();
        let df = rate / n as f64; // bin spacing [Hz]
        let last_bin = ((SPARC_MAX_CUTOFF_HZ / df).floor() as usize).min(n / 2);
        let peak = self.buffer[..=last_bin].iter().map(|c| c.norm()).fold(0.0, f64::max);
        if peak.is_nan() || peak <= 0.0 {
            return None;
        }
        let magnitude = |k: usize| self.buffer[k].norm() / peak;
        let cutoff = (0..=last_bin).rev().find(|&k| magnitude(k) >= SPARC_THRESHOLD)?;
        if cutoff == 0 {
            return Some(0.0); // all energy at DC within the resolution: no spectral arc
        }
        // Frequencies normalised to the cut-off: each bin step is 1/cutoff of the unit interval.
        let dw = 1.0 / cutoff as f64;
        let mut arc = 0.0;
        let mut prev = magnitude(0);
        for k in 1..=cutoff {
            let m = magnitude(k);
            arc += (dw * dw + (m - prev) * (m - prev)).sqrt();
            prev = m;
        }
        Some(-arc)
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

    /// The minimum-jerk speed profile of a reach of `duration` [s] sampled at 100 Hz, 1 s of rest around it.
    fn minimum_jerk(duration: f64, distance: f64) -> Vec<f64> {
        let n = (duration * 100.0) as usize;
        let mut v = vec![0.0; 100];
        v.extend((0..=n).map(|i| {
            let t = i as f64 / n as f64;
            distance / duration * 30.0 * t * t * (1.0 - t) * (1.0 - t)
        }));
        v.extend(vec![0.0; 100]);
        v
    }

    #[test]
    fn sparc_of_a_minimum_jerk_reach_is_about_minus_1_6_whatever_its_duration_or_amplitude() {
        // Balasubramanian et al. 2015 (Fig. 3): SPARC is dimensionless and independent of movement duration and
        // amplitude; a single minimum-jerk submovement scores ≈ −1.6.
        let mut sparc = Sparc::new(1000);
        let a = sparc.compute(&minimum_jerk(1.0, 0.1), 100.0).unwrap();
        let b = sparc.compute(&minimum_jerk(2.5, 0.3), 100.0).unwrap();
        assert!((-1.75..=-1.4).contains(&a), "{a}");
        assert!((a - b).abs() < 0.05, "duration/amplitude dependence: {a} vs {b}");
    }

    #[test]
    fn sparc_falls_with_sub_movements_and_tremor() {
        let mut sparc = Sparc::new(1000);
        let smooth = sparc.compute(&minimum_jerk(1.5, 0.2), 100.0).unwrap();
        let mut two = minimum_jerk(0.8, 0.1);
        two.truncate(two.len() - 110);
        two.extend(minimum_jerk(0.8, 0.1).into_iter().skip(90));
        let intermittent = sparc.compute(&two, 100.0).unwrap();
        let tremor: Vec<f64> = minimum_jerk(1.5, 0.2)
            .iter()
            .enumerate()
            .map(|(i, v)| {
                // A 6 Hz oscillation on the moving part (speed stays ≥ 0).
                if *v > 0.0 {
                    (v + 0.03 * (2.0 * std::f64::consts::PI * 6.0 * i as f64 / 100.0).sin()).max(0.0)
                } else {
                    0.0
                }
            })
            .collect();
        let shaky = sparc.compute(&tremor, 100.0).unwrap();
        assert!(intermittent < smooth - 0.3, "two sub-movements {intermittent} vs one {smooth}");
        assert!(shaky < smooth - 0.3, "6 Hz tremor {shaky} vs smooth {smooth}");
        assert_eq!(sparc.compute(&[0.0; 300], 100.0), None, "no movement, no smoothness");
    }

    #[test]
    fn no_movement_no_peak() {
        assert_eq!(count_peaks(&[0.0; 50]), 0);
        assert_eq!(count_peaks(&[]), 0);
        assert_eq!(count_peaks(&[0.001, 0.002, 0.001]), 0);
    }
}
