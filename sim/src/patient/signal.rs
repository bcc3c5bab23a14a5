//! Small signal blocks of the patient model: a delay line, a band-pass biquad and a quintic (minimum-jerk) plan segment.

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

/// One quintic per joint, `q(τ) = Σₖ cₖ τᵏ` with `τ = (t − t0)/T` clamped to [0, 1]: the minimum-jerk trajectory
/// (Flash & Hogan 1985, J Neurosci 5(7)) for general boundary conditions, from the state `(q0, q̇0, q̈0)` at `t0` to
/// rest at the goal `(qg, 0, 0)` at `t0 + T`. From rest it is the familiar point-to-point profile
/// `q0 + (qg − q0)(10τ³ − 15τ⁴ + 6τ⁵)`; from a moving state it is how a plan is replaced mid-movement without a
/// jump in position, velocity or acceleration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Quintic {
    pub(crate) t0: f64,
    pub(crate) duration: f64,
    inv_duration: f64,
    c: JointArray<[f64; 6]>,
}

impl Quintic {
    /// From `(q0 [rad], v0 [rad/s], a0 [rad/s²])` at `t0` [s] to rest at `goal` [rad] after `duration` [s] (> 0).
    pub(crate) fn new(t0: f64, duration: f64, q0: &[f64], v0: &[f64], a0: &[f64], goal: &[f64]) -> Self {
        let mut c = JointArray::splat(q0.len(), [0.0; 6]);
        let t = duration;
        for (i, ci) in c.iter_mut().enumerate() {
            let (c0, c1, c2) = (q0[i], v0[i] * t, 0.5 * a0[i] * t * t);
            // End conditions q(1) = goal, q'(1) = q''(1) = 0 in normalised time.
            let d = goal[i] - c0 - c1 - c2;
            let e = -c1 - 2.0 * c2;
            let f = -2.0 * c2;
            *ci = [c0, c1, c2, 10.0 * d - 4.0 * e + 0.5 * f, -15.0 * d + 7.0 * e - f, 6.0 * d - 3.0 * e + 0.5 * f];
        }
        Self { t0, duration, inv_duration: 1.0 / duration, c }
    }

    /// Holding still at `q` [rad].
    pub(crate) fn hold(q: &[f64]) -> Self {
        let zero = JointArray::splat(q.len(), 0.0);
        Self::new(0.0, 1.0, q, &zero, &zero, q)
    }

    /// Position [rad], velocity [rad/s] and acceleration [rad/s²] of joint `i` at time `t` [s]: the start state
    /// before `t0` (velocity and acceleration included), the goal at rest after `t0 + T`.
    pub(crate) fn eval(&self, i: usize, t: f64) -> (f64, f64, f64) {
        self.at(self.tau(t), i)
    }

    /// Positions [rad], velocities [rad/s] and accelerations [rad/s²] of all joints at time `t` [s] (one
    /// normalised time for all joints).
    pub(crate) fn eval_all(&self, t: f64, q: &mut [f64], v: &mut [f64], a: &mut [f64]) {
        let tau = self.tau(t);
        for i in 0..q.len() {
            (q[i], v[i], a[i]) = self.at(tau, i);
        }
    }

    /// Positions [rad] of all joints at time `t` [s].
    pub(crate) fn positions(&self, t: f64, q: &mut [f64]) {
        let tau = self.tau(t);
        for (i, qi) in q.iter_mut().enumerate() {
            let c = &self.c[i];
            *qi = c[0] + tau * (c[1] + tau * (c[2] + tau * (c[3] + tau * (c[4] + tau * c[5]))));
        }
    }

    /// Velocities [rad/s] of all joints at time `t` [s].
    pub(crate) fn velocities(&self, t: f64, v: &mut [f64]) {
        let tau = self.tau(t);
        for (i, vi) in v.iter_mut().enumerate() {
            let c = &self.c[i];
            let dq = c[1] + tau * (2.0 * c[2] + tau * (3.0 * c[3] + tau * (4.0 * c[4] + tau * 5.0 * c[5])));
            *vi = dq * self.inv_duration;
        }
    }

    #[inline]
    fn tau(&self, t: f64) -> f64 {
        ((t - self.t0) * self.inv_duration).clamp(0.0, 1.0)
    }

    #[inline]
    fn at(&self, tau: f64, i: usize) -> (f64, f64, f64) {
        let c = &self.c[i];
        let q = c[0] + tau * (c[1] + tau * (c[2] + tau * (c[3] + tau * (c[4] + tau * c[5]))));
        let dq = c[1] + tau * (2.0 * c[2] + tau * (3.0 * c[3] + tau * (4.0 * c[4] + tau * 5.0 * c[5])));
        let ddq = 2.0 * c[2] + tau * (6.0 * c[3] + tau * (12.0 * c[4] + tau * 20.0 * c[5]));
        (q, dq * self.inv_duration, ddq * self.inv_duration * self.inv_duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintic_from_rest_is_the_minimum_jerk_profile() {
        let plan = Quintic::new(1.0, 2.0, &[0.0], &[0.0], &[0.0], &[1.0]);
        assert_eq!(plan.eval(0, 0.5), (0.0, 0.0, 0.0));
        assert_eq!(plan.eval(0, 3.5), (1.0, 0.0, 0.0));
        let (q, v, a) = plan.eval(0, 2.0);
        assert!((q - 0.5).abs() < 1e-12 && a.abs() < 1e-12);
        // Peak velocity of a minimum-jerk profile is 1.875 · distance / duration.
        assert!((v - 1.875 / 2.0).abs() < 1e-12, "{v}");
        for t in [1.3, 1.7, 2.6] {
            let s = (t - 1.0) / 2.0;
            let expected = s * s * s * (10.0 - 15.0 * s + 6.0 * s * s);
            assert!((plan.eval(0, t).0 - expected).abs() < 1e-12);
        }
        // Velocity and acceleration are the derivatives of position.
        let h = 1e-6;
        let num = (plan.eval(0, 1.7 + h).0 - plan.eval(0, 1.7 - h).0) / (2.0 * h);
        assert!((num - plan.eval(0, 1.7).1).abs() < 1e-6);
        let num_a = (plan.eval(0, 1.7 + h).1 - plan.eval(0, 1.7 - h).1) / (2.0 * h);
        assert!((num_a - plan.eval(0, 1.7).2).abs() < 1e-5);
    }

    #[test]
    fn quintic_from_a_moving_state_starts_in_that_state_and_ends_at_rest_on_the_goal() {
        let plan = Quintic::new(0.5, 1.5, &[0.2, -1.0], &[0.8, 0.0], &[-3.0, 2.0], &[1.0, -0.5]);
        for (i, (q0, v0, a0)) in [(0.2, 0.8, -3.0), (-1.0, 0.0, 2.0)].into_iter().enumerate() {
            let (q, v, a) = plan.eval(i, 0.5);
            assert!((q - q0).abs() < 1e-12 && (v - v0).abs() < 1e-12 && (a - a0).abs() < 1e-12, "joint {i}");
        }
        let (q, v, a) = plan.eval(0, 2.0);
        assert!((q - 1.0).abs() < 1e-12 && v.abs() < 1e-12 && a.abs() < 1e-9, "{q} {v} {a}");
        assert_eq!(Quintic::hold(&[0.3]).eval(0, 7.0), (0.3, 0.0, 0.0));
        // The batch evaluations agree with the per-joint one.
        let (mut q, mut v, mut a, mut qq, mut vv) = ([0.0; 2], [0.0; 2], [0.0; 2], [0.0; 2], [0.0; 2]);
        plan.eval_all(1.1, &mut q, &mut v, &mut a);
        plan.positions(1.1, &mut qq);
        plan.velocities(1.1, &mut vv);
        for i in 0..2 {
            assert_eq!((q[i], v[i], a[i]), plan.eval(i, 1.1));
            assert_eq!((qq[i], vv[i]), (q[i], v[i]));
        }
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
