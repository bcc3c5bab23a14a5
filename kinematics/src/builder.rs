//! [`ModelBuilder`]: a [`Model`] built in code, validated (finite numbers, limits, physical bodies, a regular
//! mass matrix at q = 0); and [`Model::with_armature`], which re-validates.

use nalgebra::{Isometry3, Unit, UnitQuaternion, Vector3};

use crate::KinematicsError;
use crate::algorithms::singular_joint_at_zero;
use crate::model::{Frame, Joint, JointKind, Model, RigidBody, STANDARD_GRAVITY, check_finite};

impl Model {
    /// A copy of this model with the joint armatures replaced by `armature` [kg m²] ([kg] for prismatic joints),
    /// one per joint in [`Model::joints`] order, e.g. the rotor inertias reflected through the gears
    /// (`J_rotor · N²`). Everything else (payloads, gravity, frames) is kept. Each value must be finite and ≥ 0;
    /// errors name the joint. Not real-time safe (allocates the copy).
    ///
    /// ```
    /// use plexo_kinematics::{Data, Model, crba, default_robot_urdf};
    ///
    /// let model = Model::from_urdf_str(default_robot_urdf("plexo-arm4").unwrap())?;
    /// // Rotor inertia 1e-5 kg m² behind a 9:1 gear on every joint.
    /// let with_rotors = model.with_armature(&[1e-5 * 81.0; 4])?;
    /// let q = [0.2, 0.4, 0.1, 1.0];
    /// let m = crba(&model, &mut Data::new(&model), &q).clone();
    /// let m_rotors = crba(&with_rotors, &mut Data::new(&with_rotors), &q).clone();
    /// assert!((m_rotors[(3, 3)] - m[(3, 3)] - 81e-5).abs() < 1e-12);
    /// assert!(model.with_armature(&[-1.0, 0.0, 0.0, 0.0]).is_err());
    /// # Ok::<(), plexo_kinematics::KinematicsError>(())
    /// ```
    pub fn with_armature(&self, armature: &[f64]) -> Result<Model, KinematicsError> {
        if armature.len() != self.nv() {
            return Err(KinematicsError::LengthMismatch { what: "armature", expected: self.nv(), got: armature.len() });
        }
        for (joint, &value) in self.joints().iter().zip(armature) {
            check_armature(&joint.name, value)?;
        }
        let mut model = self.clone();
        for (i, &value) in armature.iter().enumerate() {
            model.set_armature(i, value);
        }
        // Removing armature the model was built with may leave a joint with no inertia about its axis.
        model.check_regular_at_zero()?;
        Ok(model)
    }

    /// Rejects a model whose mass matrix is singular at q = 0: a joint with no inertia about its axis there (its
    /// articulated-body pivot `Dᵢ` is zero), which would make [`crate::aba`] undefined. Adding payloads or
    /// armature only adds inertia, so it cannot make a regular model singular.
    fn check_regular_at_zero(&self) -> Result<(), KinematicsError> {
        match singular_joint_at_zero(self) {
            Some(j) => Err(KinematicsError::NoInertiaAboutAxis { joint: self.joints()[j].name.clone() }),
            None => Ok(()),
        }
    }
}

/// Builds a [`Model`] in code.
///
/// ```
/// use nalgebra::{Isometry3, Vector3};
/// use plexo_kinematics::{Joint, JointKind, ModelBuilder, RigidBody};
///
/// let link = RigidBody::point_mass(1.0, Vector3::new(0.5, 0.0, 0.0));
/// let model = ModelBuilder::new("double-pendulum")
///     .joint(Joint::new("j1", JointKind::Continuous, None, Isometry3::identity(), Vector3::z()).with_body(link))
///     .joint(
///         Joint::new("j2", JointKind::Continuous, Some(0), Isometry3::translation(1.0, 0.0, 0.0), Vector3::z())
///             .with_body(link),
///     )
///     .frame("tip", Some(1), Isometry3::translation(1.0, 0.0, 0.0))
///     .build()?;
/// assert_eq!(model.nv(), 2);
/// assert!(model.frame_id("tip").is_some());
/// # Ok::<(), plexo_kinematics::KinematicsError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ModelBuilder {
    name: String,
    joints: Vec<Joint>,
    frames: Vec<Frame>,
    base_body: RigidBody,
    gravity: Vector3<f64>,
    base_frame: String,
}

impl ModelBuilder {
    /// An empty model called `name` whose base frame is called "base".
    pub fn new(name: impl Into<String>) -> ModelBuilder {
        ModelBuilder {
            name: name.into(),
            joints: Vec::new(),
            frames: Vec::new(),
            base_body: RigidBody::ZERO,
            gravity: STANDARD_GRAVITY,
            base_frame: "base".to_string(),
        }
    }

    /// Renames the base frame (e.g. the URDF root link).
    pub fn base_frame(mut self, name: impl Into<String>) -> ModelBuilder {
        self.base_frame = name.into();
        self
    }

    /// Mass fixed to the base (reported in the total mass, no dynamic effect).
    pub fn base_body(mut self, body: RigidBody) -> ModelBuilder {
        self.base_body = body;
        self
    }

    /// Gravity [m/s²] in the world frame.
    pub fn gravity(mut self, g: Vector3<f64>) -> ModelBuilder {
        self.gravity = g;
        self
    }

    /// Adds a movable joint. Its `parent` must index a joint added before it. A frame named after the joint
    /// (at the joint frame) is added by [`ModelBuilder::build`] unless a frame of that name exists.
    pub fn joint(mut self, joint: Joint) -> ModelBuilder {
        self.joints.push(joint);
        self
    }

    /// Adds a named frame fixed to `joint`'s body (`None`: the base) at `joint_T_frame`.
    pub fn frame(mut self, name: impl Into<String>, joint: Option<usize>, joint_T_frame: Isometry3<f64>) -> Self {
        self.frames.push(Frame { name: name.into(), joint, joint_T_frame });
        self
    }

    /// Validates everything and builds the model: finite numbers, unit-normalisable axes, consistent limits,
    /// finite non-negative armature, physical bodies, every joint moving some mass, and no joint with zero inertia
    /// about its axis at q = 0 ([`KinematicsError::NoInertiaAboutAxis`]; the mass matrix would be singular).
    pub fn build(self) -> Result<Model, KinematicsError> {
        let ModelBuilder { name, mut joints, frames: user_frames, base_body, gravity, base_frame } = self;
        check_finite("gravity", gravity.as_slice())?;
        base_body.validate(&format!("base '{base_frame}'"), false)?;
        for (index, joint) in joints.iter_mut().enumerate() {
            validate_joint(index, joint)?;
        }
        for (index, joint) in joints.iter().enumerate() {
            if joints[..index].iter().any(|j| j.name == joint.name) {
                return Err(KinematicsError::DuplicateName { what: "joint", name: joint.name.clone() });
            }
        }
        // Every joint must move some mass, or the mass matrix is singular.
        let mut subtree_mass: Vec<f64> = joints.iter().map(|j| j.body.mass).collect();
        for i in (0..joints.len()).rev() {
            if let Some(p) = joints[i].parent {
                subtree_mass[p] += subtree_mass[i];
            }
        }
        if let Some(i) = subtree_mass.iter().position(|&m| m <= 0.0) {
            return Err(KinematicsError::NonPositiveMass {
                body: format!("joint '{}' (everything it moves)", joints[i].name),
                mass: subtree_mass[i],
            });
        }

        let mut frames = vec![Frame { name: base_frame, joint: None, joint_T_frame: Isometry3::identity() }];
        for f in user_frames {
            if let Some(j) = f.joint
                && j >= joints.len()
            {
                return Err(KinematicsError::MissingParentJoint { name: f.name, parent: format!("#{j}") });
            }
            check_frame_pose(&format!("frame '{}'", f.name), &f.joint_T_frame)?;
            if frames.iter().any(|g| g.name == f.name) {
                return Err(KinematicsError::DuplicateName { what: "frame", name: f.name });
            }
            frames.push(f);
        }
        for (index, joint) in joints.iter().enumerate() {
            if !frames.iter().any(|f| f.name == joint.name) {
                frames.push(Frame {
                    name: joint.name.clone(),
                    joint: Some(index),
                    joint_T_frame: Isometry3::identity(),
                });
            }
        }

        let mut ancestors = Vec::new();
        let mut ancestor_range = Vec::with_capacity(joints.len());
        for index in 0..joints.len() {
            let start = ancestors.len();
            let mut k = Some(index);
            while let Some(j) = k {
                ancestors.push(j);
                k = joints[j].parent;
            }
            ancestor_range.push((start, ancestors.len()));
        }

        let model = Model::assemble(name, joints, frames, gravity, base_body, ancestors, ancestor_range);
        model.check_regular_at_zero()?;
        Ok(model)
    }
}

fn check_frame_pose(what: &str, pose: &Isometry3<f64>) -> Result<(), KinematicsError> {
    check_finite(&format!("{what} translation"), pose.translation.vector.as_slice())?;
    check_finite(&format!("{what} rotation"), pose.rotation.coords.as_slice())
}

fn validate_joint(index: usize, joint: &mut Joint) -> Result<(), KinematicsError> {
    let name = joint.name.clone();
    if let Some(p) = joint.parent
        && p >= index
    {
        return Err(KinematicsError::MissingParentJoint { name, parent: format!("#{p}") });
    }
    check_frame_pose(&format!("joint '{name}' origin"), &joint.parent_T_joint)?;
    // Re-normalise the rotation: hand-built quaternions may drift.
    joint.parent_T_joint.rotation = UnitQuaternion::new_normalize(joint.parent_T_joint.rotation.into_inner());
    let axis = joint.axis.into_inner();
    check_finite(&format!("joint '{name}' axis"), axis.as_slice())?;
    if axis.norm() < 1e-9 {
        return Err(KinematicsError::ZeroAxis { joint: name });
    }
    joint.axis = Unit::new_normalize(axis);
    let l = &mut joint.limits;
    if l.lower.is_nan() || l.upper.is_nan() || l.velocity.is_nan() || l.effort.is_nan() {
        return Err(KinematicsError::InvalidLimits { joint: name, reason: "NaN limit".to_string() });
    }
    if joint.kind == JointKind::Continuous {
        l.lower = f64::NEG_INFINITY;
        l.upper = f64::INFINITY;
    }
    if l.lower > l.upper {
        return Err(KinematicsError::InvalidLimits {
            joint: name,
            reason: format!("lower {} > upper {}", l.lower, l.upper),
        });
    }
    if l.velocity < 0.0 || l.effort < 0.0 {
        return Err(KinematicsError::InvalidLimits {
            joint: name,
            reason: format!("negative velocity {} or effort {}", l.velocity, l.effort),
        });
    }
    check_armature(&name, joint.armature)?;
    joint.body.validate(&format!("body of joint '{name}'"), false)
}

fn check_armature(joint: &str, value: f64) -> Result<(), KinematicsError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(KinematicsError::InvalidArmature { joint: joint.to_string(), value })
    }
}
