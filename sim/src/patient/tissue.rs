//! The patient's involuntary torques: passive tissue (stiffness, damping, end of range), the spastic stretch
//! reflex and tremor. Models and citations: the [`crate::patient`] module docs.

use plexo_hal::JointArray;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;

use super::profile::{JointProfile, StretchDirection, TremorProfile};
use super::signal::BandPass;

/// Passive tissue of every joint: a linear spring–damper about the rest position plus an exponential
/// end-of-range torque beyond the passive range of motion.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tissue {
    /// Stiffness [Nm/rad].
    k: JointArray<f64>,
    /// Viscous damping [Nm s/rad].
    b: JointArray<f64>,
    /// Rest position [rad].
    rest: JointArray<f64>,
    /// Lower end of the passive range of motion [rad].
    pub(super) lower: JointArray<f64>,
    /// Upper end of the passive range of motion [rad].
    pub(super) upper: JointArray<f64>,
    /// Slope of the end-of-range torque at the range boundary [Nm/rad].
    k_end: JointArray<f64>,
}

impl Tissue {
    /// All-zero tissue of `dof` joints; [`Tissue::set_joint`] fills each joint.
    pub(super) fn new(dof: usize) -> Self {
        let z = JointArray::splat(dof, 0.0);
        Self { k: z, b: z, rest: z, lower: z, upper: z, k_end: z }
    }

    /// Joint `i` from its profile and its passive range of motion `[lower, upper]` [rad].
    pub(super) fn set_joint(&mut self, i: usize, joint: &JointProfile, [lower, upper]: [f64; 2]) {
        self.k[i] = joint.passive_stiffness;
        self.b[i] = joint.passive_damping;
        self.rest[i] = joint.rest_position;
        self.lower[i] = lower;
        self.upper[i] = upper;
        self.k_end[i] = joint.end_range_stiffness;
    }

    /// `q` [rad] clamped to joint `i`'s passive range of motion.
    pub(super) fn clamp_to_range(&self, i: usize, q: f64) -> f64 {
        q.clamp(self.lower[i], self.upper[i])
    }

    /// Passive torque of joint `i` at `q` [rad], `v` [rad/s]: stiffness, damping and end-of-range [Nm].
    pub(super) fn passive_torque(&self, i: usize, q: f64, v: f64) -> f64 {
        let mut tau = -self.k[i] * (q - self.rest[i]) - self.b[i] * v;
        // Exponential end-of-range torque with slope k_end at the boundary and a 0.1 rad growth length,
        // capped so an explicit step stays bounded.
        const GROWTH: f64 = 10.0; // [1/rad]
        let cap = 5.0 * self.k_end[i];
        if q > self.upper[i] {
            tau -= (self.k_end[i] / GROWTH * ((GROWTH * (q - self.upper[i])).exp() - 1.0)).min(cap);
        } else if q < self.lower[i] {
            tau += (self.k_end[i] / GROWTH * ((GROWTH * (self.lower[i] - q)).exp() - 1.0)).min(cap);
        }
        tau
    }
}

/// The velocity-dependent stretch reflex of every joint, with its first-order muscle activation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reflex {
    /// Reflex gain [Nm s/rad].
    gain: JointArray<f64>,
    /// Stretch-velocity threshold [rad/s].
    threshold: JointArray<f64>,
    /// +1: positive velocity stretches, −1: negative stretches, 0: both.
    stretch_sign: JointArray<f64>,
    /// Filtered reflex torque [Nm].
    activation: JointArray<f64>,
    /// Per-period smoothing factor of the activation, `1 − exp(−dt / activation_time)`.
    alpha: f64,
}

impl Reflex {
    /// A silent reflex of `dof` joints with activation time `activation_time` [s] at period `dt` [s];
    /// [`Reflex::set_joint`] fills each joint.
    pub(super) fn new(dof: usize, activation_time: f64, dt: f64) -> Self {
        let z = JointArray::splat(dof, 0.0);
        Self { gain: z, threshold: z, stretch_sign: z, activation: z, alpha: 1.0 - (-dt / activation_time).exp() }
    }

    /// Joint `i`'s gain, threshold and stretch direction from its profile.
    pub(super) fn set_joint(&mut self, i: usize, joint: &JointProfile) {
        let (gain, threshold) = joint.reflex();
        self.gain[i] = gain;
        self.threshold[i] = threshold;
        self.stretch_sign[i] = match joint.stretch_direction {
            StretchDirection::Positive => 1.0,
            StretchDirection::Negative => -1.0,
            StretchDirection::Both => 0.0,
        };
    }

    /// Reflex drive of joint `i` for velocity `v` [rad/s] before activation filtering [Nm]: zero at or below
    /// the velocity threshold.
    pub(super) fn drive(&self, i: usize, v: f64) -> f64 {
        let stretch = match self.stretch_sign[i] {
            s if s > 0.0 => v,
            s if s < 0.0 => -v,
            _ => v.abs(),
        };
        if stretch <= self.threshold[i] || self.gain[i] == 0.0 {
            return 0.0;
        }
        // Opposes the stretching velocity.
        -v.signum() * self.gain[i] * (stretch - self.threshold[i])
    }

    /// One period of joint `i`: the activation follows the drive for the velocity `v_seen` [rad/s] (seen one
    /// reflex delay ago); returns the reflex torque bounded by `±limit` [Nm].
    pub(super) fn step(&mut self, i: usize, v_seen: f64, limit: f64) -> f64 {
        let drive = self.drive(i, v_seen);
        self.activation[i] += self.alpha * (drive - self.activation[i]);
        self.activation[i].clamp(-limit, limit)
    }

    /// Silences the reflex (after the plant state was set directly).
    pub(super) fn reset(&mut self) {
        self.activation.fill(0.0);
    }
}

/// `BandPass` wrapped so it satisfies `JointArray`'s `Copy + Default` bound.
#[derive(Clone, Copy, Debug, Default)]
struct BandPassSlot(BandPass);

/// Tremor of every joint: seeded Gaussian white noise through two cascaded band-pass biquads (4th order),
/// scaled so the torque has the profile's RMS.
#[derive(Clone, Debug)]
pub(super) struct Tremor {
    filters: JointArray<[BandPassSlot; 2]>,
    /// Standard deviation of the white noise at the filter input [Nm].
    input_std: f64,
    rng: SmallRng,
}

impl Tremor {
    /// The tremor of `dof` joints sampled at `fs` [Hz], its noise seeded with `seed`. Not real-time safe.
    pub(super) fn new(profile: &TremorProfile, dof: usize, fs: f64, seed: u64) -> Self {
        let t = profile;
        // Two cascaded band-pass biquads (4th order) for a clean 4–8 Hz band.
        let section = if t.high_hz < fs / 2.0 { BandPass::new(t.low_hz, t.high_hz, fs) } else { BandPass::default() };
        let filter = [BandPassSlot(section), BandPassSlot(section)];
        // Unit-variance white noise through a filter with impulse response h has output variance Σ h²: scale
        // the input so the tremor torque has the profile's RMS exactly (in expectation).
        let gain2 = {
            let mut f = filter;
            (0..(20.0 * fs) as usize)
                .map(|k| {
                    let x = if k == 0 { 1.0 } else { 0.0 };
                    let mid = f[0].0.step(x);
                    let y = f[1].0.step(mid);
                    y * y
                })
                .sum::<f64>()
        };
        let input_std = if gain2 > 0.0 { t.amplitude / gain2.sqrt() } else { 0.0 };
        Self { filters: JointArray::splat(dof, filter), input_std, rng: SmallRng::seed_from_u64(seed) }
    }

    /// Re-seeds the noise (a resumed patient is reproducible).
    pub(super) fn reseed(&mut self, seed: u64) {
        self.rng = SmallRng::seed_from_u64(seed);
    }

    /// One period of joint `i`'s tremor, bounded by `±limit` [Nm]. Real-time safe.
    pub(super) fn step(&mut self, i: usize, limit: f64) -> f64 {
        let noise: f64 = self.rng.sample(StandardNormal);
        let [a, b] = &mut self.filters[i];
        let tremor = b.0.step(a.0.step(self.input_std * noise));
        tremor.clamp(-limit, limit)
    }
}
