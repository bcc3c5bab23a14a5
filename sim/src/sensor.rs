//! Joint sensor model shared by both plants: encoder resolution and noise, velocity by filtered
//! differentiation of the encoder, optional torque-sensor noise. Seeded, allocation-free.

use plexo_hal::JointArray;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::SimError;

/// Sensor parameters, identical for every joint.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorParams {
    /// Encoder counts per motor revolution (e.g. 16384 for a 14-bit magnetic encoder); the link-side
    /// resolution is `2π / (counts · gear_ratio)` [rad]. 0 disables quantisation.
    pub encoder_counts_per_rev: u32,
    /// Standard deviation of white encoder noise at the link [rad] (added before quantisation).
    pub encoder_noise: f64,
    /// Cut-off of the first-order low-pass applied to the differentiated encoder [Hz].
    pub velocity_cutoff_hz: f64,
    /// Standard deviation of white noise on the reported joint torque [Nm]; 0 = noise-free.
    pub torque_noise: f64,
    /// Seed of the sensor noise generator.
    pub seed: u64,
}

impl Default for SensorParams {
    fn default() -> Self {
        Self {
            encoder_counts_per_rev: 16384,
            encoder_noise: 2.0e-5,
            velocity_cutoff_hz: 150.0,
            torque_noise: 0.0,
            seed: 0x5EED_0001,
        }
    }
}

impl SensorParams {
    /// Perfect sensors: no quantisation, no noise, velocity filter at 1/(4 dt) so it barely lags.
    pub fn ideal() -> Self {
        Self { encoder_counts_per_rev: 0, encoder_noise: 0.0, velocity_cutoff_hz: 1.0e6, torque_noise: 0.0, seed: 0 }
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |key: &str, value: f64, allowed: &'static str| SimError::InvalidParameter {
            key: format!("sensors.{key}"),
            value,
            allowed,
        };
        if !(self.encoder_noise.is_finite() && self.encoder_noise >= 0.0) {
            return Err(bad("encoder_noise", self.encoder_noise, "[0, inf) rad"));
        }
        if !(self.velocity_cutoff_hz.is_finite() && self.velocity_cutoff_hz > 0.0) {
            return Err(bad("velocity_cutoff_hz", self.velocity_cutoff_hz, "(0, inf) Hz"));
        }
        if !(self.torque_noise.is_finite() && self.torque_noise >= 0.0) {
            return Err(bad("torque_noise", self.torque_noise, "[0, inf) Nm"));
        }
        Ok(())
    }
}

/// The sensors of all joints and their latest sample. Real-time safe after construction.
#[derive(Clone, Debug)]
pub struct SensorBank {
    params: SensorParams,
    resolution: JointArray<f64>,
    velocity_alpha: f64,
    dt: f64,
    rng: SmallRng,
    position: JointArray<f64>,
    velocity: JointArray<f64>,
    torque: JointArray<f64>,
    primed: bool,
}

impl SensorBank {
    /// Sensors for joints with the given gear ratios, sampled every `dt` [s].
    pub fn new(params: SensorParams, gear_ratios: &[f64], dt: f64) -> Result<Self, SimError> {
        params.validate()?;
        let n = gear_ratios.len();
        let mut resolution = JointArray::splat(n, 0.0);
        if params.encoder_counts_per_rev > 0 {
            for (r, g) in resolution.iter_mut().zip(gear_ratios) {
                *r = core::f64::consts::TAU / (f64::from(params.encoder_counts_per_rev) * g);
            }
        }
        let velocity_alpha = 1.0 - (-core::f64::consts::TAU * params.velocity_cutoff_hz * dt).exp();
        Ok(Self {
            params,
            resolution,
            velocity_alpha,
            dt,
            rng: SmallRng::seed_from_u64(params.seed),
            position: JointArray::splat(n, 0.0),
            velocity: JointArray::splat(n, 0.0),
            torque: JointArray::splat(n, 0.0),
            primed: false,
        })
    }

    /// Link-side encoder resolution per joint [rad] (0 when quantisation is off).
    pub fn resolution(&self) -> &JointArray<f64> {
        &self.resolution
    }

    /// Samples the true state: `position` [rad] through noise and quantisation, velocity [rad/s] by filtered
    /// differentiation of the sampled position, `torque` [Nm] plus noise. The first sample after
    /// [`SensorBank::prime`] sets the velocity to the true velocity (a drive's estimator is settled at start).
    /// Real-time safe.
    pub fn sample(&mut self, position: &[f64], velocity: &[f64], torque: &[f64]) {
        for i in 0..self.position.len() {
            let mut q = position[i];
            if self.params.encoder_noise > 0.0 {
                let n: f64 = self.rng.sample(StandardNormal);
                q += self.params.encoder_noise * n;
            }
            let res = self.resolution[i];
            if res > 0.0 {
                q = (q / res).round() * res;
            }
            if self.primed {
                let raw = (q - self.position[i]) / self.dt;
                self.velocity[i] += self.velocity_alpha * (raw - self.velocity[i]);
            } else {
                self.velocity[i] = velocity[i];
            }
            self.position[i] = q;
            let mut t = torque[i];
            if self.params.torque_noise > 0.0 {
                let n: f64 = self.rng.sample(StandardNormal);
                t += self.params.torque_noise * n;
            }
            self.torque[i] = t;
        }
        self.primed = true;
    }

    /// Forgets the differentiation history: the next [`SensorBank::sample`] reports the true velocity (used when
    /// the plant state is set directly).
    pub fn prime(&mut self) {
        self.primed = false;
    }

    /// Latest measured positions [rad].
    pub fn position(&self) -> &JointArray<f64> {
        &self.position
    }
    /// Latest measured velocities [rad/s].
    pub fn velocity(&self) -> &JointArray<f64> {
        &self.velocity
    }
    /// Latest measured torques [Nm].
    pub fn torque(&self) -> &JointArray<f64> {
        &self.torque
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_matches_resolution() {
        let p = SensorParams { encoder_noise: 0.0, ..SensorParams::default() };
        let mut s = SensorBank::new(p, &[9.0], 1e-3).unwrap();
        let res = core::f64::consts::TAU / (16384.0 * 9.0);
        assert!((s.resolution()[0] - res).abs() < 1e-15);
        s.sample(&[0.3], &[0.0], &[0.0]);
        let q = s.position()[0];
        assert!((q - 0.3).abs() <= res / 2.0 + 1e-15);
        assert!(((q / res).round() * res - q).abs() < 1e-12, "on the grid");
    }

    #[test]
    fn differentiated_velocity_converges_on_a_ramp() {
        let mut s =
            SensorBank::new(SensorParams { encoder_noise: 0.0, ..SensorParams::default() }, &[9.0], 1e-3).unwrap();
        for k in 0..200 {
            let t = k as f64 * 1e-3;
            s.sample(&[0.5 * t], &[0.5], &[0.0]);
        }
        assert!((s.velocity()[0] - 0.5).abs() < 0.02, "{}", s.velocity()[0]);
    }

    #[test]
    fn same_seed_same_noise_different_seed_different_noise() {
        let run = |seed| {
            let p = SensorParams { seed, encoder_counts_per_rev: 0, torque_noise: 0.1, ..SensorParams::default() };
            let mut s = SensorBank::new(p, &[9.0, 9.0], 1e-3).unwrap();
            let mut acc = Vec::new();
            for _ in 0..10 {
                s.sample(&[0.0, 0.0], &[0.0, 0.0], &[1.0, 1.0]);
                acc.extend_from_slice(&s.position()[..]);
                acc.extend_from_slice(&s.torque()[..]);
            }
            acc
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
