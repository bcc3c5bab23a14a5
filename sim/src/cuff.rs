//! Compliant cuffs ([`CuffParams`]): in [`crate::RapierPlant`], the patient's arm as its own rapier bodies,
//! strapped to the exoskeleton links through spring–damper cuffs that measure the interaction wrench, as cuff
//! force/torque sensors would.
//!
//! # The human arm
//! A second rapier multibody, rooted at the trunk (world):
//! - **upper arm**: one rigid body on a *ball joint* at the shoulder centre (the common point of the robot's
//!   shoulder axes, which must be concurrent). A ball joint has no gimbal singularity of its own, unlike the
//!   robot's serial shoulder;
//! - every robot joint distal to the upper arm (elbow; on plexo-arm6 also pronation and wrist) is replicated as a
//!   revolute human joint with the robot's axis and placement (human and robot joint axes coincide: perfectly
//!   aligned fitting), carrying the segments the rigid path attaches to that link ([`crate::arm_payloads`]: de
//!   Leva 1996). On plexo-arm4 the hand rides on the forearm body (forearm + hand); on plexo-arm6 it is its own
//!   body gripping the handle;
//! - no limits on the human joints: the robot's limits stop the robot, the cuffs stop the arm, and the patient's
//!   end-of-range tissue torque acts as in the rigid path.
//!
//! # Cuffs
//! One cuff per robot link that carries arm segments (`upper_arm_link`, `forearm_link`, on arm6 `hand_link`),
//! centred at the segment's centre of mass. At zero deflection the human body frame coincides with the robot
//! link frame. The cuff wrench on the robot link is
//! ```text
//! F = K_t d + c_t (v_h − v_r),      d = p_h − p_r                 (at the cuff point, world)
//! T = K_r φ + c_r (ω_h − ω_r),      φ = log(R_h R_rᵀ)              (rotation vector, world)
//! ```
//! with `K = k_axial u uᵀ + k_transverse (I − u uᵀ)`, `u` the segment's long axis; the human body gets `−F`, `−T`.
//! The forces are applied **explicitly** (computed from the state at the end of the previous period and held
//! for the next one) rather than as rapier joint motors, because (1) what a cuff sensor reports is then exactly
//! the wrench the simulation applied, (2) the anisotropic cuff stiffness of the literature maps directly, (3) it
//! costs a few vector operations and no solver iterations (the plant runs rapier with 1 iteration). The price is
//! the explicit-integration stability bound `ω·dt ≪ 2`; with the default cuff figures and a 1 ms period the
//! fastest cuff mode (hand gripping the handle, ≈ 0.5 kg effective) has `ω·dt ≈ 0.08`. [`CuffParams`] rejects
//! stiffness or damping large enough to break the bound on the lightest cuffed segment.
//!
//! # The patient's torques
//! The [`crate::Patient`] is stepped on the human arm's own joint state, expressed in the robot's joint
//! coordinates: distal joints read the human revolute joints exactly; the shoulder adds to the robot's shoulder
//! angles the cuff misalignment of the upper arm mapped through the shoulder axes (first order, `Δq = A⁺ φ`,
//! `A` = the robot's shoulder axes in world at its current `q`), and its velocities are `A⁺ ω_upper arm`. The
//! patient's joint torques act as **human joint torques**, between the human segments:
//! - distal joint `i` (elbow, pronation, wrist): `τ_i` about the joint axis, `+` on the distal human body and `−`
//!   on its proximal human body;
//! - shoulder joints (the robot's shoulder axes at `q` give the axis of each torque): the one torque vector `T`
//!   on the human upper arm, reaction on the trunk, whose components along the robot's shoulder axes are the
//!   patient's shoulder torques (`Aᵀ T = τ_shoulder`, `T = A (AᵀA)⁻¹ τ_shoulder`), so that a held robot feels
//!   through its cuffs exactly the joint torques the rigid path would apply. Within ≈ 6° of the robot's
//!   shoulder singularity (`σ_min(A) < 0.1`, shoulder flexion ±90° aligns the abduction and rotation axes) the
//!   inverse is damped (damped least squares, `λ ≤ 0.05`): the patient's torque along the degenerate direction,
//!   which no human shoulder torque can produce, is attenuated instead of amplified without bound.
//!
//! # Interaction torque (cuff sensors)
//! `τ_interaction = Σ_cuffs J_linkᵀ [F; T + p × F]` with the plexo-kinematics `World` Jacobian of the cuffed
//! link frame at the robot's `q` (the wrench moved to the world origin): the generalized force the cuffs exert
//! on the robot joints, positive when the patient pushes a joint in its positive direction. At rest it equals
//! the patient's joint torque minus the gravity torque of the human segments. Sensor noise (white, per cuff
//! sensor axis, [`CuffParams::force_noise`], [`CuffParams::moment_noise`]) is added to the measured wrench, not
//! to the applied one.

use glamx::{DQuat, DVec3};
use nalgebra::{Matrix3, Matrix6xX, Vector3};
use plexo_hal::{JointArray, MAX_JOINTS};
use plexo_kinematics::{Data, FrameId, Model, ReferenceFrame, RigidBody};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;
use rapier3d_f64::glamx;
use rapier3d_f64::prelude::*;

use crate::SimError;
use crate::rapier_convert::{mass_properties, revolute_joint, to_dvec, to_pose};

/// Compliant spring–damper cuffs between the patient's arm segments and the exoskeleton links (RapierPlant
/// only; see [`crate::RapierOptions::cuffs`] and the model in the `cuff` module docs).
///
/// Default stiffness: the linear fits of Schiebl et al. 2025, "Quantification of the Mechanical Properties in
/// the Human–Exoskeleton Upper Arm Interface During Overhead Work Postures in Healthy Young Adults", Sensors
/// 25(15):4605 (21 subjects, upper-arm cuff of an exoskeleton, subject-group linear regression):
/// translation ≈ 2.1–2.4 N/mm along the arm and 2.8–4.5 N/mm across it (mean 3.4 N/mm); rotation ≈ 0.03–0.04
/// N·m/° about the arm's long axis (≈ 2 Nm/rad) and ≈ 0.2 N·m/° about transverse axes (≈ 11.5 Nm/rad). The
/// same figures are used for the forearm and hand cuffs (no comparable forearm data; a stroke-affected arm with
/// atrophied soft tissue is likely softer — lower them to study that).
///
/// Default damping (no measured figure found): chosen for a damping ratio of ≈ 0.3 for a 2 kg segment on the
/// transverse cuff spring (`c = 2 ζ √(k m)` ≈ 50 N·s/m) and ≈ 0.1–0.3 for the segments' rotational modes
/// (0.1 Nm·s/rad) — soft tissue behaves as a well damped wobbling mass.
///
/// Default sensor noise: of the order of the resolution of a small 6-axis force/torque cuff sensor (e.g. an
/// ATI Mini45: 1/16 N and 1/752 N·m per count).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CuffParams {
    /// Translational stiffness along the segment's long axis [N/m] (> 0).
    pub translational_stiffness_axial: f64,
    /// Translational stiffness across the segment [N/m] (> 0).
    pub translational_stiffness_transverse: f64,
    /// Translational damping [N·s/m] (≥ 0).
    pub translational_damping: f64,
    /// Rotational stiffness about the segment's long axis [Nm/rad] (> 0).
    pub rotational_stiffness_axial: f64,
    /// Rotational stiffness about transverse axes [Nm/rad] (> 0).
    pub rotational_stiffness_transverse: f64,
    /// Rotational damping [Nm·s/rad] (≥ 0).
    pub rotational_damping: f64,
    /// Standard deviation of white noise on each force axis of each cuff sensor [N] (≥ 0; 0 = noise-free).
    pub force_noise: f64,
    /// Standard deviation of white noise on each moment axis of each cuff sensor [Nm] (≥ 0).
    pub moment_noise: f64,
    /// Seed of the cuff sensors' noise generator.
    pub seed: u64,
}

impl Default for CuffParams {
    fn default() -> Self {
        Self {
            translational_stiffness_axial: 2250.0,
            translational_stiffness_transverse: 3400.0,
            translational_damping: 50.0,
            rotational_stiffness_axial: 2.0,
            rotational_stiffness_transverse: 11.5,
            rotational_damping: 0.1,
            force_noise: 0.05,
            moment_noise: 0.002,
            seed: 0xC0FF_0001,
        }
    }
}

impl CuffParams {
    /// Noise-free cuff sensors with the default mechanics.
    pub fn noise_free() -> Self {
        Self { force_noise: 0.0, moment_noise: 0.0, ..Self::default() }
    }

    /// Checks every value; errors name the key (`cuffs.<field>`).
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |key: &str, value: f64, allowed: &'static str| SimError::InvalidParameter {
            key: format!("cuffs.{key}"),
            value,
            allowed,
        };
        let positive = [
            ("translational_stiffness_axial", self.translational_stiffness_axial, "(0, inf) N/m"),
            ("translational_stiffness_transverse", self.translational_stiffness_transverse, "(0, inf) N/m"),
            ("rotational_stiffness_axial", self.rotational_stiffness_axial, "(0, inf) Nm/rad"),
            ("rotational_stiffness_transverse", self.rotational_stiffness_transverse, "(0, inf) Nm/rad"),
        ];
        for (key, value, allowed) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(bad(key, value, allowed));
            }
        }
        let non_negative = [
            ("translational_damping", self.translational_damping, "[0, inf) N s/m"),
            ("rotational_damping", self.rotational_damping, "[0, inf) Nm s/rad"),
            ("force_noise", self.force_noise, "[0, inf) N"),
            ("moment_noise", self.moment_noise, "[0, inf) Nm"),
        ];
        for (key, value, allowed) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(bad(key, value, allowed));
            }
        }
        Ok(())
    }

    /// Rejects cuffs too stiff or too damped for the explicit coupling at period `dt` [s] on the lightest
    /// cuffed segment (`mass` [kg], smallest principal inertia `inertia` [kg m²]): `k dt²/m ≤ 0.1` and
    /// `c dt/m ≤ 0.5` (and the rotational analogues). A conservative screen against gross misconfiguration, not
    /// a proof of stability (the effective mass at a cuff also depends on the posture).
    fn check_explicit_stability(&self, dt: f64, mass: f64, inertia: f64) -> Result<(), SimError> {
        let checks = [
            ("translational_stiffness_axial", self.translational_stiffness_axial, dt * dt / mass, 0.1),
            ("translational_stiffness_transverse", self.translational_stiffness_transverse, dt * dt / mass, 0.1),
            ("translational_damping", self.translational_damping, dt / mass, 0.5),
            ("rotational_stiffness_axial", self.rotational_stiffness_axial, dt * dt / inertia, 0.1),
            ("rotational_stiffness_transverse", self.rotational_stiffness_transverse, dt * dt / inertia, 0.1),
            ("rotational_damping", self.rotational_damping, dt / inertia, 0.5),
        ];
        for (key, value, scale, limit) in checks {
            if value * scale > limit {
                return Err(SimError::InvalidParameter {
                    key: format!("cuffs.{key}"),
                    value,
                    allowed: "k·dt²/m ≤ 0.1 and c·dt/m ≤ 0.5 on the lightest cuffed segment (explicit coupling)",
                });
            }
        }
        Ok(())
    }
}

/// Damped-least-squares threshold on the smallest singular value of the shoulder axes (≈ 6°).
const SINGULAR_THRESHOLD: f64 = 0.1;
/// Largest damping factor of the shoulder torque map at the singularity.
const MAX_DAMPING: f64 = 0.05;

/// One replicated robot joint distal to the upper arm.
#[derive(Clone, Copy, Debug)]
struct DistalJoint {
    /// Robot joint index.
    joint: usize,
    /// Robot joint index of the parent human body.
    parent_joint: usize,
    body: RigidBodyHandle,
    parent: RigidBodyHandle,
    /// Joint axis in the body frame.
    axis: DVec3,
    link_id: usize,
    assembly_id: usize,
}

/// One cuff: human body `human` strapped to robot link `robot`.
#[derive(Clone, Copy, Debug)]
struct Cuff {
    /// Robot joint carrying the cuffed link (and index of the human body).
    joint: usize,
    /// A frame on the cuffed robot link (for its Jacobian).
    frame: FrameId,
    robot: RigidBodyHandle,
    human: RigidBodyHandle,
    /// Cuff centre in the link/body frame [m] (the segment's centre of mass).
    point: DVec3,
    /// Segment long axis in the link/body frame (unit).
    axis: DVec3,
    /// Force on the robot link at `robot_point` [N] (world).
    force: DVec3,
    /// Moment on the robot link [Nm] (world).
    moment: DVec3,
    robot_point: DVec3,
    human_point: DVec3,
    /// Spring energy [J].
    energy: f64,
}

/// The human arm on cuffs, inside the plant's rapier world.
pub(crate) struct HumanArm {
    params: CuffParams,
    multibody: MultibodyIndex,
    /// Robot shoulder joints (ancestors of the upper-arm link, incl. its own joint) and their count.
    shoulder: [usize; 3],
    shoulder_count: usize,
    upper: RigidBodyHandle,
    /// The robot link the upper arm is strapped to.
    upper_robot: RigidBodyHandle,
    upper_link_id: usize,
    upper_assembly_id: usize,
    /// Rotation of the upper-arm body at zero ball-joint coordinates (world).
    upper_rest: DQuat,
    /// Shoulder centre [m] (world).
    centre: DVec3,
    /// Angular velocity [rad/s] and velocity of the frame origin [m/s] of each human body, by robot joint index
    /// (world), from the multibody's generalized velocities.
    twists: [(DVec3, DVec3); MAX_JOINTS],
    distal: Vec<DistalJoint>,
    bodies: Vec<RigidBodyHandle>,
    /// Robot joint index and arm segments (body frame) of each of `bodies`.
    body_segments: Vec<(usize, RigidBody)>,
    cuffs: Vec<Cuff>,
    data: Data,
    jacobian: Matrix6xX<f64>,
    /// Robot shoulder axes in world at the robot's `q` (padded with zero columns).
    axes: Matrix3<f64>,
    /// `(AᵀA + P + λ²I)⁻¹` (P: identity on the padded columns).
    axes_inverse: Matrix3<f64>,
    q: JointArray<f64>,
    v: JointArray<f64>,
    interaction: JointArray<f64>,
    rng: SmallRng,
    scratch: Vec<f64>,
    gravity: DVec3,
}

impl core::fmt::Debug for HumanArm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HumanArm").field("q", &self.q).field("cuffs", &self.cuffs.len()).finish_non_exhaustive()
    }
}

fn to_vec3(v: DVec3) -> Vector3<f64> {
    Vector3::new(v.x, v.y, v.z)
}

/// Rotation vector of `q` [rad], shortest way.
fn log(q: DQuat) -> DVec3 {
    let q = if q.w < 0.0 { -q } else { q };
    q.to_scaled_axis()
}

impl HumanArm {
    /// Builds the human arm's bodies and joints in `world` (robot bodies `robot_links`, one per joint, at the
    /// joint frames of `robot` at q = 0). Not real-time safe.
    pub(crate) fn new(
        world: &mut PhysicsWorld,
        robot: &Model,
        spec: &plexo_kinematics::PatientSpec,
        robot_links: &[RigidBodyHandle],
        params: CuffParams,
        dt: f64,
    ) -> Result<Self, SimError> {
        params.validate()?;
        let model_error = |reason: String| SimError::Model { model: robot.name().to_owned(), reason };
        let n = robot.nv();
        let mut data = Data::new(robot);
        plexo_kinematics::forward_kinematics(robot, &mut data, &vec![0.0; n]);

        // Arm segments per robot joint, in the joint frame.
        let mut carried: Vec<Option<RigidBody>> = vec![None; n];
        let mut cuff_frames: Vec<Option<FrameId>> = vec![None; n];
        for (frame, segment) in crate::arm_payloads(robot, spec)? {
            let id = robot.frame_id(frame).ok_or_else(|| model_error(format!("no frame `{frame}`")))?;
            let f = &robot.frames()[id.0];
            let j = f.joint.ok_or_else(|| model_error(format!("cuffs: frame `{frame}` is on the fixed base")))?;
            let in_joint = segment.transformed(&f.joint_T_frame);
            carried[j] = Some(carried[j].map_or(in_joint, |b| b.merged(&in_joint)));
            cuff_frames[j].get_or_insert(id);
        }
        let upper_frame = crate::ARM_FRAMES[0];
        let upper_joint = robot
            .frame_id(upper_frame)
            .and_then(|id| robot.frames()[id.0].joint)
            .ok_or_else(|| model_error(format!("cuffs: no movable frame `{upper_frame}`")))?;
        let shoulder: Vec<usize> = (0..n).filter(|k| robot.is_ancestor(*k, upper_joint)).collect();
        if shoulder.len() > 3 {
            return Err(model_error(format!(
                "cuffs: {} joints between the base and the upper arm; the human shoulder is a 3-DoF ball joint",
                shoulder.len()
            )));
        }
        let centre = data.world_T_joint[upper_joint].translation.vector;
        for k in &shoulder {
            let joint = &robot.joints()[*k];
            if !joint.kind.is_rotational() || (data.world_T_joint[*k].translation.vector - centre).norm() > 1e-6 {
                return Err(model_error(format!(
                    "cuffs: shoulder joint `{}` is not a revolute joint through the shoulder centre; the human \
                     shoulder is a ball joint there",
                    joint.name
                )));
            }
        }
        for i in 0..n {
            if shoulder.contains(&i) {
                continue;
            }
            let joint = &robot.joints()[i];
            let carries_below = (0..n).any(|c| carried[c].is_some() && robot.is_ancestor(i, c));
            if !robot.is_ancestor(upper_joint, i) || !joint.kind.is_rotational() || !carries_below {
                return Err(model_error(format!(
                    "cuffs: joint `{}` is not a revolute joint of the arm distal to the upper arm with an arm segment \
                     beyond it",
                    joint.name
                )));
            }
        }
        // Explicit-coupling screen on the lightest cuffed segment.
        let (mut min_mass, mut min_inertia) = (f64::INFINITY, f64::INFINITY);
        for b in carried.iter().flatten() {
            min_mass = min_mass.min(b.mass);
            let eig = b.inertia_com.symmetric_eigenvalues();
            min_inertia = min_inertia.min(eig.min());
        }
        params.check_explicit_stability(dt, min_mass, min_inertia.max(1e-9))?;

        // Bodies and joints.
        let trunk = world.bodies.insert(RigidBodyBuilder::fixed().pose(Pose::IDENTITY));
        let mut human_body: Vec<Option<RigidBodyHandle>> = vec![None; n];
        let insert_body = |world: &mut PhysicsWorld, j: usize| {
            let rb = RigidBodyBuilder::dynamic()
                .pose(to_pose(&data.world_T_joint[j]))
                .additional_mass_properties(mass_properties(&carried[j].unwrap_or(RigidBody::ZERO)))
                .can_sleep(false);
            world.bodies.insert(rb)
        };
        let upper = insert_body(world, upper_joint);
        human_body[upper_joint] = Some(upper);
        let rest = data.world_T_joint[upper_joint];
        let upper_rest = to_pose(&rest).rotation;
        let centre_in_body = rest.inverse_transform_point(&centre.into()).coords;
        let ball = GenericJointBuilder::new(JointAxesMask::LOCKED_SPHERICAL_AXES)
            .local_frame1(Pose::from_translation(to_dvec(&centre)))
            .local_frame2(Pose::from_parts(to_dvec(&centre_in_body), upper_rest.inverse()))
            .contacts_enabled(false)
            .build();
        world
            .multibody_joints
            .insert(trunk, upper, ball, true)
            .ok_or_else(|| model_error("cuffs: rapier rejected the human shoulder ball joint".into()))?;
        let mut distal = Vec::new();
        for i in 0..n {
            if shoulder.contains(&i) {
                continue;
            }
            let joint = &robot.joints()[i];
            let parent = joint
                .parent
                .and_then(|p| human_body[p])
                .ok_or_else(|| model_error(format!("cuffs: joint `{}` has no human parent segment", joint.name)))?;
            let handle = insert_body(world, i);
            human_body[i] = Some(handle);
            world
                .multibody_joints
                .insert(parent, handle, revolute_joint(joint, false), true)
                .ok_or_else(|| model_error(format!("cuffs: rapier rejected the human joint `{}`", joint.name)))?;
            let axis = to_dvec(&joint.axis.into_inner());
            let parent_joint = joint.parent.unwrap_or(upper_joint);
            distal.push(DistalJoint { joint: i, parent_joint, body: handle, parent, axis, link_id: 0, assembly_id: 0 });
        }

        let multibody = world
            .multibody_joints
            .rigid_body_link(upper)
            .ok_or_else(|| model_error("cuffs: rapier built no human multibody".into()))?
            .multibody;
        let (upper_link_id, upper_assembly_id);
        {
            let mb = world
                .multibody_joints
                .get_multibody_mut(multibody)
                .ok_or_else(|| model_error("cuffs: human multibody missing".into()))?;
            mb.forward_kinematics(&world.bodies, true);
            let find = |h: RigidBodyHandle| -> Result<(usize, usize), SimError> {
                let link = mb
                    .links()
                    .find(|l| l.rigid_body_handle() == h)
                    .ok_or_else(|| model_error("cuffs: human body not in the multibody".into()))?;
                Ok((link.link_id(), link.assembly_id()))
            };
            (upper_link_id, upper_assembly_id) = find(upper)?;
            for d in &mut distal {
                (d.link_id, d.assembly_id) = find(d.body)?;
            }
            mb.damping_mut().fill(0.0);
        }

        let down = Vector3::new(0.0, 0.0, -1.0);
        let mut cuffs = Vec::new();
        for j in 0..n {
            let (Some(segment), Some(frame), Some(human)) = (carried[j], cuff_frames[j], human_body[j]) else {
                continue;
            };
            let axis = data.world_T_joint[j].rotation.inverse() * down;
            cuffs.push(Cuff {
                joint: j,
                frame,
                robot: robot_links[j],
                human,
                point: to_dvec(&segment.com),
                axis: to_dvec(&axis),
                force: DVec3::ZERO,
                moment: DVec3::ZERO,
                robot_point: DVec3::ZERO,
                human_point: DVec3::ZERO,
                energy: 0.0,
            });
        }
        let mut shoulder_array = [0; 3];
        shoulder_array[..shoulder.len()].copy_from_slice(&shoulder);
        let bodies = human_body.iter().flatten().copied().collect();
        let body_segments =
            (0..n).filter(|j| human_body[*j].is_some()).map(|j| (j, carried[j].unwrap_or(RigidBody::ZERO))).collect();
        let ndofs = world.multibody_joints.get_multibody(multibody).map_or(0, |mb| mb.ndofs());
        Ok(Self {
            params,
            multibody,
            shoulder: shoulder_array,
            shoulder_count: shoulder.len(),
            upper,
            upper_robot: robot_links[upper_joint],
            upper_link_id,
            upper_assembly_id,
            upper_rest,
            centre: to_dvec(&centre),
            twists: [(DVec3::ZERO, DVec3::ZERO); MAX_JOINTS],
            distal,
            bodies,
            body_segments,
            cuffs,
            jacobian: Matrix6xX::zeros(n),
            data,
            axes: Matrix3::zeros(),
            axes_inverse: Matrix3::identity(),
            q: JointArray::splat(n, 0.0),
            v: JointArray::splat(n, 0.0),
            interaction: JointArray::splat(n, 0.0),
            rng: SmallRng::seed_from_u64(params.seed),
            scratch: vec![0.0; ndofs],
            gravity: world.gravity,
        })
    }

    /// The human joint positions in the robot's joint coordinates [rad].
    pub(crate) fn position(&self) -> &JointArray<f64> {
        &self.q
    }

    /// The human joint velocities [rad/s].
    pub(crate) fn velocity(&self) -> &JointArray<f64> {
        &self.v
    }

    /// The last cuff-sensor interaction torque [Nm] (with sensor noise).
    pub(crate) fn interaction(&self) -> &JointArray<f64> {
        &self.interaction
    }

    /// Puts the arm exactly into the robot's pose and velocity (`q` [rad], `v` [rad/s]), cuffs undeflected, and
    /// refreshes the cuff state. Not real-time safe.
    pub(crate) fn sync_to_robot(&mut self, world: &mut PhysicsWorld, robot: &Model, q: &[f64], v: &[f64]) {
        self.update_kinematics(robot, q);
        let Some(mb) = world.multibody_joints.get_multibody_mut(self.multibody) else {
            return;
        };
        self.scratch.clear();
        self.scratch.resize(mb.ndofs(), 0.0);
        let upper_joint = self.shoulder[self.shoulder_count - 1];
        let wanted = to_pose(&self.data.world_T_joint[upper_joint]).rotation * self.upper_rest.inverse();
        let current = mb.link(self.upper_link_id).map_or(DQuat::IDENTITY, |l| l.joint().joint_rot());
        let phi = log(wanted * current.inverse());
        self.scratch[self.upper_assembly_id..self.upper_assembly_id + 3].copy_from_slice(&[phi.x, phi.y, phi.z]);
        for d in &self.distal {
            let now = mb.link(d.link_id).map_or(0.0, |l| l.joint().coords()[3]);
            self.scratch[d.assembly_id] = q[d.joint] - now;
        }
        mb.apply_displacements(&self.scratch);
        let mut omega = Vector3::zeros();
        for s in 0..self.shoulder_count {
            omega += self.axes.column(s) * v[self.shoulder[s]];
        }
        let mut vel = mb.generalized_velocity_mut();
        for (k, w) in omega.iter().enumerate() {
            vel[self.upper_assembly_id + k] = *w;
        }
        for d in &self.distal {
            vel[d.assembly_id] = v[d.joint];
        }
        mb.forward_kinematics(&world.bodies, false);
        mb.update_rigid_bodies(&mut world.bodies, true);
        self.after_step(world, robot, q, v);
    }

    /// Robot FK at `q`, the shoulder axes and their damped inverse. Real-time safe.
    fn update_kinematics(&mut self, robot: &Model, q: &[f64]) {
        plexo_kinematics::forward_kinematics(robot, &mut self.data, q);
        let mut axes = Matrix3::zeros();
        let mut gram = Matrix3::zeros();
        for s in 0..3 {
            if s < self.shoulder_count {
                let k = self.shoulder[s];
                let axis = self.data.world_T_joint[k].rotation * robot.joints()[k].axis.into_inner();
                axes.set_column(s, &axis);
            } else {
                gram[(s, s)] = 1.0;
            }
        }
        gram += axes.transpose() * axes;
        let sigma_min_sq = gram.symmetric_eigenvalues().min().max(0.0);
        let threshold_sq = SINGULAR_THRESHOLD * SINGULAR_THRESHOLD;
        if sigma_min_sq < threshold_sq {
            gram += Matrix3::identity() * ((1.0 - sigma_min_sq / threshold_sq) * MAX_DAMPING * MAX_DAMPING);
        }
        self.axes = axes;
        self.axes_inverse = gram.try_inverse().unwrap_or_else(Matrix3::zeros);
    }

    /// Applies this period's forces: the patient's joint torques `patient` [Nm] as human joint torques, and the
    /// cuff wrenches (from the end of the last period) on human bodies and robot links. The robot links' forces
    /// must have been reset before (the plant's torque application does). Real-time safe.
    pub(crate) fn apply(&mut self, world: &mut PhysicsWorld, patient: Option<&[f64]>) {
        for h in &self.bodies {
            if let Some(rb) = world.bodies.get_mut(*h) {
                rb.reset_forces(false);
                rb.reset_torques(false);
            }
        }
        if let Some(tau) = patient {
            let mut tau_shoulder = Vector3::zeros();
            for s in 0..self.shoulder_count {
                tau_shoulder[s] = tau[self.shoulder[s]];
            }
            let moment = self.axes * (self.axes_inverse * tau_shoulder);
            if let Some(rb) = world.bodies.get_mut(self.upper) {
                rb.add_torque(to_dvec(&moment), false);
            }
            for d in &self.distal {
                let Some(child) = world.bodies.get_mut(d.body) else { continue };
                let axis_world = child.position().rotation * d.axis;
                child.add_torque(axis_world * tau[d.joint], false);
                if let Some(parent) = world.bodies.get_mut(d.parent) {
                    parent.add_torque(-axis_world * tau[d.joint], false);
                }
            }
        }
        for c in &self.cuffs {
            if let Some(rb) = world.bodies.get_mut(c.robot) {
                rb.add_force_at_point(c.force, c.robot_point, false);
                rb.add_torque(c.moment, false);
            }
            if let Some(rb) = world.bodies.get_mut(c.human) {
                rb.add_force_at_point(-c.force, c.human_point, false);
                rb.add_torque(-c.moment, false);
            }
        }
    }

    /// After a step (robot at `q` [rad], `v` [rad/s]): reads the human state, computes the cuff wrenches and the
    /// cuff-sensor interaction torque. Returns `false` if the human state is not finite. Real-time safe.
    pub(crate) fn after_step(&mut self, world: &PhysicsWorld, robot: &Model, q: &[f64], v: &[f64]) -> bool {
        self.update_kinematics(robot, q);
        let Some(mb) = world.multibody_joints.get_multibody(self.multibody) else {
            return false;
        };
        // Human body velocities from the generalized velocities (rapier's body velocities are only refreshed
        // inside its step), proximal to distal.
        let vel = mb.generalized_velocity();
        let upper_joint = self.shoulder[self.shoulder_count - 1];
        let a = self.upper_assembly_id;
        let omega_upper = DVec3::new(vel[a], vel[a + 1], vel[a + 2]);
        let Some(upper) = world.bodies.get(self.upper) else {
            return false;
        };
        self.twists[upper_joint] = (omega_upper, omega_upper.cross(upper.translation() - self.centre));
        for d in &self.distal {
            let (Some(body), Some(parent)) = (world.bodies.get(d.body), world.bodies.get(d.parent)) else {
                return false;
            };
            let (w_parent, v_parent) = self.twists[d.parent_joint];
            let w = w_parent + (body.position().rotation * d.axis) * vel[d.assembly_id];
            let v_origin = v_parent + w_parent.cross(body.translation() - parent.translation());
            self.twists[d.joint] = (w, v_origin);
            if let Some(link) = mb.link(d.link_id) {
                self.q[d.joint] = link.joint().coords()[3];
            }
            self.v[d.joint] = vel[d.assembly_id];
        }
        // Human shoulder angles and velocities in robot coordinates (first order through the shoulder axes).
        if let Some(r) = world.bodies.get(self.upper_robot) {
            let phi = to_vec3(log(upper.position().rotation * r.position().rotation.inverse()));
            let dq = self.axes_inverse * (self.axes.transpose() * phi);
            let dv = self.axes_inverse * (self.axes.transpose() * to_vec3(omega_upper));
            for s in 0..self.shoulder_count {
                self.q[self.shoulder[s]] = q[self.shoulder[s]] + dq[s];
                self.v[self.shoulder[s]] = dv[s];
            }
        }
        // Cuff wrenches and the cuff sensors' joint-space reading.
        let p = self.params;
        self.interaction.iter_mut().for_each(|t| *t = 0.0);
        for c in &mut self.cuffs {
            let (Some(r), Some(h)) = (world.bodies.get(c.robot), world.bodies.get(c.human)) else { continue };
            let (rp, hp) = (r.position(), h.position());
            plexo_kinematics::frame_jacobian_from_data(
                robot,
                &mut self.data,
                c.frame,
                ReferenceFrame::World,
                &mut self.jacobian,
            );
            // Robot link twist at the world origin: J_world v.
            let mut twist = [0.0; 6];
            for (k, vk) in v.iter().enumerate() {
                for (t, j) in twist.iter_mut().zip(self.jacobian.column(k).iter()) {
                    *t += j * vk;
                }
            }
            let (v_robot_origin, w_robot) =
                (DVec3::new(twist[0], twist[1], twist[2]), DVec3::new(twist[3], twist[4], twist[5]));
            c.robot_point = rp.transform_point(c.point);
            c.human_point = hp.transform_point(c.point);
            let (w_human, v_human_origin) = self.twists[c.joint];
            let v_robot = v_robot_origin + w_robot.cross(c.robot_point);
            let v_human = v_human_origin + w_human.cross(c.human_point - hp.translation);
            let u = rp.rotation * c.axis;
            let d = c.human_point - c.robot_point;
            let phi = log(hp.rotation * rp.rotation.inverse());
            let (d_axial, phi_axial) = (u * d.dot(u), u * phi.dot(u));
            let (d_trans, phi_trans) = (d - d_axial, phi - phi_axial);
            c.force = d_axial * p.translational_stiffness_axial
                + d_trans * p.translational_stiffness_transverse
                + (v_human - v_robot) * p.translational_damping;
            c.moment = phi_axial * p.rotational_stiffness_axial
                + phi_trans * p.rotational_stiffness_transverse
                + (w_human - w_robot) * p.rotational_damping;
            c.energy = 0.5
                * (p.translational_stiffness_axial * d_axial.length_squared()
                    + p.translational_stiffness_transverse * d_trans.length_squared()
                    + p.rotational_stiffness_axial * phi_axial.length_squared()
                    + p.rotational_stiffness_transverse * phi_trans.length_squared());
            // The sensor measures the wrench with noise; the simulation applies it without.
            let mut force = to_vec3(c.force);
            let mut moment = to_vec3(c.moment);
            if p.force_noise > 0.0 || p.moment_noise > 0.0 {
                for k in 0..3 {
                    let nf: f64 = self.rng.sample(StandardNormal);
                    let nm: f64 = self.rng.sample(StandardNormal);
                    force[k] += p.force_noise * nf;
                    moment[k] += p.moment_noise * nm;
                }
            }
            let moment_at_origin = moment + to_vec3(c.robot_point).cross(&force);
            for (k, t) in self.interaction.iter_mut().enumerate() {
                let col = self.jacobian.column(k);
                *t += col[0] * force.x
                    + col[1] * force.y
                    + col[2] * force.z
                    + col[3] * moment_at_origin.x
                    + col[4] * moment_at_origin.y
                    + col[5] * moment_at_origin.z;
            }
        }
        self.q.all_finite() && self.v.all_finite() && self.interaction.all_finite()
    }

    /// Mechanical energy of the human arm [J]: kinetic + gravitational potential of its bodies + cuff springs.
    /// Not real-time safe (reads the whole multibody; test and diagnostics use).
    pub(crate) fn energy(&self, world: &PhysicsWorld) -> f64 {
        let mut energy = self.cuffs.iter().map(|c| c.energy).sum::<f64>();
        for ((j, segment), h) in self.body_segments.iter().zip(&self.bodies) {
            let Some(rb) = world.bodies.get(*h) else { continue };
            let (w, v_origin) = self.twists[*j];
            let com = rb.position().transform_point(to_dvec(&segment.com));
            let v_com = v_origin + w.cross(com - rb.translation());
            let w_body = to_vec3(rb.rotation().inverse() * w);
            energy += 0.5 * segment.mass * v_com.length_squared() + 0.5 * w_body.dot(&(segment.inertia_com * w_body))
                - segment.mass * self.gravity.dot(com);
        }
        energy
    }
}
