//! Generalized-momentum observer of the patient's joint torque.
//!
//! De Luca & Mattone 2005 (ICRA), Haddadin, De Luca & Albu-Schäffer 2017 (IEEE T-RO 33(6)): with the
//! generalized momentum p = M(q) q̇ and the robot dynamics M q̈ + C q̇ + g = τ_m + τ_ext,
//!
//! ```text
//! ṗ = τ_m + τ_ext − n(q, q̇) + Ṁ(q) q̇          (n = C q̇ + g, the nonlinear effects)
//! r(t) = K_O ( p(t) − p(0) − ∫ (τ_m − n + Ṁ q̇ + r) dt )
//! ```
//!
//! so that ṙ = K_O (τ_ext − r): each joint's residual r is a first-order low-pass of the external torque with
//! bandwidth K_O [rad/s] and needs neither q̈ nor its noise. Ṁ is taken by finite difference of the mass
//! matrix between ticks (the identity Ṁ q̇ − C q̇ = Cᵀ q̇ makes this the textbook β = g − Cᵀq̇ form). With the
//! patient's arm in the model (the coupled model), τ_ext is the patient's muscle torque alone — the effort the
//! AAN laws and the spasm detector need. A cuff interaction-torque sensor, when present, is low-pass filtered
//! and fused by a fixed weight.

use nalgebra::DMatrix;
use plexo_hal::{JointArray, MAX_JOINTS};
use serde::{Deserialize, Serialize};

use crate::config::ObserverConfig;

/// The observer's state. `Clone`, allocation-free after construction.
#[derive(Clone, Debug)]
pub struct MomentumObserver {
    gain: f64,
    sensor_weight: f64,
    sensor_alpha: f64,
    integral: JointArray<f64>,
    residual: JointArray<f64>,
    sensor_filtered: JointArray<f64>,
    sensor_initialised: bool,
    estimate: JointArray<f64>,
    mass_prev: [[f64; MAX_JOINTS]; MAX_JOINTS],
    initialised: bool,
}

/// Snapshot of the observer for telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObserverGains {
    /// K_O [rad/s].
    pub gain: f64,
    /// Sensor weight [-].
    pub sensor_weight: f64,
}

impl MomentumObserver {
    /// An observer for `dof` joints with control period `period` [s].
    pub fn new(dof: usize, config: &ObserverConfig, period: f64) -> Self {
        let rc = 1.0 / (2.0 * core::f64::consts::PI * config.sensor_cutoff);
        Self {
            gain: config.gain,
            sensor_weight: config.sensor_weight,
            sensor_alpha: period / (rc + period),
            integral: JointArray::splat(dof, 0.0),
            residual: JointArray::splat(dof, 0.0),
            sensor_filtered: JointArray::splat(dof, 0.0),
            sensor_initialised: false,
            estimate: JointArray::splat(dof, 0.0),
            mass_prev: [[0.0; MAX_JOINTS]; MAX_JOINTS],
            initialised: false,
        }
    }

    /// Gains in use.
    pub fn gains(&self) -> ObserverGains {
        ObserverGains { gain: self.gain, sensor_weight: self.sensor_weight }
    }

    /// Restarts the observer (the next update re-initialises p(0) from the measured state). Real-time safe.
    pub fn reset(&mut self) {
        self.initialised = false;
        self.sensor_initialised = false;
        self.residual.fill(0.0);
        self.estimate.fill(0.0);
    }

    /// One observer step. `mass` = M(q) [kg m²], `nle` = C(q, q̇)q̇ + g(q) [Nm] of the coupled model,
    /// `tau_motor` = joint torque the motors delivered [Nm], `qd` [rad/s], `dt` [s], `sensor` = cuff
    /// interaction torque [Nm] if measured. Returns the estimated external (patient) torque [Nm].
    /// Real-time safe.
    pub fn update(
        &mut self,
        mass: &DMatrix<f64>,
        nle: &[f64],
        tau_motor: &[f64],
        qd: &[f64],
        dt: f64,
        sensor: Option<&JointArray<f64>>,
    ) -> &JointArray<f64> {
        let n = self.integral.len();
        if !self.initialised {
            for i in 0..n {
                self.integral[i] = (0..n).map(|k| mass[(i, k)] * qd[k]).sum();
                for k in 0..n {
                    self.mass_prev[i][k] = mass[(i, k)];
                }
                self.residual[i] = 0.0;
            }
            self.initialised = true;
        }
        for i in 0..n {
            let mut p = 0.0;
            let mut mdot_qd = 0.0;
            for k in 0..n {
                p += mass[(i, k)] * qd[k];
                if dt > 0.0 {
                    mdot_qd += (mass[(i, k)] - self.mass_prev[i][k]) / dt * qd[k];
                }
                self.mass_prev[i][k] = mass[(i, k)];
            }
            self.integral[i] += (tau_motor[i] - nle[i] + mdot_qd + self.residual[i]) * dt;
            self.residual[i] = self.gain * (p - self.integral[i]);
        }
        match sensor {
            Some(s) if s.len() == n && self.sensor_weight > 0.0 => {
                if !self.sensor_initialised {
                    self.sensor_filtered = *s;
                    self.sensor_initialised = true;
                }
                for i in 0..n {
                    self.sensor_filtered[i] += self.sensor_alpha * (s[i] - self.sensor_filtered[i]);
                    self.estimate[i] =
                        self.sensor_weight * self.sensor_filtered[i] + (1.0 - self.sensor_weight) * self.residual[i];
                }
            }
            _ => self.estimate = self.residual,
        }
        &self.estimate
    }

    /// The latest estimate of the external torque [Nm]. Real-time safe.
    pub fn estimate(&self) -> &JointArray<f64> {
        &self.estimate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ControllerConfig;

    /// A 1-DOF pendulum-free inertia: M = m, n = 0. A constant external torque must be recovered with the
    /// first-order response r(t) = τ (1 − e^{−K t}).
    #[test]
    fn recovers_constant_external_torque_with_first_order_response() {
        let cfg = ControllerConfig::default_config().unwrap();
        let dt = 0.001;
        let mut obs = MomentumObserver::new(1, &cfg.observer, dt);
        let m = 0.5;
        let mass = DMatrix::from_element(1, 1, m);
        let (tau_ext, tau_m) = (2.0, 0.5);
        let mut qd = 0.0;
        let mut r = 0.0;
        let t_tau = 1.0 / cfg.observer.gain;
        let mut at_time_constant = 0.0;
        for k in 0..1000 {
            qd += (tau_ext + tau_m) / m * dt;
            r = obs.update(&mass, &[0.0], &[tau_m], &[qd], dt, None)[0];
            if k == (t_tau / dt) as usize {
                at_time_constant = r;
            }
        }
        assert!((r - tau_ext).abs() < 1e-3 * tau_ext, "steady state {r}");
        let expected = tau_ext * (1.0 - (-1.0f64).exp());
        assert!((at_time_constant - expected).abs() < 0.1 * tau_ext, "{at_time_constant} vs {expected}");
    }

    #[test]
    fn sensor_fusion_weights_the_sensor() {
        let cfg = ControllerConfig::default_config().unwrap();
        let mut obs = MomentumObserver::new(1, &cfg.observer, 0.001);
        let mass = DMatrix::from_element(1, 1, 1.0);
        let sensor = JointArray::splat(1, 3.0);
        let mut est = 0.0;
        for _ in 0..2000 {
            // The model sees no external torque (robot at rest), the sensor reports 3 Nm.
            est = obs.update(&mass, &[0.0], &[0.0], &[0.0], 0.001, Some(&sensor))[0];
        }
        assert!((est - cfg.observer.sensor_weight * 3.0).abs() < 1e-6, "{est}");
    }
}
