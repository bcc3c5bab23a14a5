//! Gravity compensation with arm-weight support: the patient's arm attached to the robot model as payloads, and
//! the generalized gravity of robot + arm and of the arm alone, split by linearity in the masses.

use nalgebra::{Unit, Vector3};
use plexo_hal::MAX_JOINTS;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{Data, Model, RigidBody, forward_kinematics};

use super::Controller;
use crate::error::ControllerError;

/// Attaches the patient's upper arm (to `upper_arm_link`, from the shoulder centre), forearm (to `forearm_link`,
/// from the elbow axis) and hand (centre of mass at the `handle`, the palm centre) to `model` as payloads. The
/// segments point where the arm points at q = 0 by the shared joint-zero convention: straight down (world −z).
/// The same attachment as the simulated patient (plexo-sim `arm_payloads`), so the observer's model matches the
/// plant's. Returns the attached segments (frame name, body in that frame). Not real-time safe.
pub fn attach_patient_arm(
    model: &mut Model,
    arm: &ArmAnthropometrics,
) -> Result<Vec<(String, RigidBody)>, ControllerError> {
    let mut data = Data::new(model);
    let zero = vec![0.0; model.nv()];
    forward_kinematics(model, &mut data, &zero);
    let down = Vector3::new(0.0, 0.0, -1.0);
    let mut attached = Vec::with_capacity(3);
    for (name, segment) in [("upper_arm_link", arm.upper_arm), ("forearm_link", arm.forearm), ("handle", arm.hand)] {
        let id = model.frame_id(name).ok_or_else(|| ControllerError::Model {
            context: format!("attaching the patient's arm to `{}`", model.name()),
            message: format!("the robot has no frame `{name}`"),
        })?;
        let axis = Unit::new_normalize(data.world_T_frame[id.0].rotation.inverse() * down);
        let offset = if name == "handle" { -axis.into_inner() * segment.com_from_proximal } else { Vector3::zeros() };
        let body = segment.to_rigid_body(axis, offset);
        model.attach_payload(name, &body).map_err(|e| ControllerError::Model {
            context: format!("attaching a patient segment to `{name}`"),
            message: e.to_string(),
        })?;
        attached.push((name.to_owned(), body));
    }
    Ok(attached)
}

/// Point masses that load the joints through gravity: body `joint` carries `mass` [kg] at `com` [m] (joint
/// frame). Gravity torque is linear in the masses, so the arm's share is computed from its segments alone.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct GravityBody {
    /// Index of the joint whose body carries the mass.
    pub(super) joint: usize,
    /// Mass [kg].
    pub(super) mass: f64,
    /// Centre of mass in the joint frame [m].
    pub(super) com: Vector3<f64>,
}

/// Generalized gravity [Nm] of the robot with the arm (`coupled_out`) and of the arm's segments alone (`arm_out`)
/// from the joint placements `world_t_joint` (after forward kinematics). Gravity torque is linear in the masses:
/// with S_i = Σ m_b c_b and M_i = Σ m_b over the bodies b in joint i's subtree (c_b world centre of mass),
/// g_i = −a_i·((S_i − M_i p_i) × g) for a revolute joint with world axis a_i through p_i, and −M_i a_i·g for a
/// prismatic one. The subtree sums accumulate from the tip to the base (`parents[i] < i`), so the cost is one
/// rotation per body and per joint; allocation-free.
#[allow(clippy::too_many_arguments)]
fn gravity_split(
    gravity: &Vector3<f64>,
    world_t_joint: &[nalgebra::Isometry3<f64>],
    axes: &[Vector3<f64>],
    rotational: &[bool],
    parents: &[Option<usize>],
    coupled: &[GravityBody],
    arm: &[GravityBody],
    coupled_out: &mut [f64],
    arm_out: &mut [f64],
) {
    let n = coupled_out.len();
    let mut s_c = [Vector3::zeros(); MAX_JOINTS];
    let mut m_c = [0.0; MAX_JOINTS];
    let mut s_a = [Vector3::zeros(); MAX_JOINTS];
    let mut m_a = [0.0; MAX_JOINTS];
    for body in coupled {
        let pose = &world_t_joint[body.joint];
        s_c[body.joint] += (pose.rotation * body.com + pose.translation.vector) * body.mass;
        m_c[body.joint] += body.mass;
    }
    // The coupled bodies already include the arm's segments (payloads merged into the links).
    for body in arm {
        let pose = &world_t_joint[body.joint];
        s_a[body.joint] += (pose.rotation * body.com + pose.translation.vector) * body.mass;
        m_a[body.joint] += body.mass;
    }
    for i in (0..n).rev() {
        let pose = &world_t_joint[i];
        let a = pose.rotation * axes[i];
        if rotational[i] {
            let p = pose.translation.vector;
            coupled_out[i] = -a.dot(&(s_c[i] - p * m_c[i]).cross(gravity));
            arm_out[i] = -a.dot(&(s_a[i] - p * m_a[i]).cross(gravity));
        } else {
            coupled_out[i] = -m_c[i] * a.dot(gravity);
            arm_out[i] = -m_a[i] * a.dot(gravity);
        }
        if let Some(parent) = parents[i] {
            let (sc, mc, sa, ma) = (s_c[i], m_c[i], s_a[i], m_a[i]);
            s_c[parent] += sc;
            m_c[parent] += mc;
            s_a[parent] += sa;
            m_a[parent] += ma;
        }
    }
}

impl Controller {
    /// Generalized gravity of the robot with the arm and of the arm alone [Nm] at the placements of the last
    /// `forward_kinematics` on `coupled_data`. Real-time safe.
    pub(super) fn gravity_terms(&self) -> ([f64; MAX_JOINTS], [f64; MAX_JOINTS]) {
        let n = self.dof;
        let (mut g_coupled, mut g_arm) = ([0.0; MAX_JOINTS], [0.0; MAX_JOINTS]);
        gravity_split(
            &self.coupled.gravity(),
            &self.coupled_data.world_T_joint,
            &self.axes[..n],
            &self.rotational[..n],
            &self.parents[..n],
            &self.coupled_bodies[..n],
            &self.arm_bodies[..self.arm_body_count],
            &mut g_coupled[..n],
            &mut g_arm[..n],
        );
        (g_coupled, g_arm)
    }

    /// Writes the hold torque g_robot + α·g_arm = g_coupled − (1 − α)·g_arm [Nm] (α = the current weight
    /// support) into the report. Real-time safe.
    pub(super) fn set_hold_torque(&mut self, g_coupled: &[f64; MAX_JOINTS], g_arm: &[f64; MAX_JOINTS]) {
        let alpha = self.support;
        for j in 0..self.dof {
            self.report.hold_torque[j] = g_coupled[j] - (1.0 - alpha) * g_arm[j];
        }
    }
}
