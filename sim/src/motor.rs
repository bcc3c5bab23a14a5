//! Per-joint actuator model shared by both plants: gear ratio and reflected rotor inertia, torque saturation,
//! torque bandwidth (first-order lag), viscous and Coulomb friction.
//!
//! Signal path of one joint, once per control period `dt`:
//! ```text
//! τ_cmd ──► clamp(±torque_limit) ──► first-order lag (bandwidth_hz) ──► τ_motor ──┐
//!                                                                                 ├──► τ_joint = τ_motor + τ_friction
//!                         τ_friction = −viscous·q̇ − coulomb·tanh(q̇ / coulomb_velocity)
//! ```
//! The reflected rotor inertia `rotor_inertia · gear_ratio²` [kg m²] is added to the joint's diagonal of the
//! mass matrix by the plant (rapier's per-DoF `armature`; in the articulated plant the joint armature of
//! plexo-kinematics' ABA).
//!
//! Coulomb friction is smoothed with `tanh` so that an explicit step at 1 kHz is stable; the smoothing velocity
//! is raised at construction, if needed, so that the friction slope `coulomb / coulomb_velocity` never exceeds
//! `armature / dt` (explicit-Euler stability of the linear region, see [`MotorBank::new`]).

use plexo_hal::{JointArray, MAX_JOINTS};
use serde::{Deserialize, Serialize};

use crate::SimError;

/// Parameters of one joint's actuator, all at the link side unless stated.
///
/// Defaults describe a quasi-direct-drive actuator of the class used in research exoskeletons (9:1 planetary,
/// ~6e-5 kg m² rotor); they are illustrative values, not a datasheet. Set them from your drive's datasheet.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotorParams {
    /// Gear ratio N (motor turns per joint turn), ≥ 1.
    pub gear_ratio: f64,
    /// Rotor inertia at the motor side [kg m²]; reflected to the joint as `rotor_inertia · N²`.
    pub rotor_inertia: f64,
    /// Torque saturation at the link [Nm] (absolute).
    pub torque_limit: f64,
    /// Closed-loop torque (current) bandwidth [Hz]; `f64::INFINITY` for an ideal source.
    pub bandwidth_hz: f64,
    /// Viscous friction [Nm·s/rad] at the link.
    pub viscous: f64,
    /// Coulomb friction [Nm] at the link.
    pub coulomb: f64,
    /// Smoothing velocity of the Coulomb term [rad/s] (`tanh(q̇ / coulomb_velocity)`), > 0.
    pub coulomb_velocity: f64,
}

impl Default for MotorParams {
    fn default() -> Self {
        Self {
            gear_ratio: 9.0,
            rotor_inertia: 6.0e-5,
            torque_limit: 20.0,
            bandwidth_hz: 300.0,
            viscous: 0.02,
            coulomb: 0.15,
            coulomb_velocity: 0.05,
        }
    }
}

impl MotorParams {
    /// An ideal actuator: no gear inertia, no friction, no lag, `torque_limit` [Nm]. Used by the cross-check and
    /// energy tests.
    pub fn ideal(torque_limit: f64) -> Self {
        Self {
            gear_ratio: 1.0,
            rotor_inertia: 0.0,
            torque_limit,
            bandwidth_hz: f64::INFINITY,
            viscous: 0.0,
            coulomb: 0.0,
            coulomb_velocity: 0.05,
        }
    }

    /// Reflected rotor inertia at the joint [kg m²] = `rotor_inertia · gear_ratio²`.
    pub fn reflected_inertia(&self) -> f64 {
        self.rotor_inertia * self.gear_ratio * self.gear_ratio
    }

    fn validate(&self, joint: usize) -> Result<(), SimError> {
        let check = |name: &str, value: f64, ok: bool, allowed: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(SimError::InvalidParameter { key: format!("motors[{joint}].{name}"), value, allowed })
            }
        };
        check("gear_ratio", self.gear_ratio, self.gear_ratio.is_finite() && self.gear_ratio >= 1.0, "[1, inf)")?;
        check(
            "rotor_inertia",
            self.rotor_inertia,
            self.rotor_inertia.is_finite() && self.rotor_inertia >= 0.0,
            "[0, inf) kg m²",
        )?;
        check(
            "torque_limit",
            self.torque_limit,
            self.torque_limit.is_finite() && self.torque_limit >= 0.0,
            "[0, inf) Nm",
        )?;
        check("bandwidth_hz", self.bandwidth_hz, self.bandwidth_hz > 0.0, "(0, inf] Hz")?;
        check("viscous", self.viscous, self.viscous.is_finite() && self.viscous >= 0.0, "[0, inf) Nm s/rad")?;
        check("coulomb", self.coulomb, self.coulomb.is_finite() && self.coulomb >= 0.0, "[0, inf) Nm")?;
        check(
            "coulomb_velocity",
            self.coulomb_velocity,
            self.coulomb_velocity.is_finite() && self.coulomb_velocity > 0.0,
            "(0, inf) rad/s",
        )
    }
}

/// The actuators of all joints with their lag state. Real-time safe after construction.
#[derive(Clone, Debug)]
pub struct MotorBank {
    params: JointArray<MotorParams>,
    /// Lag filter coefficient per joint, `1 − exp(−2π f dt)` (1 for an ideal source).
    alpha: JointArray<f64>,
    /// Effective Coulomb smoothing velocity after the stability floor [rad/s].
    coulomb_velocity: JointArray<f64>,
    /// Torque the motor currently delivers [Nm] (lag filter state).
    output: JointArray<f64>,
}

impl MotorBank {
    /// Builds the bank for `params.len()` joints stepped every `dt` [s]. Validates every parameter (errors name
    /// `motors[i].field`). The Coulomb smoothing velocity is floored at `coulomb · dt / armature` when the
    /// joint has armature, so the explicit friction term stays stable.
    pub fn new(params: &[MotorParams], dt: f64) -> Result<Self, SimError> {
        if params.len() > MAX_JOINTS {
            return Err(SimError::JointCountMismatch { what: "motors", expected: MAX_JOINTS, got: params.len() });
        }
        let n = params.len();
        let mut bank = Self {
            params: JointArray::from_slice(params).ok_or(SimError::JointCountMismatch {
                what: "motors",
                expected: MAX_JOINTS,
                got: n,
            })?,
            alpha: JointArray::splat(n, 1.0),
            coulomb_velocity: JointArray::splat(n, 0.0),
            output: JointArray::splat(n, 0.0),
        };
        for (i, p) in params.iter().enumerate() {
            p.validate(i)?;
            bank.alpha[i] = if p.bandwidth_hz.is_infinite() {
                1.0
            } else {
                1.0 - (-2.0 * core::f64::consts::PI * p.bandwidth_hz * dt).exp()
            };
            let armature = p.reflected_inertia();
            let floor = if armature > 0.0 { p.coulomb * dt / armature } else { 0.0 };
            bank.coulomb_velocity[i] = p.coulomb_velocity.max(floor);
        }
        Ok(bank)
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.params.len()
    }

    /// Parameters of joint `i`.
    pub fn params(&self, i: usize) -> &MotorParams {
        &self.params[i]
    }

    /// Reflected rotor inertia per joint [kg m²].
    pub fn armature(&self) -> JointArray<f64> {
        let mut a = JointArray::splat(self.dof(), 0.0);
        for (a, p) in a.iter_mut().zip(self.params.iter()) {
            *a = p.reflected_inertia();
        }
        a
    }

    /// Advances the torque lag by one period towards the saturated command `command` [Nm] and returns the
    /// delivered motor torque [Nm]. Real-time safe.
    pub fn step(&mut self, command: &[f64]) -> JointArray<f64> {
        for i in 0..self.dof() {
            let limit = self.params[i].torque_limit;
            let target = command[i].clamp(-limit, limit);
            self.output[i] += self.alpha[i] * (target - self.output[i]);
        }
        self.output
    }

    /// Torque currently delivered by each motor [Nm].
    pub fn output(&self) -> &JointArray<f64> {
        &self.output
    }

    /// Drops every motor's torque to zero at once (e-stop, disable, rejected command). Real-time safe.
    pub fn cut(&mut self) {
        self.output.fill(0.0);
    }

    /// Friction torque of joint `i` at velocity `velocity` [rad/s]: `−viscous·q̇ − coulomb·tanh(q̇/v_s)` [Nm].
    /// Real-time safe.
    pub fn friction(&self, i: usize, velocity: f64) -> f64 {
        let p = &self.params[i];
        let coulomb = if p.coulomb > 0.0 { p.coulomb * tanh(velocity / self.coulomb_velocity[i]) } else { 0.0 };
        -p.viscous * velocity - coulomb
    }
}

/// `tanh(x)` through one `exp` (`(e^{2|x|} − 1)/(e^{2|x|} + 1)`, exactly ±1 beyond |x| = 19): within 3e-16 of
/// `f64::tanh` and about a third of its cost, which matters in a 1 µs plant step (four joints per step).
#[inline]
fn tanh(x: f64) -> f64 {
    let a = x.abs();
    let t = if a >= 19.0 {
        1.0
    } else {
        let e = (2.0 * a).exp();
        (e - 1.0) / (e + 1.0)
    };
    t.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_and_first_order_lag() {
        let p = MotorParams { torque_limit: 5.0, bandwidth_hz: 100.0, ..MotorParams::default() };
        let dt = 1e-3;
        let mut bank = MotorBank::new(&[p], dt).unwrap();
        // A step to 10 Nm saturates at 5 Nm; after one time constant (1/(2π·100) s ≈ 1.6 ms) 63 % is reached.
        let tau = 1.0 / (2.0 * core::f64::consts::PI * 100.0);
        let steps = (tau / dt).round() as usize;
        let mut out = 0.0;
        for _ in 0..steps {
            out = bank.step(&[10.0])[0];
        }
        let expected = 5.0 * (1.0 - (-(steps as f64) * dt / tau).exp());
        assert!((out - expected).abs() < 1e-9, "{out} vs {expected}");
        for _ in 0..100 {
            out = bank.step(&[10.0])[0];
        }
        assert!((out - 5.0).abs() < 1e-9, "saturated output {out}");
        bank.cut();
        assert_eq!(bank.output()[0], 0.0);
    }

    #[test]
    fn friction_opposes_motion_and_is_smooth_at_rest() {
        let bank = MotorBank::new(&[MotorParams::default()], 1e-3).unwrap();
        assert_eq!(bank.friction(0, 0.0), 0.0);
        assert!(bank.friction(0, 1.0) < -0.15);
        assert!(bank.friction(0, -1.0) > 0.15);
        let p = MotorParams::default();
        let fast = bank.friction(0, 2.0);
        assert!((fast + p.viscous * 2.0 + p.coulomb).abs() < 1e-6, "{fast}");
    }

    #[test]
    fn fast_tanh_matches_the_standard_one() {
        let mut worst: f64 = 0.0;
        for k in -40_000..=40_000 {
            let x = k as f64 * 5e-4;
            worst = worst.max((tanh(x) - x.tanh()).abs());
        }
        for x in [1e-300, 1e-12, -1e-9, 18.999, 19.0, 25.0, -1e3, f64::MAX] {
            worst = worst.max((tanh(x) - x.tanh()).abs());
        }
        assert!(worst < 3e-16, "{worst}");
        assert_eq!(tanh(0.0), 0.0);
        assert!(tanh(f64::NAN).is_nan());
    }

    #[test]
    fn coulomb_smoothing_is_floored_for_stability() {
        let p = MotorParams { coulomb: 1.0, coulomb_velocity: 1e-4, ..MotorParams::default() };
        let bank = MotorBank::new(&[p], 1e-3).unwrap();
        // The Coulomb slope at rest must not exceed armature / dt (viscous part removed).
        let slope = -bank.friction(0, 1e-7) / 1e-7 - p.viscous;
        assert!(slope <= p.reflected_inertia() / 1e-3 * (1.0 + 1e-6), "slope {slope}");
    }

    #[test]
    fn bad_parameter_names_joint_and_field() {
        let p = MotorParams { gear_ratio: 0.5, ..MotorParams::default() };
        let err = MotorBank::new(&[MotorParams::default(), p], 1e-3).unwrap_err();
        assert!(err.to_string().contains("motors[1].gear_ratio"), "{err}");
    }
}
