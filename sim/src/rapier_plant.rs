//! [`RapierPlant`]: the robot as a rapier3d-f64 multibody built from a [`plexo_kinematics::Model`].
//!
//! Construction (no second URDF parser): every model joint becomes a reduced-coordinate revolute multibody
//! joint whose child body frame is the joint frame of the model, so rapier's joint coordinate *is* the model's
//! `q`. Inertias come from `Joint::body` (arm payloads merged in when the patient is attached rigidly); joint
//! limits are rapier limit constraints; reflected rotor inertia is rapier's per-DoF `armature`; rapier's
//! default per-DoF damping (0.1) is removed — friction lives in the shared [`crate::MotorBank`].
//! Joint torques are applied as equal and opposite body torques about the joint axis on child and parent.
//! With [`RapierOptions::cuffs`] the multibody is the bare robot and the patient's arm is a second multibody
//! strapped to it by spring–damper cuffs ([`crate::cuff`]).
//!
//! Integration parameters: `dt` = control period, one solver iteration and no stabilisation iterations when
//! there are no contacts (nothing for them to do: the multibody joints are exact in reduced coordinates and
//! limits are single rows); with colliders rapier's defaults are kept (see `sim/BENCHMARKS.md` for timings).

use glamx::DVec3;
use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, Lifecycle, Robot};
use plexo_kinematics::{Data, Model};
use rapier3d_f64::glamx;
use rapier3d_f64::prelude::*;

use crate::articulated::check_state;
use crate::core::{Models, PatientCoupling, PlantConfig, PlantCore, initial_position};
use crate::cuff::{CuffParams, HumanArm};
use crate::patient::Patient;
use crate::rapier_convert::{mass_properties, revolute_joint, to_dvec, to_pose};
use crate::{ARM_FRAMES, SimError, SimulatedPlant};

/// A fixed table top the arm can rest on or hit (world frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableParams {
    /// Centre of the table top's box [m] (world).
    pub center: [f64; 3],
    /// Half extents of the box [m].
    pub half_extents: [f64; 3],
}

impl Default for TableParams {
    /// A 1.2 m × 0.8 m × 4 cm table whose top is 0.25 m below the shoulder, 0.45 m in front of it.
    fn default() -> Self {
        Self { center: [0.45, 0.0, -0.27], half_extents: [0.4, 0.6, 0.02] }
    }
}

/// Rapier-specific options of [`RapierPlant`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RapierOptions {
    /// Capsule colliders on the upper-arm and forearm links (massless; inertia comes from the model).
    pub arm_colliders: bool,
    /// A table collider (needs `arm_colliders` to be hit).
    pub table: Option<TableParams>,
    /// Solver iterations when contacts are possible (without contacts 1 is used).
    pub contact_solver_iterations: usize,
    /// `None` (default): the patient's arm segments are attached rigidly to the links (as in
    /// [`crate::ArticulatedPlant`]) and `JointState::interaction_torque` is `None`. `Some`: the arm is its own
    /// set of rapier bodies strapped to the links by compliant spring–damper cuffs; the patient's torques act
    /// between the human segments, and the cuff sensors report `JointState::interaction_torque` (model, torque
    /// mapping and citations: [`CuffParams`]). Needs `config.patient`.
    pub cuffs: Option<CuffParams>,
}

impl Default for RapierOptions {
    fn default() -> Self {
        Self { arm_colliders: false, table: None, contact_solver_iterations: 4, cuffs: None }
    }
}

/// The rapier plant; implements [`Robot`] and [`SimulatedPlant`].
pub struct RapierPlant {
    world: PhysicsWorld,
    model: Model,
    energy_data: Data,
    core: PlantCore,
    /// Rigid body of each joint's child link.
    links: Vec<RigidBodyHandle>,
    /// Parent body of each joint (`None` = the fixed base).
    parents: Vec<Option<RigidBodyHandle>>,
    /// Joint axis in the child body frame.
    axes: Vec<DVec3>,
    multibody: MultibodyIndex,
    link_ids: Vec<usize>,
    assembly_ids: Vec<usize>,
    armature: JointArray<f64>,
    q: JointArray<f64>,
    v: JointArray<f64>,
    /// Scratch for displacements when the state is set (allocated once).
    scratch: Vec<f64>,
    /// The patient's arm on compliant cuffs (`RapierOptions::cuffs`).
    human: Option<HumanArm>,
}

impl core::fmt::Debug for RapierPlant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RapierPlant").field("model", &self.model.name()).field("q", &self.q).finish_non_exhaustive()
    }
}

impl RapierPlant {
    /// Builds the multibody from the robot model (the patient's arm attached rigidly when `config.patient` is
    /// set, or strapped on cuffs with `options.cuffs`). Errors name the model and the joint at fault, or the
    /// `cuffs.*` key. Not real-time safe.
    pub fn new(model: &Model, config: PlantConfig, options: RapierOptions) -> Result<Self, SimError> {
        if let Some(cuffs) = &options.cuffs {
            cuffs.validate()?;
            if config.patient.is_none() {
                return Err(SimError::Model {
                    model: model.name().to_owned(),
                    reason: "RapierOptions::cuffs needs a patient (PlantConfig::patient) to strap in".into(),
                });
            }
        }
        let models = Models::new(model, &config, true)?;
        let core = PlantCore::new(&models, &config)?;
        // With cuffs the multibody is the bare robot; the patient's internal model keeps the loaded one.
        let loaded = if options.cuffs.is_some() { models.robot } else { models.loaded };
        let n = loaded.nv();
        let mut world = PhysicsWorld::new();
        world.gravity = to_dvec(&loaded.gravity());
        let contacts = options.arm_colliders && options.table.is_some();
        world.integration_parameters.dt = config.period.as_secs_f64();
        if contacts {
            world.integration_parameters.num_solver_iterations = options.contact_solver_iterations.max(1);
        } else {
            world.integration_parameters.num_solver_iterations = 1;
            world.integration_parameters.num_internal_stabilization_iterations = 0;
        }

        let mut data = Data::new(&loaded);
        plexo_kinematics::forward_kinematics(&loaded, &mut data, &vec![0.0; n]);
        let base = world.bodies.insert(RigidBodyBuilder::fixed().pose(Pose::IDENTITY));
        let mut links = Vec::with_capacity(n);
        let mut parents = Vec::with_capacity(n);
        let mut axes = Vec::with_capacity(n);
        for (i, joint) in loaded.joints().iter().enumerate() {
            if !joint.kind.is_rotational() {
                return Err(SimError::Model {
                    model: loaded.name().to_owned(),
                    reason: format!("joint `{}` is prismatic; RapierPlant supports revolute joints", joint.name),
                });
            }
            let rb = RigidBodyBuilder::dynamic()
                .pose(to_pose(&data.world_T_joint[i]))
                .additional_mass_properties(mass_properties(&joint.body))
                .can_sleep(false);
            let handle = world.bodies.insert(rb);
            let parent = joint.parent.map(|p| links[p]);
            let axis = to_dvec(&joint.axis.into_inner());
            world
                .multibody_joints
                .insert(parent.unwrap_or(base), handle, revolute_joint(joint, true), true)
                .ok_or_else(|| SimError::Model {
                    model: loaded.name().to_owned(),
                    reason: format!("rapier rejected multibody joint `{}`", joint.name),
                })?;
            links.push(handle);
            parents.push(parent);
            axes.push(axis);
        }

        if options.arm_colliders {
            add_arm_colliders(&mut world, &loaded, &data, &links)?;
        }
        if let Some(table) = options.table {
            let [x, y, z] = table.center;
            let [hx, hy, hz] = table.half_extents;
            let t = world.bodies.insert(RigidBodyBuilder::fixed().pose(Pose::from_translation(DVec3::new(x, y, z))));
            let (colliders, bodies) = (&mut world.colliders, &mut world.bodies);
            colliders.insert_with_parent(ColliderBuilder::cuboid(hx, hy, hz), t, bodies);
        }

        let link_id = *world.multibody_joints.rigid_body_link(links[0]).ok_or_else(|| SimError::Model {
            model: loaded.name().to_owned(),
            reason: "rapier built no multibody".into(),
        })?;
        let multibody = link_id.multibody;
        let armature = core.motors.armature();
        let mut link_ids = Vec::with_capacity(n);
        let mut assembly_ids = Vec::with_capacity(n);
        {
            let mb = world.multibody_joints.get_multibody_mut(multibody).ok_or_else(|| SimError::Model {
                model: loaded.name().to_owned(),
                reason: "rapier multibody missing".into(),
            })?;
            // The root starts as a free joint inside rapier; FK settles it to the fixed base (0 DoFs) so the
            // assembly ids read below are final.
            mb.forward_kinematics(&world.bodies, true);
            for (handle, joint) in links.iter().zip(loaded.joints()) {
                let id =
                    mb.links().find(|l| l.rigid_body_handle() == *handle).map(|l| l.link_id()).ok_or_else(|| {
                        SimError::Model {
                            model: loaded.name().to_owned(),
                            reason: format!("joint `{}` is not in the rapier multibody", joint.name),
                        }
                    })?;
                link_ids.push(id);
            }
            for id in &link_ids {
                let link = mb.link(*id).ok_or_else(|| SimError::Model {
                    model: loaded.name().to_owned(),
                    reason: format!("rapier multibody has no link {id}"),
                })?;
                assembly_ids.push(link.assembly_id());
            }
            mb.damping_mut().fill(0.0);
            for (i, a) in assembly_ids.iter().enumerate() {
                mb.armature_mut()[*a] = armature[i];
            }
        }
        let human = match (options.cuffs, &config.patient) {
            (Some(params), Some(profile)) => {
                Some(HumanArm::new(&mut world, &loaded, profile.spec(), &links, params, config.period.as_secs_f64())?)
            }
            _ => None,
        };
        let q0 = initial_position(model, &config)?;
        let mut plant = Self {
            energy_data: Data::new(&loaded),
            model: loaded,
            world,
            core,
            links,
            parents,
            axes,
            multibody,
            link_ids,
            assembly_ids,
            armature,
            q: JointArray::splat(n, 0.0),
            v: JointArray::splat(n, 0.0),
            scratch: vec![0.0; n],
            human,
        };
        plant.set_state(&q0, &vec![0.0; n])?;
        Ok(plant)
    }

    /// The rapier world (bodies, colliders, integration parameters), for inspection and visualisation.
    pub fn world(&self) -> &PhysicsWorld {
        &self.world
    }

    /// With cuffs ([`RapierOptions::cuffs`]): the human arm's own joint positions in the robot's joint
    /// coordinates [rad] (they differ from the robot's by the cuff deflection), as the patient model sees them.
    /// `None` in rigid mode. Simulation only.
    pub fn human_position(&self) -> Option<&[f64]> {
        self.human.as_ref().map(|h| &h.position()[..])
    }

    /// With cuffs: the human arm's joint velocities [rad/s]; `None` in rigid mode. Simulation only.
    pub fn human_velocity(&self) -> Option<&[f64]> {
        self.human.as_ref().map(|h| &h.velocity()[..])
    }

    /// Rigid-body handle of each joint's child link, in joint order.
    pub fn link_bodies(&self) -> &[RigidBodyHandle] {
        &self.links
    }

    fn pull_state(&mut self) {
        let Some(mb) = self.world.multibody_joints.get_multibody(self.multibody) else {
            return;
        };
        let vel = mb.generalized_velocity();
        for i in 0..self.q.len() {
            if let Some(link) = mb.link(self.link_ids[i]) {
                self.q[i] = link.joint().coords()[3];
            }
            self.v[i] = vel[self.assembly_ids[i]];
        }
    }

    fn apply_torques(&mut self, tau: &[f64]) {
        for h in &self.links {
            if let Some(rb) = self.world.bodies.get_mut(*h) {
                rb.reset_forces(false);
                rb.reset_torques(false);
            }
        }
        for i in 0..self.links.len() {
            let Some(child) = self.world.bodies.get_mut(self.links[i]) else { continue };
            let axis_world = child.position().rotation * self.axes[i];
            child.add_torque(axis_world * tau[i], false);
            if let Some(p) = self.parents[i]
                && let Some(parent) = self.world.bodies.get_mut(p)
            {
                parent.add_torque(-axis_world * tau[i], false);
            }
        }
    }
}

fn add_arm_colliders(
    world: &mut PhysicsWorld,
    model: &Model,
    data: &Data,
    links: &[RigidBodyHandle],
) -> Result<(), SimError> {
    // Upper arm: frame origin → elbow joint; forearm: frame origin → handle. Radii of an adult arm with cuff.
    let spans = [(ARM_FRAMES[0], "elbow_flexion", 0.05), (ARM_FRAMES[1], "handle", 0.045)];
    for (frame, distal, radius) in spans {
        let missing = |name: &str| SimError::Model {
            model: model.name().to_owned(),
            reason: format!("no frame `{name}` for the arm colliders"),
        };
        let f = model.frame_id(frame).ok_or_else(|| missing(frame))?;
        let d = model.frame_id(distal).ok_or_else(|| missing(distal))?;
        let Some(joint) = model.frames()[f.0].joint else { continue };
        let world_t_joint = data.world_T_joint[joint];
        let a = world_t_joint.inverse() * data.world_T_frame[f.0].translation.vector;
        let b = world_t_joint.inverse_transform_point(&data.world_T_frame[d.0].translation.vector.into());
        let collider = ColliderBuilder::capsule_from_endpoints(to_dvec(&a), to_dvec(&b.coords), radius).density(0.0);
        let (colliders, bodies) = (&mut world.colliders, &mut world.bodies);
        colliders.insert_with_parent(collider, links[joint], bodies);
    }
    Ok(())
}

impl SimulatedPlant for RapierPlant {
    fn model(&self) -> &Model {
        &self.model
    }
    fn time(&self) -> f64 {
        self.core.time()
    }
    fn position(&self) -> &[f64] {
        &self.q
    }
    fn velocity(&self) -> &[f64] {
        &self.v
    }
    fn set_state(&mut self, q: &[f64], v: &[f64]) -> Result<(), SimError> {
        check_state(self.core.dof, q, v)?;
        let Some(mb) = self.world.multibody_joints.get_multibody_mut(self.multibody) else {
            return Err(SimError::Model { model: self.model.name().to_owned(), reason: "multibody missing".into() });
        };
        self.scratch.clear();
        self.scratch.resize(mb.ndofs(), 0.0);
        for i in 0..q.len() {
            let current = mb.link(self.link_ids[i]).map(|l| l.joint().coords()[3]).unwrap_or(0.0);
            self.scratch[self.assembly_ids[i]] = q[i] - current;
        }
        mb.apply_displacements(&self.scratch);
        let mut vel = mb.generalized_velocity_mut();
        for i in 0..v.len() {
            vel[self.assembly_ids[i]] = v[i];
        }
        mb.forward_kinematics(&self.world.bodies, false);
        mb.update_rigid_bodies(&mut self.world.bodies, true);
        self.pull_state();
        let (q, v) = (self.q, self.v);
        if let Some(human) = self.human.as_mut() {
            human.sync_to_robot(&mut self.world, &self.model, &q, &v);
            self.core.interaction = Some(*human.interaction());
        }
        self.core.state_was_set(&q, &v);
        Ok(())
    }
    fn applied_torque(&self) -> &[f64] {
        &self.core.applied
    }
    fn motor_torque(&self) -> &[f64] {
        self.core.motors.output()
    }
    fn armature(&self) -> &[f64] {
        &self.armature
    }
    /// With cuffs: robot + human bodies + cuff springs.
    fn energy(&mut self) -> f64 {
        let rotor: f64 = (0..self.q.len()).map(|i| 0.5 * self.armature[i] * self.v[i] * self.v[i]).sum();
        let human = self.human.as_ref().map_or(0.0, |h| h.energy(&self.world));
        plexo_kinematics::kinetic_energy(&self.model, &mut self.energy_data, &self.q, &self.v)
            + plexo_kinematics::potential_energy(&self.model, &mut self.energy_data, &self.q)
            + rotor
            + human
    }
    fn patient(&self) -> Option<&Patient> {
        self.core.patient.as_ref()
    }
    fn patient_mut(&mut self) -> Option<&mut Patient> {
        self.core.patient.as_mut()
    }
}

impl Robot for RapierPlant {
    type Error = SimError;

    fn dof(&self) -> usize {
        self.core.dof
    }
    fn joints(&self) -> &[JointInfo] {
        &self.core.joints
    }
    fn lifecycle(&self) -> Lifecycle {
        self.core.lifecycle
    }
    /// Copies the latest sensor sample. Real-time safe.
    fn read(&mut self, state: &mut JointState) -> Result<(), SimError> {
        self.core.read(state)
    }
    /// Applies `command` for one period and steps rapier once. Real-time safe in the sense of bounded time, but
    /// rapier 0.36's step allocates internally (8 small buffers per step, 17 above 1 rad/s; none of them can be
    /// reused through rapier's API): two `LU::new(view.into_owned())` per multibody in
    /// `Multibody::update_mass_matrix` (a matrix copy and a permutation each, multibody.rs:1074–1083), the solver's
    /// `generic_solver_vels(_increment) = DVector::zeros(n)` (staged_island_solver/helpers.rs:101–102),
    /// `StageSync::new`'s cursor `Vec` (init.rs:618), and the modified-bodies `Vec` that `PhysicsPipeline::step`
    /// takes with `mem::take` (substep.rs:368) and our torque application (`RigidBodySet::get_mut`) regrows;
    /// above `1e-3/dt` joint speed `Multibody::update_acceleration`'s divergence guard clones 9 more vectors
    /// (multibody.rs:542–705). Everything else in `write` is shared with [`crate::ArticulatedPlant`] and
    /// allocation-free (`tests/alloc.rs`).
    fn write(&mut self, command: &JointCommand) -> Result<(), SimError> {
        if self.core.lifecycle == Lifecycle::Fault {
            return Err(SimError::Faulted);
        }
        let checked = self.core.commanded_torque(command);
        let (q, v) = (self.q, self.v);
        let tau = match &self.human {
            Some(human) => {
                let (q_human, v_human) = (*human.position(), *human.velocity());
                let coupling = PatientCoupling::Cuffed { q: &q_human, v: &v_human };
                self.core.generalized_torque(checked.as_ref().ok(), &q, &v, coupling)
            }
            None => self.core.generalized_torque(checked.as_ref().ok(), &q, &v, PatientCoupling::Rigid),
        };
        self.apply_torques(&tau);
        if let Some(human) = self.human.as_mut() {
            let patient = self.core.patient.as_ref().map(|p| p.torques().total);
            human.apply(&mut self.world, patient.as_ref().map(|t| &t[..]));
        }
        self.world.step();
        self.pull_state();
        if !(self.q.all_finite() && self.v.all_finite()) {
            let joint = (0..self.q.len()).find(|i| !self.q[*i].is_finite() || !self.v[*i].is_finite()).unwrap_or(0);
            let (quantity, value) = if self.q[joint].is_finite() {
                ("velocity [rad/s]", self.v[joint])
            } else {
                ("position [rad]", self.q[joint])
            };
            self.core.fault();
            return Err(SimError::Diverged { joint, quantity, value });
        }
        let (q, v) = (self.q, self.v);
        if let Some(human) = self.human.as_mut() {
            if !human.after_step(&self.world, &self.model, &q, &v) {
                let joint = (0..q.len()).find(|i| !human.position()[*i].is_finite()).unwrap_or(0);
                self.core.fault();
                return Err(SimError::Diverged {
                    joint,
                    quantity: "human arm state on the cuffs",
                    value: human.position()[joint],
                });
            }
            self.core.interaction = Some(*human.interaction());
        }
        self.core.finish_step(&q, &v);
        checked.map(|_| ())
    }
    fn enable(&mut self) -> Result<(), SimError> {
        self.core.enable()
    }
    fn disable(&mut self) -> Result<(), SimError> {
        self.core.disable()
    }
    fn estop(&mut self) -> Result<(), SimError> {
        self.core.estop();
        Ok(())
    }
    fn reset(&mut self) -> Result<(), SimError> {
        self.core.reset()
    }
}
