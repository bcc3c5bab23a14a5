//! The modes in which the patient leads: transparent (gravity and friction compensation with a small residual
//! damping), resistive (plus viscous and elastic resistance) and error augmentation (plus an amplified tracking
//! error and an offset, Wei & Patton 2005).

use plexo_hal::{JointArray, JointState};

use super::Controller;
use crate::tasks::TaskReference;

impl Controller {
    /// Mode torque of [`Mode::Transparent`](super::Mode::Transparent) into `tau` [Nm]: friction compensation minus
    /// the residual damping. Real-time safe.
    pub(super) fn transparent_torque(&self, state: &JointState, tau: &mut JointArray<f64>) {
        let qd = &state.velocity;
        for j in 0..self.dof {
            tau[j] = self.friction(j, qd[j]) - self.gains.transparent_d[j] * qd[j];
        }
    }

    /// Mode torque of [`Mode::Resistive`](super::Mode::Resistive) into `tau` [Nm]: transparent, minus viscous
    /// resistance and an elastic anchor at the trial's start posture. Real-time safe.
    pub(super) fn resistive_torque(&self, state: &JointState, reference: &TaskReference, tau: &mut JointArray<f64>) {
        let (q, qd) = (&state.position, &state.velocity);
        for j in 0..self.dof {
            tau[j] = self.friction(j, qd[j])
                - self.gains.transparent_d[j] * qd[j]
                - self.gains.res_b[j] * qd[j]
                - self.gains.res_k[j] * (q[j] - reference.start[j]);
        }
    }

    /// Mode torque of [`Mode::ErrorAugmentation`](super::Mode::ErrorAugmentation) into `tau` [Nm]: transparent,
    /// plus (G − 1)·K_e·ê + offset, bounded by `error_augmentation.torque_max`, where ê = q − q_d up to
    /// `error_max` and fades linearly to zero at 2 × `error_max`. The augmentation is a negative stiffness: without
    /// the fade it pushed an arm that had lagged 1 rad behind its reference further away, and the patient's
    /// full-strength correction of that error reached the 3 rad/s velocity stop (mild patient, G = 2, issue 12).
    /// Real-time safe.
    pub(super) fn error_augmentation_torque(
        &self,
        state: &JointState,
        reference: &TaskReference,
        tau: &mut JointArray<f64>,
    ) {
        let (q, qd) = (&state.position, &state.velocity);
        let ea = &self.config.error_augmentation;
        let g = self.settings.error_gain.unwrap_or(ea.gain);
        for j in 0..self.dof {
            let augment = (g - 1.0) * self.gains.ea_k[j] * augmented_error(q[j] - reference.position[j], ea.error_max)
                + self.gains.ea_offset[j];
            tau[j] = self.friction(j, qd[j]) - self.gains.transparent_d[j] * qd[j]
                + augment.clamp(-ea.torque_max, ea.torque_max);
        }
    }
}

/// The error that error augmentation amplifies [rad]: `e` up to `|e| = e_max`, then fading linearly to zero at
/// `2 e_max` (and zero beyond), with the sign of `e`. Real-time safe.
pub(crate) fn augmented_error(e: f64, e_max: f64) -> f64 {
    let a = e.abs();
    let magnitude = if a <= e_max { a } else { (2.0 * e_max - a).max(0.0) };
    magnitude.copysign(e)
}

#[cfg(test)]
mod tests {
    use super::augmented_error;

    #[test]
    fn the_augmented_error_is_the_error_up_to_its_bound_then_fades_to_zero() {
        assert_eq!(augmented_error(0.05, 0.1), 0.05);
        assert_eq!(augmented_error(-0.1, 0.1), -0.1);
        assert!((augmented_error(0.15, 0.1) - 0.05).abs() < 1e-12);
        assert!((augmented_error(-0.15, 0.1) + 0.05).abs() < 1e-12);
        assert_eq!(augmented_error(0.2, 0.1), 0.0);
        assert_eq!(augmented_error(1.0, 0.1), 0.0, "an arm far off its path is not pushed");
    }
}
