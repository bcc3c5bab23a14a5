//! The controller: gravity compensation with arm-weight support, joint and Cartesian impedance, transparent,
//! resistive and error-augmentation modes, the assist-as-needed laws, and the momentum observer — one pure,
//! allocation-free step per tick.

use nalgebra::{Matrix3, Matrix6xX, Unit, Vector3};
use plexo_hal::{JointArray, JointCommand, JointState, MAX_JOINTS};
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{
    Data, FrameId, Model, ReferenceFrame, RigidBody, crba, forward_kinematics, frame_jacobian_from_data,
    nonlinear_effects, rnea,
};
use serde::{Deserialize, Serialize};

use crate::aan::{self, AanLaw, AdaptationState, BlockPerformance, ClampedValue, Progression};
use crate::config::ControllerConfig;
use crate::error::{ControllerError, check_range};
use crate::observer::MomentumObserver;
use crate::safety::ControllerReport;
use crate::tasks::TaskReference;

/// Therapy mode of a block (Basteris et al. 2014 taxonomy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The robot moves the arm along the reference (stiff impedance + feed-forward).
    Passive,
    /// Assist-as-needed with the block's [`AanLaw`].
    ActiveAssisted,
    /// Gravity and friction compensation (plus a small residual damping): the patient moves freely.
    Transparent,
    /// Viscous and/or elastic resistance to the patient's motion.
    Resistive,
    /// The robot amplifies the tracking error (gain) and/or adds an offset (Wei & Patton 2005).
    ErrorAugmentation,
}

/// Where the passive impedance acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// Joint-space impedance.
    #[default]
    Joint,
    /// Cartesian impedance of the handle through Jᵀ, null-space posture towards the joint reference.
    Cartesian,
}

/// The per-block settings of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeSettings {
    /// Mode.
    pub mode: Mode,
    /// AAN law (used in [`Mode::ActiveAssisted`]).
    pub law: AanLaw,
    /// Space of the passive impedance.
    pub space: Space,
    /// Share of the patient's arm weight carried by the robot [-], 0..=1.
    pub arm_support: f64,
    /// Error-augmentation gain override [-], 1..=3 (None = configuration).
    pub error_gain: Option<f64>,
}

impl ModeSettings {
    /// Passive joint-space tracking with full arm support.
    pub fn passive() -> Self {
        Self { mode: Mode::Passive, law: AanLaw::Fixed, space: Space::Joint, arm_support: 1.0, error_gain: None }
    }

    /// Checks the ranges: `arm_support` ∈ [0, 1], `error_gain` ∈ [1, 3]. `context` names the source in errors
    /// (e.g. `block settings`). Allocation-free when the settings are valid.
    pub fn validate(&self, context: &str) -> Result<(), ControllerError> {
        check_range(context, "arm_support", self.arm_support, 0.0, 1.0)?;
        if let Some(g) = self.error_gain {
            check_range(context, "error_gain", g, 1.0, 3.0)?;
        }
        Ok(())
    }
}

/// Per-trial metrics, returned by [`Controller::end_trial`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrialMetrics {
    /// RMS joint tracking error per joint [rad] (q_d − q).
    pub rms_error: JointArray<f64>,
    /// RMS over time of the norm of the assistive (mode) torque, gravity support excluded [Nm].
    pub assistance_rms: f64,
    /// RMS over time of the norm of the estimated patient torque [Nm].
    pub effort_rms: f64,
    /// Mean adapted Emken stiffness over the joints at trial end [Nm/rad].
    pub mean_stiffness: f64,
    /// Duration of the trial [s].
    pub duration: f64,
    /// Ticks accumulated.
    pub ticks: u64,
}

/// Statistics of the running trial. The per-trial Emken update uses only the error of the ticks in which that law
/// was in force (`emken_*`), so data from rests or other modes never adapts anything.
#[derive(Clone, Copy, Debug, Default)]
struct TrialAccumulator {
    err2: [f64; MAX_JOINTS],
    assist2: f64,
    effort2: f64,
    ticks: u64,
    time: f64,
    /// Σ (q_d − q)² per joint over the ticks with the per-trial Emken law in force [rad²].
    emken_err2: [f64; MAX_JOINTS],
    /// Ticks with the per-trial Emken law in force.
    emken_ticks: u64,
    /// Ticks with an adaptive law (Emken, RBF) in force.
    adaptive_ticks: u64,
}

/// Runtime copies of the per-joint configuration arrays (no heap on the hot path).
#[derive(Clone, Copy, Debug)]
struct Gains {
    k: JointArray<f64>,
    d: JointArray<f64>,
    coulomb: JointArray<f64>,
    viscous: JointArray<f64>,
    null_k: JointArray<f64>,
    null_d: JointArray<f64>,
    transparent_d: JointArray<f64>,
    res_b: JointArray<f64>,
    res_k: JointArray<f64>,
    ea_k: JointArray<f64>,
    ea_offset: JointArray<f64>,
    aan_d: JointArray<f64>,
}

/// The controller. Owns the robot model with the patient's arm attached as payloads (the "coupled" model:
/// inverse dynamics, the observer, the handle Jacobian) and its `Data`; the robot's and the arm's gravity are
/// separated by linearity in the masses (the arm segments are kept as point masses).
#[derive(Clone, Debug)]
pub struct Controller {
    config: ControllerConfig,
    gains: Gains,
    dof: usize,
    coupled: Model,
    coupled_data: Data,
    /// Buffers for the kinematics of the reference posture q_d (Cartesian mode), so that the measured posture's
    /// placements in `coupled_data` stay valid for the rest of the tick.
    reference_data: Data,
    handle: FrameId,
    /// Parent joint of each joint (`None` = the fixed base); parents come first.
    parents: [Option<usize>; MAX_JOINTS],
    /// Joint axes in their own frames (for the world axes after forward kinematics).
    axes: [Vector3<f64>; MAX_JOINTS],
    rotational: [bool; MAX_JOINTS],
    coupled_bodies: [GravityBody; MAX_JOINTS],
    arm_bodies: [GravityBody; 3],
    arm_body_count: usize,
    jacobian: Matrix6xX<f64>,
    reference_jacobian: Matrix6xX<f64>,
    observer: MomentumObserver,
    adaptation: AdaptationState,
    settings: ModeSettings,
    report: ControllerReport,
    last_t: Option<f64>,
    support: f64,
    last_torque: JointArray<f64>,
    mode_torque: JointArray<f64>,
    reference: TaskReference,
    trial: TrialAccumulator,
}

/// A per-joint configuration array as a fixed-size runtime copy. `validate` has already checked the length
/// against the robot (≤ [`MAX_JOINTS`]); the error names the key should that ever not hold.
fn arr(v: &[f64], key: &str, file: &str) -> Result<JointArray<f64>, ControllerError> {
    JointArray::from_slice(v).ok_or_else(|| {
        ControllerError::range(file, key, format!("{v:?}"), format!("at most {MAX_JOINTS} values (one per joint)"))
    })
}

/// True if every array of the reference has one entry per joint.
fn reference_fits(r: &TaskReference, n: usize) -> bool {
    r.position.len() == n
        && r.velocity.len() == n
        && r.acceleration.len() == n
        && r.start.len() == n
        && r.target.len() == n
}

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
struct GravityBody {
    joint: usize,
    mass: f64,
    com: Vector3<f64>,
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
    /// Builds the controller for `robot` (the model without the patient), the configuration and the patient's
    /// arm anthropometrics. Validates the configuration against the robot (`file` names it in errors).
    /// Not real-time safe.
    pub fn new(
        robot: &Model,
        config: &ControllerConfig,
        arm: &ArmAnthropometrics,
        file: &str,
    ) -> Result<Self, ControllerError> {
        let dof = robot.nv();
        if dof > MAX_JOINTS {
            return Err(ControllerError::range(file, "robot joints", dof, format!("at most {MAX_JOINTS}")));
        }
        config.validate(dof, file)?;
        let mut coupled = robot.clone();
        let segments = attach_patient_arm(&mut coupled, arm)?;
        // Joints in topological order (parent before child), as the subtree sums of the gravity need.
        let mut parents = [None; MAX_JOINTS];
        for (i, joint) in coupled.joints().iter().enumerate() {
            if joint.parent.is_some_and(|p| p >= i) {
                return Err(ControllerError::Model {
                    context: format!("controller for `{}`", robot.name()),
                    message: format!("joint `{}` comes before its parent in the joint order", joint.name),
                });
            }
            parents[i] = joint.parent;
        }
        let mut coupled_bodies = [GravityBody::default(); MAX_JOINTS];
        for (j, joint) in coupled.joints().iter().enumerate() {
            coupled_bodies[j] = GravityBody { joint: j, mass: joint.body.mass, com: joint.body.com };
        }
        let mut arm_bodies = [GravityBody::default(); 3];
        let mut arm_body_count = 0;
        for (frame_name, body) in &segments {
            let frame = &coupled.frames()[coupled.frame_id(frame_name).expect("attached above").0];
            // A segment on the fixed base loads no joint.
            if let Some(joint) = frame.joint {
                let in_joint = body.transformed(&frame.joint_T_frame);
                arm_bodies[arm_body_count] = GravityBody { joint, mass: in_joint.mass, com: in_joint.com };
                arm_body_count += 1;
            }
        }
        let handle = robot.frame_id(&config.cartesian.frame).ok_or_else(|| ControllerError::UnknownName {
            what: "frame",
            name: config.cartesian.frame.clone(),
            available: robot.frames().iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
        })?;
        let c = config;
        let gains = Gains {
            k: arr(&c.impedance.stiffness, "impedance.stiffness", file)?,
            d: arr(&c.impedance.damping, "impedance.damping", file)?,
            coulomb: arr(&c.friction.coulomb, "friction.coulomb", file)?,
            viscous: arr(&c.friction.viscous, "friction.viscous", file)?,
            null_k: arr(&c.cartesian.nullspace_stiffness, "cartesian.nullspace_stiffness", file)?,
            null_d: arr(&c.cartesian.nullspace_damping, "cartesian.nullspace_damping", file)?,
            transparent_d: arr(&c.transparent.damping, "transparent.damping", file)?,
            res_b: arr(&c.resistive.viscous, "resistive.viscous", file)?,
            res_k: arr(&c.resistive.elastic, "resistive.elastic", file)?,
            ea_k: arr(&c.error_augmentation.stiffness, "error_augmentation.stiffness", file)?,
            ea_offset: arr(&c.error_augmentation.offset, "error_augmentation.offset", file)?,
            aan_d: arr(&c.aan.damping, "aan.damping", file)?,
        };
        let mut axes = [Vector3::zeros(); MAX_JOINTS];
        let mut rotational = [false; MAX_JOINTS];
        for (j, joint) in coupled.joints().iter().enumerate() {
            axes[j] = joint.axis.into_inner();
            rotational[j] = joint.kind.is_rotational();
        }
        let mut settings = ModeSettings::passive();
        settings.arm_support = c.gravity.arm_support;
        Ok(Self {
            gains,
            dof,
            coupled_data: Data::new(&coupled),
            reference_data: Data::new(&coupled),
            coupled,
            handle,
            parents,
            axes,
            rotational,
            coupled_bodies,
            arm_bodies,
            arm_body_count,
            jacobian: Matrix6xX::zeros(dof),
            reference_jacobian: Matrix6xX::zeros(dof),
            observer: MomentumObserver::new(dof, &c.observer, c.safety.period),
            adaptation: AdaptationState::new(dof, &c.aan),
            settings,
            report: ControllerReport::zeros(dof),
            last_t: None,
            support: c.gravity.arm_support,
            last_torque: JointArray::splat(dof, 0.0),
            mode_torque: JointArray::splat(dof, 0.0),
            reference: TaskReference::hold(&JointArray::splat(dof, 0.0)),
            trial: TrialAccumulator::default(),
            config: config.clone(),
        })
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.dof
    }

    /// The configuration in use.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The model of the robot with the patient's arm attached.
    pub fn coupled_model(&self) -> &Model {
        &self.coupled
    }

    /// Prepares for (re-)enabling: restarts the observer and the timing from the measured state. Call before
    /// `SafetySupervisor::request_enable`/`request_resume`, with a reference that holds the measured posture, so
    /// that the first torque is the hold torque (faded in by the supervisor). Real-time safe.
    pub fn start(&mut self, _state: &JointState) {
        self.observer.reset();
        self.support = self.settings.arm_support;
        self.last_t = None;
        self.last_torque.fill(0.0);
        self.trial = TrialAccumulator::default();
    }

    /// Sets the mode of the next ticks (at a block boundary). Checks the ranges ([`ModeSettings::validate`]).
    /// Not real-time critical but allocation-free.
    pub fn set_mode(&mut self, settings: ModeSettings) -> Result<(), ControllerError> {
        settings.validate("block settings")?;
        self.settings = settings;
        Ok(())
    }

    /// Sets settings that were validated before (a prepared protocol block or [`crate::REST_HOLD`]): the tick
    /// path of [`crate::Therapy`], which has no error to handle. Real-time safe.
    pub(crate) fn set_validated_mode(&mut self, settings: ModeSettings) {
        debug_assert!(settings.validate("validated settings").is_ok(), "{settings:?}");
        self.settings = settings;
    }

    /// The current mode settings.
    pub fn mode(&self) -> ModeSettings {
        self.settings
    }

    /// The adaptation state (serialize it to resume in the next session).
    pub fn adaptation(&self) -> &AdaptationState {
        &self.adaptation
    }

    /// Restores an adaptation state saved by an earlier session (see [`AdaptationState`]). Rejects a state of
    /// another format version, joint count or RBF basis, or with a NaN/Inf or negative value, naming the field;
    /// clamps every adapted value to the configured bounds and returns the values it clamped. Not real-time
    /// safe.
    pub fn restore_adaptation(&mut self, state: AdaptationState) -> Result<Vec<ClampedValue>, ControllerError> {
        let (state, clamped) = state.validated(self.dof, &self.config.aan, "adaptation state")?;
        self.adaptation = state;
        Ok(clamped)
    }

    /// What the supervisor needs besides the command (estimated interaction torque, hold torque, input check).
    /// Real-time safe.
    pub fn report(&self) -> &ControllerReport {
        &self.report
    }

    /// The estimated patient torque per joint [Nm] (momentum observer, fused with a cuff sensor if present).
    /// Real-time safe.
    pub fn patient_torque(&self) -> &JointArray<f64> {
        self.observer.estimate()
    }

    /// The torque of the mode/law alone (without gravity and arm support) of the last tick [Nm].
    /// Real-time safe.
    pub fn mode_torque(&self) -> &JointArray<f64> {
        &self.mode_torque
    }

    /// The reference of the last [`Controller::update`] (q_d [rad], q̇_d [rad/s], …). Real-time safe.
    pub fn reference(&self) -> &TaskReference {
        &self.reference
    }

    /// Position stiffness the current mode applies per joint [Nm/rad]: the impedance in passive mode, the adapted
    /// (and progression-scaled) assistance stiffness in assist-as-needed mode, the elastic anchor in resistive
    /// mode, the augmenting stiffness `(gain − 1)·K` in error augmentation, 0 in transparent mode. For telemetry
    /// and reports: "how much does the robot pull towards the reference". Real-time safe.
    pub fn assist_stiffness(&self) -> JointArray<f64> {
        let n = self.dof;
        let mut k = JointArray::splat(n, 0.0);
        let scale = self.adaptation.assistance_scale;
        let a = &self.config.aan;
        for j in 0..n {
            k[j] = match self.settings.mode {
                Mode::Passive => self.gains.k[j],
                Mode::ActiveAssisted => match self.settings.law {
                    AanLaw::Fixed => scale * a.emken.initial,
                    AanLaw::Emken => scale * self.adaptation.emken_stiffness[j],
                    AanLaw::Rbf => scale * a.rbf.stiffness,
                    // The tunnel is force-free inside its width: its stiffness is the wall's, not a pull.
                    AanLaw::Tunnel => 0.0,
                },
                Mode::Transparent => 0.0,
                Mode::Resistive => self.gains.res_k[j],
                Mode::ErrorAugmentation => {
                    (self.settings.error_gain.unwrap_or(self.config.error_augmentation.gain) - 1.0) * self.gains.ea_k[j]
                }
            };
        }
        k
    }

    /// Coulomb + viscous friction compensation torque of joint `j` at velocity `v` [Nm].
    fn friction(&self, j: usize, v: f64) -> f64 {
        let vs = self.config.friction.smoothing_velocity;
        self.gains.coulomb[j] * (v / vs).tanh() + self.gains.viscous[j] * v
    }

    /// Generalized gravity of the robot with the arm and of the arm alone [Nm] at the placements of the last
    /// `forward_kinematics` on `coupled_data`. Real-time safe.
    fn gravity_terms(&self) -> ([f64; MAX_JOINTS], [f64; MAX_JOINTS]) {
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
    fn set_hold_torque(&mut self, g_coupled: &[f64; MAX_JOINTS], g_arm: &[f64; MAX_JOINTS]) {
        let alpha = self.support;
        for j in 0..self.dof {
            self.report.hold_torque[j] = g_coupled[j] - (1.0 - alpha) * g_arm[j];
        }
    }

    /// One control step: model update, observer, mode/AAN law, gravity and arm support. `t` is the time [s] (any
    /// monotonic epoch).
    ///
    /// Bad input: a state with the wrong number of joints gives a zero command (the supervisor faults on the joint
    /// count). Any other NaN/Inf or wrong length — in the state, the reference, the adaptation state or `t` — sets
    /// `inputs_finite = false` in the report, so the supervisor stops (category 2). Whenever the measured
    /// positions are finite the hold torque (robot gravity + the supported share of the arm's weight) is still
    /// computed, reported and returned as the command: the stop holds the arm instead of letting it sink (a NaN
    /// in the reference says nothing about the arm). Real-time safe: no allocation, bounded time.
    pub fn update(&mut self, state: &JointState, reference: &TaskReference, t: f64) -> JointCommand {
        let n = self.dof;
        let mut command = JointCommand::zeros(n);
        self.reference = *reference;
        if state.dof() != n {
            self.report.inputs_finite = false;
            self.report.hold_torque.fill(0.0);
            self.mode_torque.fill(0.0);
            return command;
        }
        let inputs_ok = state.is_finite()
            && reference_fits(reference, n)
            && reference.is_finite()
            && self.adaptation.in_use_finite(n, self.config.aan.rbf.centers)
            && t.is_finite();
        if !inputs_ok {
            self.report.inputs_finite = false;
            if state.position.all_finite() {
                forward_kinematics(&self.coupled, &mut self.coupled_data, &state.position);
                let (g_coupled, g_arm) = self.gravity_terms();
                self.set_hold_torque(&g_coupled, &g_arm);
            } else {
                self.report.hold_torque.fill(0.0);
            }
            if t.is_finite() {
                self.last_t = Some(t);
            }
            command.torque = self.report.hold_torque;
            self.last_torque = command.torque;
            self.mode_torque.fill(0.0);
            return command;
        }
        let period = self.config.safety.period;
        let dt = self.last_t.map_or(period, |last| (t - last).clamp(0.0, 0.1));
        self.last_t = Some(t);
        let q = &state.position;
        let qd = &state.velocity;

        // --- model update: nonlinear effects and mass matrix of robot + arm (observer), joint placements, and
        // from them the gravity of robot + arm and of the arm alone (linear in the masses: no extra RNEA pass)
        let mut nle = [0.0; MAX_JOINTS];
        nle[..n].copy_from_slice(nonlinear_effects(&self.coupled, &mut self.coupled_data, q, qd).as_slice());
        crba(&self.coupled, &mut self.coupled_data, q);
        if self.settings.mode == Mode::Passive && self.settings.space == Space::Cartesian {
            // The handle Jacobian at q from the joint buffers CRBA just filled (no kinematics pass of its own).
            frame_jacobian_from_data(
                &self.coupled,
                &mut self.coupled_data,
                self.handle,
                ReferenceFrame::LocalWorldAligned,
                &mut self.jacobian,
            );
        }
        forward_kinematics(&self.coupled, &mut self.coupled_data, q);
        let (g_coupled, g_arm) = self.gravity_terms();

        // --- observer: motor torque in, patient torque out
        let mut tau_motor = if self.config.observer.use_commanded_torque { self.last_torque } else { state.torque };
        if self.config.observer.subtract_friction {
            for (j, tm) in tau_motor.iter_mut().enumerate() {
                *tm -= self.friction(j, qd[j]);
            }
        }
        let sensor = state.interaction_torque.as_ref();
        self.observer.update(&self.coupled_data.mass_matrix, &nle[..n], &tau_motor, qd, dt, sensor);
        self.report.interaction_torque = *self.observer.estimate();

        // --- gravity compensation + arm-weight support
        // Weight support slews towards the block's setting (no torque step when the mode changes).
        let max_step = self.config.gravity.support_rate * dt;
        self.support += (self.settings.arm_support - self.support).clamp(-max_step, max_step);
        self.set_hold_torque(&g_coupled, &g_arm);

        // --- mode torque
        let mut tau = JointArray::splat(n, 0.0);
        let mut model_ok = true;
        let e = |j: usize| reference.position[j] - q[j];
        let ed = |j: usize| reference.velocity[j] - qd[j];
        match self.settings.mode {
            Mode::Passive => {
                match self.settings.space {
                    Space::Joint => {
                        for j in 0..n {
                            tau[j] = self.gains.k[j] * e(j) + self.gains.d[j] * ed(j);
                        }
                    }
                    Space::Cartesian => model_ok = self.cartesian_impedance(state, reference, &mut tau),
                }
                // Inverse-dynamics feed-forward minus the gravity already in the hold torque. For a still reference
                // (rest holds, the end of every movement) it is M·0 + C(q, 0)·0 + g − g = 0: no RNEA pass.
                let still = reference.velocity.iter().chain(reference.acceleration.iter()).all(|v| *v == 0.0);
                if self.config.impedance.feedforward && !still {
                    let ff =
                        rnea(&self.coupled, &mut self.coupled_data, q, &reference.velocity, &reference.acceleration);
                    for j in 0..n {
                        tau[j] += ff[j] - g_coupled[j];
                    }
                }
            }
            Mode::ActiveAssisted => self.assist_as_needed(state, reference, dt, &mut tau),
            Mode::Transparent => {
                for j in 0..n {
                    tau[j] = self.friction(j, qd[j]) - self.gains.transparent_d[j] * qd[j];
                }
            }
            Mode::Resistive => {
                for j in 0..n {
                    tau[j] = self.friction(j, qd[j])
                        - self.gains.transparent_d[j] * qd[j]
                        - self.gains.res_b[j] * qd[j]
                        - self.gains.res_k[j] * (q[j] - reference.start[j]);
                }
            }
            Mode::ErrorAugmentation => {
                let ea = &self.config.error_augmentation;
                let g = self.settings.error_gain.unwrap_or(ea.gain);
                for j in 0..n {
                    let augment =
                        (g - 1.0) * self.gains.ea_k[j] * (q[j] - reference.position[j]) + self.gains.ea_offset[j];
                    tau[j] = self.friction(j, qd[j]) - self.gains.transparent_d[j] * qd[j]
                        + augment.clamp(-ea.torque_max, ea.torque_max);
                }
            }
        }
        self.mode_torque = tau;

        // --- trial statistics (allocation-free accumulators); the per-trial Emken law adapts at the trial end
        // on the error of the ticks in which it was in force only
        let assisted = self.settings.mode == Mode::ActiveAssisted;
        let emken_per_trial = assisted && self.settings.law == AanLaw::Emken && !self.config.aan.emken.continuous;
        let mut assist2 = 0.0;
        let mut effort2 = 0.0;
        for j in 0..n {
            let e2 = e(j) * e(j);
            self.trial.err2[j] += e2;
            if emken_per_trial {
                self.trial.emken_err2[j] += e2;
            }
            assist2 += tau[j] * tau[j];
            effort2 += self.report.interaction_torque[j].powi(2);
        }
        self.trial.assist2 += assist2;
        self.trial.effort2 += effort2;
        self.trial.ticks += 1;
        self.trial.time += dt;
        self.trial.emken_ticks += u64::from(emken_per_trial);
        self.trial.adaptive_ticks += u64::from(assisted && matches!(self.settings.law, AanLaw::Emken | AanLaw::Rbf));

        for j in 0..n {
            command.torque[j] = self.report.hold_torque[j] + tau[j];
        }
        self.report.inputs_finite = model_ok && command.is_finite();
        self.last_torque = command.torque;
        command
    }

    fn assist_as_needed(&mut self, state: &JointState, r: &TaskReference, dt: f64, tau: &mut JointArray<f64>) {
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
                for j in 0..n {
                    tau[j] = scale * self.adaptation.emken_stiffness[j] * (r.position[j] - q[j])
                        + self.gains.aan_d[j] * (r.velocity[j] - qd[j]);
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

    /// Ends a trial: returns its metrics and, for the Emken law in per-trial mode, adapts the stiffness once from
    /// the RMS error of the ticks in which that law was in force (rests and other modes never adapt it).
    /// Counts the trial in [`AdaptationState::trials`] if an adaptive law (Emken, RBF) acted in it.
    /// Allocation-free.
    pub fn end_trial(&mut self) -> TrialMetrics {
        let n = self.dof;
        let ticks = self.trial.ticks.max(1) as f64;
        let mut rms_error = JointArray::splat(n, 0.0);
        for j in 0..n {
            rms_error[j] = (self.trial.err2[j] / ticks).sqrt();
        }
        if self.trial.emken_ticks > 0 {
            let emken_ticks = self.trial.emken_ticks as f64;
            let mut emken_error = JointArray::splat(n, 0.0);
            for j in 0..n {
                emken_error[j] = (self.trial.emken_err2[j] / emken_ticks).sqrt();
            }
            aan::emken_update(&mut self.adaptation.emken_stiffness[..n], &emken_error, &self.config.aan.emken);
        }
        if self.trial.adaptive_ticks > 0 {
            self.adaptation.trials += 1;
        }
        let metrics = TrialMetrics {
            rms_error,
            assistance_rms: (self.trial.assist2 / ticks).sqrt(),
            effort_rms: (self.trial.effort2 / ticks).sqrt(),
            mean_stiffness: self.adaptation.emken_stiffness[..n].iter().sum::<f64>() / n.max(1) as f64,
            duration: self.trial.time,
            ticks: self.trial.ticks,
        };
        self.trial = TrialAccumulator::default();
        metrics
    }

    /// Discards the statistics accumulated since the last trial end without adapting anything: call when a trial
    /// starts, so that the rest before it neither adapts a law nor enters the trial's metrics. Real-time safe.
    pub fn reset_trial_statistics(&mut self) {
        self.trial = TrialAccumulator::default();
    }

    /// Ends a block: Krebs-style progression of assistance scale, movement duration and tunnel width.
    pub fn end_block(&mut self, performance: &BlockPerformance) -> Progression {
        let a = &self.config.aan;
        aan::progress_between_blocks(&mut self.adaptation, performance, &a.progression, &a.tunnel)
    }
}
