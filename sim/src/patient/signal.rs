//! Small signal blocks of the patient model: a delay line, a band-pass biquad and a minimum-jerk plan.

use plexo_hal::JointArray;

/// Fixed-capacity ring of past joint states; allocation happens once, at construction.
#[derive(Clone, Debug)]
pub(crate) struct DelayLine {
    q: Vec<JointArray<f64>>,
    v: Vec<JointArray<f64>>,
    head: usize,
    filled: usize,
}

impl DelayLine {
    /// Keeps the last `capacity` samples (≥ 1).
    pub(crate) fn new(capacity: usize, dof: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            q: vec![JointArray::splat(dof, 0.0); capacity],
            v: vec![JointArray::splat(dof, 0.0); capacity],
            head: 0,
            filled: 0,
        }
    }

    pub(crate) fn push(&mut self, q: &[f64], v: &[f64]) {
        self.head = (self.head + 1) % self.q.len();
        self.q[self.head].copy_from_slice(q);
        self.v[self.head].copy_from_slice(v);
        self.filled = (self.filled + 1).min(self.q.len());
    }

    /// The sample `steps` periods ago (0 = newest); before enough history exists, the oldest sample.
    pub(crate) fn get(&self, steps: usize) -> (&JointArray<f64>, &JointArray<f64>) {
        let back = steps.min(self.filled.saturating_sub(1));
        let idx = (self.head + self.q.len() - back) % self.q.len();
        (&self.q[idx], &self.v[idx])
    }

    /// Fills the whole history with one state (after the plant state is set directly).
    pub(crate) fn fill(&mut self, q: &[f64], v: &[f64]) {
        for (qq, vv) in self.q.iter_mut().zip(self.v.iter_mut()) {
            qq.copy_from_slice(q);
            vv.copy_from_slice(v);
        }
        self.filled = self.q.len();
    }
}

/// Band-pass biquad (Bristow-Johnson "Audio EQ Cookbook", constant 0 dB peak gain), direct form I.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BandPass {
    b0: f64,
    b2: f64,
    a1: f64,
    a2: f64,
    x1: f64,
    x2: f64,
    y1: f64,
    y2: f64,
}

impl BandPass {
    /// Pass band `[low_hz, high_hz]` at sampling rate `fs` [Hz].
    pub(crate) fn new(low_hz: f64, high_hz: f64, fs: f64) -> Self {
        let f0 = (low_hz * high_hz).sqrt();
        let q = f0 / (high_hz - low_hz);
        let w0 = core::f64::consts::TAU * f0 / fs;
        let alpha = w0.sin() / (2.0 * q);
        let a0 = 1.0 + alpha;
        Self { b0: alpha / a0, b2: -alpha / a0, a1: -2.0 * w0.cos() / a0, a2: (1.0 - alpha) / a0, ..Self::default() }
    }

    pub(crate) fn step(&mut self, x: f64) -> f64 {
        let y = self.b0 * x + self.b2 * self.x2 - self.a1 * self.y1 - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Minimum-jerk point-to-point plan in joint space (Flash & Hogan 1985, J Neurosci 5(7)):
/// `q(t) = q0 + (qg − q0)(10τ³ − 15τ⁴ + 6τ⁵)`, `τ = (t − t0)/T` clamped to [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MinJerk {
    pub(crate) start: JointArray<f64>,
    pub(crate) goal: JointArray<f64>,
    pub(crate) t0: f64,
    pub(crate) duration: f64,
}

impl MinJerk {
    /// Position [rad], velocity [rad/s] and acceleration [rad/s²] of joint `i` at time `t` [s].
    pub(crate) fn eval(&self, i: usize, t: f64) -> (f64, f64, f64) {
        let d = self.goal[i] - self.start[i];
        let tau = ((t - self.t0) / self.duration).clamp(0.0, 1.0);
        if tau <= 0.0 || tau >= 1.0 {
            return (if tau >= 1.0 { self.goal[i] } else { self.start[i] }, 0.0, 0.0);
        }
        let t2 = tau * tau;
        let t3 = t2 * tau;
        let s = t3 * (10.0 - 15.0 * tau + 6.0 * t2);
        let ds = 30.0 * t2 * (1.0 - 2.0 * tau + t2) / self.duration;
        let dds = 60.0 * tau * (1.0 - 3.0 * tau + 2.0 * t2) / (self.duration * self.duration);
        (self.start[i] + d * s, d * ds, d * dds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_jerk_boundary_conditions_and_symmetry() {
        let plan = MinJerk {
            start: JointArray::from_slice(&[0.0]).unwrap(),
            goal: JointArray::from_slice(&[1.0]).unwrap(),
            t0: 1.0,
            duration: 2.0,
        };
        assert_eq!(plan.eval(0, 0.5), (0.0, 0.0, 0.0));
        assert_eq!(plan.eval(0, 3.5), (1.0, 0.0, 0.0));
        let (q, v, a) = plan.eval(0, 2.0);
        assert!((q - 0.5).abs() < 1e-12 && a.abs() < 1e-12);
        // Peak velocity of a minimum-jerk profile is 1.875 · distance / duration.
        assert!((v - 1.875 / 2.0).abs() < 1e-12, "{v}");
        // Velocity is the derivative of position.
        let h = 1e-6;
        let num = (plan.eval(0, 1.7 + h).0 - plan.eval(0, 1.7 - h).0) / (2.0 * h);
        assert!((num - plan.eval(0, 1.7).1).abs() < 1e-6);
        let num_a = (plan.eval(0, 1.7 + h).1 - plan.eval(0, 1.7 - h).1) / (2.0 * h);
        assert!((num_a - plan.eval(0, 1.7).2).abs() < 1e-5);
    }

    #[test]
    fn two_band_pass_sections_pass_6hz_and_reject_0_5hz_and_40hz() {
        // The tremor generator cascades two sections.
        let gain = |f: f64| {
            let mut bp = BandPass::new(4.0, 8.0, 1000.0);
            let mut bp2 = bp;
            let mut peak: f64 = 0.0;
            for k in 0..20_000 {
                let y = bp2.step(bp.step((core::f64::consts::TAU * f * k as f64 / 1000.0).sin()));
                if k > 10_000 {
                    peak = peak.max(y.abs());
                }
            }
            peak
        };
        assert!(gain(5.66) > 0.95);
        assert!(gain(0.5) < 0.02);
        assert!(gain(40.0) < 0.02);
    }

    #[test]
    fn delay_line_returns_past_samples() {
        let mut d = DelayLine::new(4, 1);
        for k in 0..6 {
            d.push(&[k as f64], &[0.0]);
        }
        assert_eq!(d.get(0).0[0], 5.0);
        assert_eq!(d.get(3).0[0], 2.0);
        assert_eq!(d.get(10).0[0], 2.0, "clamped to the oldest sample kept");
    }
}
