//! Passive mode: the robot moves the arm along the reference with a joint-space or Cartesian impedance and the
//! inverse-dynamics feed-forward of the reference.

use nalgebra::{Matrix3, Vector3};
use plexo_hal::{JointArray, JointState, MAX_JOINTS};
use plexo_kinematics::{ReferenceFrame, forward_kinematics, frame_jacobian_from_data, rnea};

use super::{Controller, Space};
use crate::tasks::TaskReference;

impl Controller {
    /// Mode torque of [`Mode::Passive`](super::Mode::Passive) into `tau` [Nm]: the impedance of the block's space
    /// plus the feed-forward M(q)q̈_d + C(q, q̇_d)q̇_d + g(q) of the reference minus the gravity `g_coupled` [Nm]
    /// already in the hold torque. Returns false if the Cartesian inverse does not exist (see
    /// [`Self::cartesian_impedance`]). Real-time safe.
    pub(super) fn passive_torque(
        &mut self,
        state: &JointState,
        reference: &TaskReference,
        g_coupled: &[f64; MAX_JOINTS],
        tau: &mut JointArray<f64>,
    ) -> bool {
        let n = self.dof;
        let q = &state.position;
        let qd = &state.velocity;
        let mut model_ok = true;
        match self.settings.space {
            Space::Joint => {
                for j in 0..n {
                    tau[j] = self.gains.k[j] * (reference.position[j] - q[j])
                        + self.gains.d[j] * (reference.velocity[j] - qd[j]);
                }
            }
            Space::Cartesian => model_ok = self.cartesian_impedance(state, reference, tau),
        }
        // Inverse-dynamics feed-forward minus the gravity already in the hold torque. For a still reference
        // (rest holds, the end of every movement) it is M·0 + C(q, 0)·0 + g − g = 0: no RNEA pass.
        let still = reference.velocity.iter().chain(reference.acceleration.iter()).all(|v| *v == 0.0);
        if self.config.impedance.feedforward && !still {
            let ff = rnea(&self.coupled, &mut self.coupled_data, q, &reference.velocity, &reference.acceleration);
            for j in 0..n {
                tau[j] += ff[j] - g_coupled[j];
            }
        }
        model_ok
    }

    /// Cartesian impedance of the handle: τ = J_vᵀ(K_x(x_d − x) + D_x(ẋ_d − ẋ)) + N (K_n(q_d − q) − D_n q̇),
    /// N = I − J_vᵀ(J_v J_vᵀ + λ²I)⁻¹J_v (λ² = `cartesian.damping_lambda` > 0, so the inverse is bounded by
    /// 1/λ² even at a singularity). Without an explicit handle reference, x_d = FK(q_d) and ẋ_d = J(q_d) q̇_d.
    /// Uses the handle Jacobian and placements of the measured posture computed earlier in this tick (no second
    /// kinematics pass of q).
    /// Returns false if the inverse does not exist (only possible with non-finite kinematics): the caller then
    /// reports non-finite inputs and the supervisor stops. Real-time safe.
    fn cartesian_impedance(&mut self, state: &JointState, r: &TaskReference, tau: &mut JointArray<f64>) -> bool {
        let n = self.dof;
        let c = &self.config.cartesian;
        let handle = self.handle;
        let (x_d, xd_d) = match r.handle_position {
            Some(p) => (p, r.handle_velocity),
            None => {
                forward_kinematics(&self.coupled, &mut self.reference_data, &r.position);
                frame_jacobian_from_data(
                    &self.coupled,
                    &mut self.reference_data,
                    handle,
                    ReferenceFrame::LocalWorldAligned,
                    &mut self.reference_jacobian,
                );
                let p = self.reference_data.world_T_frame[handle.0].translation.vector;
                let mut v = Vector3::zeros();
                for j in 0..n {
                    v += self.reference_jacobian.fixed_view::<3, 1>(0, j) * r.velocity[j];
                }
                (p, v)
            }
        };
        // J(q) was read after CRBA this tick; x(q) comes from this tick's forward kinematics.
        let x = self.coupled_data.world_T_frame[handle.0].translation.vector;
        let mut xd = Vector3::zeros();
        let mut jjt = Matrix3::identity() * c.damping_lambda;
        for j in 0..n {
            let col = self.jacobian.fixed_view::<3, 1>(0, j);
            xd += col * state.velocity[j];
            jjt += col * col.transpose();
        }
        let force = (x_d - x) * c.stiffness + (xd_d - xd) * c.damping;
        let Some(inv) = jjt.try_inverse() else {
            return false;
        };
        let mut z = [0.0; MAX_JOINTS];
        let mut jz = Vector3::zeros();
        for j in 0..n {
            z[j] =
                self.gains.null_k[j] * (r.position[j] - state.position[j]) - self.gains.null_d[j] * state.velocity[j];
            jz += self.jacobian.fixed_view::<3, 1>(0, j) * z[j];
        }
        let y = inv * jz;
        for j in 0..n {
            let col = self.jacobian.fixed_view::<3, 1>(0, j);
            tau[j] = col.dot(&force) + z[j] - col.dot(&y);
        }
        true
    }
}
