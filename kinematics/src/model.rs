//! The immutable robot [`Model`]: joints, bodies, frames, gravity and run-time payloads.

use nalgebra::{Isometry3, Matrix3, Quaternion, SymmetricEigen, Unit, UnitQuaternion, Vector3};

use crate::KinematicsError;

/// Kind of a movable 1-DOF joint.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum JointKind {
    /// Rotation about the axis, with position limits [rad].
    Revolute,
    /// Rotation about the axis without position limits.
    Continuous,
    /// Translation along the axis [m].
    Prismatic,
}

impl JointKind {
    /// True for revolute and continuous joints.
    pub fn is_rotational(self) -> bool {
        !matches!(self, JointKind::Prismatic)
    }
}

/// Limits of one joint, as given by the URDF `<limit>` element.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct JointLimits {
    /// Lower position limit [rad] or [m]; `-inf` for continuous joints.
    pub lower: f64,
    /// Upper position limit [rad] or [m]; `+inf` for continuous joints.
    pub upper: f64,
    /// Maximum speed [rad/s] or [m/s].
    pub velocity: f64,
    /// Maximum effort [Nm] or [N].
    pub effort: f64,
}

impl JointLimits {
    /// No limits at all (all bounds infinite).
    pub const UNLIMITED: JointLimits =
        JointLimits { lower: f64::NEG_INFINITY, upper: f64::INFINITY, velocity: f64::INFINITY, effort: f64::INFINITY };
}

/// Mass properties of a rigid body.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct RigidBody {
    /// Mass [kg].
    pub mass: f64,
    /// Centre of mass [m], in the body frame.
    pub com: Vector3<f64>,
    /// Rotational inertia about the centre of mass, body-frame axes [kg m²].
    pub inertia_com: Matrix3<f64>,
}

impl Default for RigidBody {
    fn default() -> Self {
        RigidBody::ZERO
    }
}

impl RigidBody {
    /// The massless body.
    pub const ZERO: RigidBody = RigidBody {
        mass: 0.0,
        com: Vector3::new(0.0, 0.0, 0.0),
        inertia_com: Matrix3::new(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    };

    /// A body of `mass` [kg] with centre of mass `com` [m] and inertia `inertia_com` about it [kg m²].
    pub fn new(mass: f64, com: Vector3<f64>, inertia_com: Matrix3<f64>) -> Self {
        RigidBody { mass, com, inertia_com }
    }

    /// A point mass `mass` [kg] at `com` [m].
    pub fn point_mass(mass: f64, com: Vector3<f64>) -> Self {
        RigidBody::new(mass, com, Matrix3::zeros())
    }

    /// A solid cylinder of `mass` [kg], `radius` [m] and `length` [m] whose axis is the body z axis, centred at
    /// `com` [m].
    pub fn solid_cylinder_z(mass: f64, radius: f64, length: f64, com: Vector3<f64>) -> Self {
        let transverse = mass * (3.0 * radius * radius + length * length) / 12.0;
        let axial = 0.5 * mass * radius * radius;
        RigidBody::new(mass, com, Matrix3::from_diagonal(&Vector3::new(transverse, transverse, axial)))
    }

    /// The same body expressed in another frame: `new_T_body` maps body coordinates into the new frame.
    pub fn transformed(&self, new_T_body: &Isometry3<f64>) -> RigidBody {
        let rot = new_T_body.rotation.to_rotation_matrix();
        RigidBody {
            mass: self.mass,
            com: new_T_body.transform_point(&nalgebra::Point3::from(self.com)).coords,
            inertia_com: rot.matrix() * self.inertia_com * rot.matrix().transpose(),
        }
    }

    /// Both bodies as one (masses add, inertia by the parallel-axis theorem). Both must be in the same frame.
    pub fn merged(&self, other: &RigidBody) -> RigidBody {
        let mass = self.mass + other.mass;
        if mass <= 0.0 {
            return RigidBody::ZERO;
        }
        let com = (self.com * self.mass + other.com * other.mass) / mass;
        let shifted = |b: &RigidBody| {
            let d = b.com - com;
            b.inertia_com + (Matrix3::identity() * d.norm_squared() - d * d.transpose()) * b.mass
        };
        RigidBody { mass, com, inertia_com: shifted(self) + shifted(other) }
    }

    /// Checks the body is physical. `what` names it in errors. With `require_positive_definite`, a massive body
    /// must have a positive-definite inertia (URDF links); otherwise positive semi-definite is enough (point masses).
    /// A body of exactly zero mass and zero inertia is accepted (a massless frame link).
    pub(crate) fn validate(&self, what: &str, require_positive_definite: bool) -> Result<(), KinematicsError> {
        check_finite(&format!("{what} mass"), &[self.mass])?;
        check_finite(&format!("{what} centre of mass"), self.com.as_slice())?;
        check_finite(&format!("{what} inertia"), self.inertia_com.as_slice())?;
        let scale = self.inertia_com.abs().max().max(f64::MIN_POSITIVE);
        if self.mass < 0.0 || (self.mass == 0.0 && self.inertia_com.abs().max() > 0.0) {
            return Err(KinematicsError::NonPositiveMass { body: what.to_string(), mass: self.mass });
        }
        if self.mass == 0.0 {
            return Ok(());
        }
        let asymmetry = (self.inertia_com - self.inertia_com.transpose()).abs().max();
        let eigen = SymmetricEigen::new((self.inertia_com + self.inertia_com.transpose()) * 0.5).eigenvalues;
        let moments = [eigen[0], eigen[1], eigen[2]];
        let tol = 1e-9 * scale;
        let min = moments.iter().copied().fold(f64::INFINITY, f64::min);
        let not_pd = if require_positive_definite { min <= 0.0 } else { min < -tol };
        if asymmetry > tol || not_pd {
            return Err(KinematicsError::InertiaNotPositiveDefinite { body: what.to_string(), moments });
        }
        for k in 0..3 {
            if moments[k] > moments[(k + 1) % 3] + moments[(k + 2) % 3] + tol {
                return Err(KinematicsError::InertiaTriangleInequality { body: what.to_string(), moments });
            }
        }
        Ok(())
    }
}

pub(crate) fn check_finite(what: &str, values: &[f64]) -> Result<(), KinematicsError> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(&value) => Err(KinematicsError::NonFinite { what: what.to_string(), value }),
        None => Ok(()),
    }
}

/// A movable 1-DOF joint and the rigid body it carries.
#[derive(Clone, PartialEq, Debug)]
pub struct Joint {
    /// Joint name (unique in the model).
    pub name: String,
    /// Revolute, continuous or prismatic.
    pub kind: JointKind,
    /// Index of the parent joint in [`Model::joints`]; `None` when the parent is the fixed base.
    pub parent: Option<usize>,
    /// Placement of the joint frame (at q = 0) in the parent joint's frame (or the base frame).
    pub parent_T_joint: Isometry3<f64>,
    /// Unit joint axis in the joint frame.
    pub axis: Unit<Vector3<f64>>,
    /// Position, velocity and effort limits.
    pub limits: JointLimits,
    /// Mass properties of everything rigidly attached to this joint (the child link, its fixed children and any
    /// attached payloads), in the joint frame.
    pub body: RigidBody,
    /// Armature [kg m²] (rotational joints) or [kg] (prismatic): inertia added to the joint-space mass matrix
    /// diagonal, e.g. the motor rotor's inertia reflected through the gear (`J_rotor · N²`), as Pinocchio's
    /// `Model::armature`. Zero by default.
    pub armature: f64,
}

impl Joint {
    /// A joint with no limits and a massless body; `axis` need not be normalised. Set the other fields with
    /// [`Joint::with_limits`] and [`Joint::with_body`]. Used with [`ModelBuilder`].
    pub fn new(
        name: impl Into<String>,
        kind: JointKind,
        parent: Option<usize>,
        parent_T_joint: Isometry3<f64>,
        axis: Vector3<f64>,
    ) -> Joint {
        Joint {
            name: name.into(),
            kind,
            parent,
            parent_T_joint,
            // Normalised and checked (zero, NaN) by `ModelBuilder::build`.
            axis: Unit::new_unchecked(axis),
            limits: JointLimits::UNLIMITED,
            body: RigidBody::ZERO,
            armature: 0.0,
        }
    }

    /// The same joint with these limits.
    pub fn with_limits(mut self, limits: JointLimits) -> Joint {
        self.limits = limits;
        self
    }

    /// The same joint carrying this body (in the joint frame).
    pub fn with_body(mut self, body: RigidBody) -> Joint {
        self.body = body;
        self
    }

    /// The same joint with this armature [kg m²] (or [kg] for a prismatic joint); see [`Joint::armature`].
    /// Checked (finite, ≥ 0) by [`ModelBuilder::build`].
    pub fn with_armature(mut self, armature: f64) -> Joint {
        self.armature = armature;
        self
    }
}

/// A named frame rigidly attached to a joint's body (or to the base).
#[derive(Clone, PartialEq, Debug)]
pub struct Frame {
    /// Frame name: the URDF link name, or the joint name for joint frames.
    pub name: String,
    /// The joint whose body carries the frame; `None` for frames on the fixed base.
    pub joint: Option<usize>,
    /// Placement of the frame in that joint's frame (or in the base frame).
    pub joint_T_frame: Isometry3<f64>,
}

/// Index of a frame in [`Model::frames`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct FrameId(pub usize);

/// Handle of an attached payload, returned by [`Model::attach_payload`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct PayloadId(u64);

#[derive(Clone, Debug)]
struct Payload {
    id: u64,
    joint: Option<usize>,
    /// The payload in the joint frame (or the base frame).
    body: RigidBody,
}

/// How a joint moves, specialised so the common cases cost least (as Pinocchio's RevoluteX/Y/Z vs
/// RevoluteUnaligned joint models).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum JointMotion {
    /// Rotation about the joint frame's coordinate axis `index` (0 = x, 1 = y, 2 = z), `sign` = ±1.
    RevoluteAligned { index: usize, sign: f64 },
    /// Rotation about any other axis.
    RevoluteGeneral,
    /// Translation along the axis.
    Prismatic,
}

/// A constant translation, classified so that rotating it costs least: URDF origins are often zero (coincident
/// joint axes) or along one axis (`xyz="0 0 -0.30"`), and rotating `d·eₖ` is `d` times column k of the rotation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Offset {
    Zero,
    Along { index: usize, length: f64 },
    General(Vector3<f64>),
}

impl Offset {
    pub(crate) fn new(v: &Vector3<f64>) -> Offset {
        let nonzero: Vec<usize> = (0..3).filter(|&k| v[k] != 0.0).collect();
        match nonzero.as_slice() {
            [] => Offset::Zero,
            [index] => Offset::Along { index: *index, length: v[*index] },
            _ => Offset::General(*v),
        }
    }
}

/// Where a frame's world placement comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum FrameSource {
    /// Fixed to the base: `joint_T_frame` is its world placement.
    Base,
    /// At the joint frame itself (identity offset).
    Joint(usize),
    /// Translated (not rotated) from the joint frame by the offset, in the joint's axes.
    JointTranslation(usize, Offset),
    /// At `joint_T_frame` in the joint's frame.
    JointOffset(usize),
}

/// Precomputed, structured per-joint data the algorithms read (kept in sync with [`Joint`]).
#[derive(Clone, Debug)]
pub(crate) struct JointCache {
    pub parent: Option<usize>,
    pub rotational: bool,
    pub motion: JointMotion,
    pub origin_rot: UnitQuaternion<f64>,
    /// `origin_rot ⊗ (0, axis)`: the joint rotation at angle q is `cos(q/2) origin_rot + sin(q/2) origin_axis`.
    pub origin_axis: Quaternion<f64>,
    /// `origin_rot` as a matrix, and whether it is exactly the identity (URDF `rpy="0 0 0"`).
    pub origin_matrix: Matrix3<f64>,
    pub origin_is_identity: bool,
    pub origin_trans: Vector3<f64>,
    /// `origin_trans` classified (zero for coincident joint origins, e.g. a shoulder's three axes).
    pub origin_offset: Offset,
    pub axis: Vector3<f64>,
    /// The joint axis in the parent joint's frame: `origin_rot · axis` (a joint turns about it, so the world axis
    /// is the parent's rotation of it).
    pub axis_parent: Vector3<f64>,
    /// `origin_matrix · Rot(axis, q) = rot_fixed + cos q · rot_cos + sin q · rot_sin` (Rodrigues' formula with
    /// k = axis: `R₀ k kᵀ`, `R₀ (I − k kᵀ)`, `R₀ [k]×`), used by [`JointMotion::RevoluteGeneral`] joints.
    pub rot_fixed: Matrix3<f64>,
    pub rot_cos: Matrix3<f64>,
    pub rot_sin: Matrix3<f64>,
    /// Body mass [kg], CoM [m] and inertia about the CoM [kg m²] in the joint frame (payloads included).
    pub mass: f64,
    pub com: Vector3<f64>,
    pub inertia_com: Matrix3<f64>,
    /// Armature [kg m²] or [kg], added to the mass matrix diagonal.
    pub armature: f64,
}

impl JointCache {
    fn new(joint: &Joint) -> JointCache {
        let axis = joint.axis.into_inner();
        let origin_rot = joint.parent_T_joint.rotation;
        let origin_matrix = *origin_rot.to_rotation_matrix().matrix();
        let motion = match joint.kind {
            JointKind::Prismatic => JointMotion::Prismatic,
            _ => match (0..3).find(|&k| axis[(k + 1) % 3] == 0.0 && axis[(k + 2) % 3] == 0.0) {
                Some(index) => JointMotion::RevoluteAligned { index, sign: axis[index].signum() },
                None => JointMotion::RevoluteGeneral,
            },
        };
        let kkt = axis * axis.transpose();
        JointCache {
            axis_parent: origin_rot * axis,
            parent: joint.parent,
            rotational: joint.kind.is_rotational(),
            motion,
            origin_rot,
            origin_axis: origin_rot.into_inner() * Quaternion::from_imag(axis),
            origin_matrix,
            origin_is_identity: origin_rot.coords == UnitQuaternion::identity().coords,
            origin_trans: joint.parent_T_joint.translation.vector,
            origin_offset: Offset::new(&joint.parent_T_joint.translation.vector),
            axis,
            rot_fixed: origin_matrix * kkt,
            rot_cos: origin_matrix * (Matrix3::identity() - kkt),
            rot_sin: origin_matrix * axis.cross_matrix(),
            mass: joint.body.mass,
            com: joint.body.com,
            inertia_com: joint.body.inertia_com,
            armature: joint.armature,
        }
    }
}

/// Standard gravity on Earth [m/s²], pointing down (−z in the world frame).
pub const STANDARD_GRAVITY: Vector3<f64> = Vector3::new(0.0, 0.0, -9.81);

/// The kinematic and dynamic model of a robot: a tree of 1-DOF joints fixed to a base, with named frames.
///
/// Immutable during control: algorithms take `&Model`. Payloads and gravity change only between control runs
/// (`&mut Model`). Build from URDF with [`Model::from_urdf_file`] / [`Model::from_urdf_str`], or in code with
/// [`crate::ModelBuilder`].
#[derive(Clone, Debug)]
pub struct Model {
    name: String,
    joints: Vec<Joint>,
    frames: Vec<Frame>,
    gravity: Vector3<f64>,
    /// Mass fixed to the base (does not move; counted in [`Model::total_mass`]).
    base_body: RigidBody,
    /// The bodies as built, without payloads.
    built_bodies: Vec<RigidBody>,
    built_base_body: RigidBody,
    payloads: Vec<Payload>,
    next_payload_id: u64,
    /// Per joint armature [kg m²] or [kg] (copy of `Joint::armature`, for [`Model::armature`]).
    armature: Vec<f64>,
    pub(crate) cache: Vec<JointCache>,
    /// Per frame, how forward kinematics places it (compact, so the loop does not touch the frame names).
    pub(crate) frame_source: Vec<FrameSource>,
    /// Per frame, the rotation of `joint_T_frame` as a matrix.
    pub(crate) frame_rot: Vec<Matrix3<f64>>,
    /// Per joint, its ancestors (itself first) as a flat list: `ancestors[ancestor_range[i]]`.
    pub(crate) ancestors: Vec<usize>,
    pub(crate) ancestor_range: Vec<(usize, usize)>,
}

impl Model {
    /// The model of validated parts (see [`crate::ModelBuilder::build`]): derives the per-joint caches and the
    /// per-frame placement data. Not real-time safe.
    pub(crate) fn assemble(
        name: String,
        joints: Vec<Joint>,
        frames: Vec<Frame>,
        gravity: Vector3<f64>,
        base_body: RigidBody,
        ancestors: Vec<usize>,
        ancestor_range: Vec<(usize, usize)>,
    ) -> Model {
        Model {
            name,
            frame_source: frames
                .iter()
                .map(|f| match f.joint {
                    None => FrameSource::Base,
                    Some(j) if f.joint_T_frame == Isometry3::identity() => FrameSource::Joint(j),
                    Some(j) if f.joint_T_frame.rotation == UnitQuaternion::identity() => {
                        FrameSource::JointTranslation(j, Offset::new(&f.joint_T_frame.translation.vector))
                    }
                    Some(j) => FrameSource::JointOffset(j),
                })
                .collect(),
            frame_rot: frames.iter().map(|f| *f.joint_T_frame.rotation.to_rotation_matrix().matrix()).collect(),
            cache: joints.iter().map(JointCache::new).collect(),
            built_bodies: joints.iter().map(|j| j.body).collect(),
            armature: joints.iter().map(|j| j.armature).collect(),
            joints,
            frames,
            gravity,
            base_body,
            built_base_body: base_body,
            payloads: Vec::new(),
            next_payload_id: 0,
            ancestors,
            ancestor_range,
        }
    }

    /// Sets joint `i`'s armature [kg m²] or [kg] (checked by the caller). Not real-time safe.
    pub(crate) fn set_armature(&mut self, i: usize, value: f64) {
        self.joints[i].armature = value;
        self.cache[i].armature = value;
        self.armature[i] = value;
    }

    /// Model (robot) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of degrees of freedom (movable 1-DOF joints); the configuration has the same size.
    pub fn nv(&self) -> usize {
        self.joints.len()
    }

    /// Movable joints, parents before children.
    pub fn joints(&self) -> &[Joint] {
        &self.joints
    }

    /// Index of the movable joint called `name`.
    pub fn joint_index(&self, name: &str) -> Option<usize> {
        self.joints.iter().position(|j| j.name == name)
    }

    /// All named frames: one per URDF link, plus one per joint whose name is not already a link name.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The frame called `name`.
    pub fn frame_id(&self, name: &str) -> Option<FrameId> {
        self.frames.iter().position(|f| f.name == name).map(FrameId)
    }

    /// Gravity acceleration in the world frame [m/s²]; default (0, 0, −9.81).
    pub fn gravity(&self) -> Vector3<f64> {
        self.gravity
    }

    /// Sets gravity [m/s²] (world frame), e.g. zero to study a gravity-free plant.
    pub fn set_gravity(&mut self, g: Vector3<f64>) {
        self.gravity = g;
    }

    /// Total mass [kg] of every body, base and payloads included.
    pub fn total_mass(&self) -> f64 {
        self.base_body.mass + self.joints.iter().map(|j| j.body.mass).sum::<f64>()
    }

    /// Mass properties fixed to the base (including payloads attached to base frames), in the base frame.
    pub fn base_body(&self) -> &RigidBody {
        &self.base_body
    }

    /// Armature of every joint [kg m²] ([kg] for prismatic joints), in joint order: the inertia the algorithms
    /// add to the mass-matrix diagonal ([`crate::crba`]), to the joint torque ([`crate::rnea`]: `armatureᵢ·q̈ᵢ`),
    /// to the articulated inertia about the axis ([`crate::aba`]) and to the kinetic energy
    /// ([`crate::kinetic_energy`]: `½ armatureᵢ q̇ᵢ²`). Zeros unless set by [`Joint::with_armature`] or
    /// [`Model::with_armature`].
    pub fn armature(&self) -> &[f64] {
        &self.armature
    }

    /// True if joint `ancestor` is `joint` or lies on its path to the base.
    pub fn is_ancestor(&self, ancestor: usize, joint: usize) -> bool {
        let (start, end) = self.ancestor_range[joint];
        self.ancestors[start..end].contains(&ancestor)
    }

    /// Attaches `body` (mass [kg] > 0, CoM [m] and inertia [kg m²] expressed in the named frame) to the body
    /// carrying frame `frame`, e.g. a patient's forearm segment on `forearm_link`. Returns a handle for
    /// [`Model::detach_payload`]. Not real-time safe (call between control runs).
    pub fn attach_payload(&mut self, frame: &str, body: &RigidBody) -> Result<PayloadId, KinematicsError> {
        let frame_index =
            self.frame_id(frame).ok_or_else(|| KinematicsError::UnknownFrame { name: frame.to_string() })?;
        let what = format!("payload on frame '{frame}'");
        body.validate(&what, false)?;
        if body.mass <= 0.0 {
            return Err(KinematicsError::NonPositiveMass { body: what, mass: body.mass });
        }
        let f = &self.frames[frame_index.0];
        let id = self.next_payload_id;
        self.next_payload_id += 1;
        self.payloads.push(Payload { id, joint: f.joint, body: body.transformed(&f.joint_T_frame) });
        self.refresh_body(f.joint);
        Ok(PayloadId(id))
    }

    /// Removes a payload; the body's mass properties return exactly to what they were without it.
    pub fn detach_payload(&mut self, id: PayloadId) -> Result<(), KinematicsError> {
        let index =
            self.payloads.iter().position(|p| p.id == id.0).ok_or(KinematicsError::UnknownPayload { id: id.0 })?;
        let payload = self.payloads.remove(index);
        self.refresh_body(payload.joint);
        Ok(())
    }

    /// Recomputes a body from its built mass properties plus its payloads (no subtraction, so no drift).
    fn refresh_body(&mut self, joint: Option<usize>) {
        let built = match joint {
            Some(j) => self.built_bodies[j],
            None => self.built_base_body,
        };
        let body = self.payloads.iter().filter(|p| p.joint == joint).fold(built, |acc, p| acc.merged(&p.body));
        match joint {
            Some(j) => {
                self.joints[j].body = body;
                self.cache[j] = JointCache::new(&self.joints[j]);
            }
            None => self.base_body = body,
        }
    }
}
