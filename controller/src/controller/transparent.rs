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
    /// plus (G − 1)·K_e·(q − q_d) + offset, bounded by `error_augmentation.torque_max`. Real-time safe.
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
            let augment = (g - 1.0) * self.gains.ea_k[j] * (q[j] - reference.position[j]) + self.gains.ea_offset[j];
            tau[j] = self.friction(j, qd[j]) - self.gains.transparent_d[j] * qd[j]
                + augment.clamp(-ea.torque_max, ea.torque_max);
        }
    }
}
