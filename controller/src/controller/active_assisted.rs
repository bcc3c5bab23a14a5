//! Active-assisted mode: the block's assist-as-needed law (fixed, Emken, RBF or tunnel; see [`crate::aan`]),
//! scaled by the progression's assistance scale.

use plexo_hal::{JointArray, JointState, MAX_JOINTS};

use super::Controller;
use crate::aan::{self, AanLaw};
use crate::tasks::TaskReference;

impl Controller {
    /// Mode torque of [`Mode::ActiveAssisted`](super::Mode::ActiveAssisted) into `tau` [Nm]; adapts the law's
    /// state over `dt` [s] (continuous Emken, RBF weights). Real-time safe.
    pub(super) fn assist_as_needed(
        &mut self,
        state: &JointState,
        r: &TaskReference,
        dt: f64,
        tau: &mut JointArray<f64>,
    ) {
        let n = self.dof;
        let q = &state.position;
        let qd = &state.velocity;
        let scale = self.adaptation.assistance_scale;
        let a = &self.config.aan;
        match self.settings.law {
            AanLaw::Fixed => {
                for j in 0..n {
                    tau[j] = scale * a.emken.initial * (r.position[j] - q[j])
                        + self.gains.aan_d[j] * (r.velocity[j] - qd[j]);
                }
            }
            AanLaw::Emken => {
                if a.emken.continuous {
                    let mut err = [0.0; MAX_JOINTS];
                    for j in 0..n {
                        err[j] = r.position[j] - q[j];
                    }
                    aan::emken_update_continuous(&mut self.adaptation.emken_stiffness[..n], &err[..n], dt, &a.emken);
                }
                let mut norm2 = 0.0;
                for j in 0..n {
                    norm2 += (r.position[j] - q[j]).powi(2);
                }
                let half_width = aan::emken_window_half_width(&a.emken, scale, self.trial_tolerance);
                let window = aan::emken_window_factor(norm2.sqrt(), half_width);
                for j in 0..n {
                    let k = self.adaptation.emken_stiffness[j];
                    let d = aan::emken_damping(self.gains.aan_d[j], k, scale, &a.emken);
                    tau[j] = window * (scale * k * (r.position[j] - q[j]) + d * (r.velocity[j] - qd[j]));
                }
            }
            AanLaw::Rbf => {
                let c = &a.rbf;
                let mut phi = [0.0; aan::MAX_RBF];
                aan::rbf_basis(r.phase, c, &mut phi);
                for j in 0..n {
                    let e = r.position[j] - q[j];
                    let ed = r.velocity[j] - qd[j];
                    aan::rbf_adapt(&mut self.adaptation.rbf_weights[j], &phi, c.lambda * e + ed, dt, c);
                    tau[j] = scale * (aan::rbf_torque(&self.adaptation.rbf_weights[j], &phi) + c.stiffness * e)
                        + self.gains.aan_d[j] * ed;
                }
            }
            AanLaw::Tunnel => {
                let width = self.adaptation.tunnel_width;
                aan::tunnel_torque(q, qd, &r.start, &r.target, width, &a.tunnel, tau);
                for t in tau.iter_mut() {
                    *t *= scale;
                }
            }
        }
    }
}
