//! The controller: gravity compensation with arm-weight support, joint and Cartesian impedance, transparent,
//! resistive and error-augmentation modes, the assist-as-needed laws, and the momentum observer — one pure,
//! allocation-free step per tick.
//!
//! Files: this one holds the [`Controller`] and its tick ([`Controller::update`]); `mode` the per-block
//! [`ModeSettings`]; `gravity` the patient's arm on the model and the gravity split; one file per mode's torque
//! (`passive`, `active_assisted`, and `transparent` for the modes in which the patient leads: transparent,
//! resistive, error augmentation); `trial` the per-trial statistics.

mod active_assisted;
mod gravity;
mod mode;
mod passive;
mod transparent;
mod trial;

use nalgebra::{Matrix6xX, Vector3};
use plexo_hal::{JointArray, JointCommand, JointState, MAX_JOINTS};
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{
    Data, FrameId, Model, ReferenceFrame, crba, forward_kinematics, frame_jacobian_from_data, nonlinear_effects,
};

use gravity::GravityBody;
pub use gravity::attach_patient_arm;
pub use mode::{Mode, ModeSettings, Space};
use trial::TrialAccumulator;
pub use trial::TrialMetrics;

use crate::aan::{self, AanLaw, AdaptationState, BlockPerformance, ClampedValue, Progression};
use crate::config::ControllerConfig;
use crate::error::ControllerError;
use crate::observer::MomentumObserver;
use crate::safety::ControllerReport;
use crate::tasks::TaskReference;

/// Reach tolerance assumed until [`Controller::set_trial_tolerance`] is called [rad] (the shipped protocols'
/// assisted blocks use it).
pub const DEFAULT_TRIAL_TOLERANCE: f64 = 0.05;

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
    /// Reach tolerance of the running trial: joint-space distance to the target [rad] (the task-error Emken
    /// deadband is a fraction of it).
    trial_tolerance: f64,
    /// Velocity filter of the damping terms: the two cascaded first-order sections [rad/s]; `None` until the
    /// first tick after `start` (initialised to the measured velocity, so the filter does not step).
    velocity_filter: Option<[JointArray<f64>; 2]>,
    /// Settings of the previous tick (a change starts a bumpless transfer).
    last_settings: ModeSettings,
    /// Bumpless transfer: torque difference old − new mode at the last switch [Nm], fading out.
    switch_offset: JointArray<f64>,
    /// Time left of the bumpless transfer [s].
    switch_left: f64,
    /// The part of this tick's mode torque that is the previous mode's torque still fading out (bumpless
    /// transfer) [Nm]; zero outside a transfer.
    transfer_torque: JointArray<f64>,
    /// The arm-weight support of the running trial adapts at its end, never below this floor [-] (the block's
    /// prescribed support; [`crate::SupportAdaptationConfig`]); `None` = it does not adapt. Set by
    /// [`crate::Therapy`] at each trial start.
    support_floor: Option<f64>,
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
            trial_tolerance: DEFAULT_TRIAL_TOLERANCE,
            velocity_filter: None,
            last_settings: settings,
            switch_offset: JointArray::splat(dof, 0.0),
            switch_left: 0.0,
            transfer_torque: JointArray::splat(dof, 0.0),
            support_floor: None,
            config: config.clone(),
        })
    }

    /// Sets the reach tolerance of the trials to come: the joint-space distance to the target [rad] within which
    /// a trial counts as reached (the protocol block's `tolerance`, 0.005..=0.5). The task-error Emken law
    /// ([`crate::EmkenError::Task`]) scales its deadband with it. [`crate::Therapy`] sets it at every trial start.
    /// Real-time safe (allocates only the error).
    pub fn set_trial_tolerance(&mut self, tolerance: f64) -> Result<(), ControllerError> {
        crate::error::check_range("trial", "tolerance", tolerance, 0.005, 0.5)?;
        self.set_validated_trial_tolerance(tolerance);
        Ok(())
    }

    /// [`Controller::set_trial_tolerance`] for a tolerance a protocol has validated. Real-time safe.
    pub(crate) fn set_validated_trial_tolerance(&mut self, tolerance: f64) {
        self.trial_tolerance = tolerance;
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
        self.velocity_filter = None;
        self.last_settings = self.settings;
        self.switch_left = 0.0;
        self.mode_torque.fill(0.0);
        self.transfer_torque.fill(0.0);
    }

    /// Sets the mode of the next ticks (at a block boundary), at once: the next tick computes the new mode's torque
    /// exactly (a fading transfer from an earlier switch is dropped). Checks the ranges
    /// ([`ModeSettings::validate`]).
    /// Not real-time critical but allocation-free.
    pub fn set_mode(&mut self, settings: ModeSettings) -> Result<(), ControllerError> {
        settings.validate("block settings")?;
        self.settings = settings;
        // An explicit switch acts at once: no bumpless transfer.
        self.last_settings = settings;
        self.switch_left = 0.0;
        Ok(())
    }

    /// Sets settings that were validated before (a prepared protocol block or [`crate::REST_HOLD`]): the tick
    /// path of [`crate::Therapy`], which has no error to handle. The switch is bumpless (see
    /// `shaping.mode_switch_ramp`). Real-time safe.
    pub(crate) fn set_validated_mode(&mut self, settings: ModeSettings) {
        debug_assert!(settings.validate("validated settings").is_ok(), "{settings:?}");
        self.settings = settings;
    }

    /// The current mode settings.
    pub fn mode(&self) -> ModeSettings {
        self.settings
    }

    /// The share of the patient's arm weight the robot carries now [-] (0..=1): the setting in force, reached at
    /// the configured slew rates. Real-time safe.
    pub fn arm_support(&self) -> f64 {
        self.support
    }

    /// Whether the running trial's arm-weight support adapts at the trial end, and its floor `floor` [-] (the
    /// block's prescribed support; [`crate::SupportAdaptationConfig`]); [`crate::Therapy`] sets it at every trial
    /// start for the assisted blocks with the progression rule. Real-time safe.
    pub(crate) fn set_support_adaptation(&mut self, floor: Option<f64>) {
        self.support_floor = floor;
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

    /// The part of [`Controller::mode_torque`] that is the previous mode's torque still fading out after a mode
    /// switch (bumpless transfer over `shaping.mode_switch_ramp`) [Nm]; zero outside a transfer. The trial's
    /// measures of assistance exclude it: at a trial's start it is the rest hold letting go of the arm, not the
    /// trial mode's help. Real-time safe.
    pub fn transfer_torque(&self) -> &JointArray<f64> {
        &self.transfer_torque
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

        // --- mode torque; passive mode damps the filtered velocity (the observer above used the raw one)
        let shaped = self.shaped_state(state, dt);
        let state = if self.settings.mode == Mode::Passive { &shaped } else { state };
        let mut tau = JointArray::splat(n, 0.0);
        let mut model_ok = true;
        match self.settings.mode {
            Mode::Passive => model_ok = self.passive_torque(state, reference, &g_coupled, &mut tau),
            Mode::ActiveAssisted => self.assist_as_needed(state, reference, dt, &mut tau),
            Mode::Transparent => self.transparent_torque(state, &mut tau),
            Mode::Resistive => self.resistive_torque(state, reference, &mut tau),
            Mode::ErrorAugmentation => self.error_augmentation_torque(state, reference, &mut tau),
        }
        self.bumpless_transfer(&mut tau, dt);
        self.mode_torque = tau;

        // --- trial statistics (allocation-free accumulators); the per-trial Emken law adapts at the trial end
        // on the error of the ticks in which it was in force only
        self.accumulate_trial(state, reference, &tau, &g_arm, dt);

        for j in 0..n {
            command.torque[j] = self.report.hold_torque[j] + tau[j];
        }
        self.report.inputs_finite = model_ok && command.is_finite();
        self.last_torque = command.torque;
        command
    }

    /// The measured state with its velocity replaced by the filtered velocity for the damping of passive mode
    /// (joint impedance, Cartesian impedance and its null space): two cascaded first-order low-pass sections at
    /// `shaping.velocity_cutoff` (critically damped 2nd order, group delay ≈ 2/(2π·f_c), 10.6 ms at 30 Hz). Why:
    /// one encoder count in one tick is a velocity pulse that damping turns into a torque step; with passive
    /// mode's 12 Nm·s/rad that step exceeds the supervisor's rate limit (measured: half of the passive and
    /// rest-hold ticks; see [`crate::config::ShapingConfig`]). The 2nd-order filter spreads the pulse over ≈ 2τ,
    /// so its first-tick change is α² of the pulse (α = 1 − e^(−2π f_c dt)). The other modes damp with at most
    /// 3 Nm·s/rad (measured: the rate limit acts on < 0.4 % of their ticks) and keep the raw velocity, so their
    /// laws stay exactly as specified. The filter runs every tick, so it is settled when passive mode starts.
    /// Real-time safe.
    fn shaped_state(&mut self, state: &JointState, dt: f64) -> JointState {
        let cutoff = self.config.shaping.velocity_cutoff;
        // 0 = no filter: α = 1 passes the measured velocity through.
        let alpha = if cutoff > 0.0 { 1.0 - (-2.0 * std::f64::consts::PI * cutoff * dt).exp() } else { 1.0 };
        let v = &state.velocity;
        let [first, second] = self.velocity_filter.get_or_insert([*v, *v]);
        for j in 0..self.dof {
            first[j] += alpha * (v[j] - first[j]);
            second[j] += alpha * (first[j] - second[j]);
        }
        let mut shaped = *state;
        shaped.velocity = *second;
        shaped
    }

    /// Bumpless transfer at a change of the mode settings made by [`crate::Therapy`] at each trial's start and
    /// end (mode, law, space, gain; the weight support slews on its own): the new mode's torque `tau` [Nm] plus
    /// the difference old − new at the switch, fading linearly to zero over `shaping.mode_switch_ramp`. An
    /// explicit [`Controller::set_mode`] switches at once (its caller asked for that law now). The arm is seldom exactly on the reference when a trial starts or
    /// ends, so without it the request steps by (K_old − K_new)·e — up to several Nm between the rest hold's
    /// 300 Nm/rad and an assist-as-needed stiffness. Real-time safe.
    fn bumpless_transfer(&mut self, tau: &mut JointArray<f64>, dt: f64) {
        let ramp = self.config.shaping.mode_switch_ramp;
        let changed = self.settings.mode != self.last_settings.mode
            || self.settings.law != self.last_settings.law
            || self.settings.space != self.last_settings.space
            || self.settings.error_gain != self.last_settings.error_gain;
        self.last_settings = self.settings;
        if changed && ramp > 0.0 {
            for j in 0..self.dof {
                // The torque still fading from an earlier switch is part of the old mode's torque.
                self.switch_offset[j] = self.mode_torque[j] - tau[j];
            }
            self.switch_left = ramp;
        }
        self.transfer_torque.fill(0.0);
        if self.switch_left > 0.0 {
            let w = self.switch_left / ramp;
            for j in 0..self.dof {
                self.transfer_torque[j] = w * self.switch_offset[j];
                tau[j] += self.transfer_torque[j];
            }
            self.switch_left = (self.switch_left - dt).max(0.0);
        }
    }

    /// Records a trial's outcome in the progression window and applies the sliding-window progression rule
    /// ([`aan::record_trial_outcome`]); returns its decision, if any. Call once per trial of a block with the
    /// progression rule. Real-time safe.
    pub fn record_trial_outcome(&mut self, reached: bool) -> Option<Progression> {
        let a = &self.config.aan;
        aan::record_trial_outcome(&mut self.adaptation, reached, &a.progression, &a.tunnel)
    }

    /// Ends a block: Krebs-style progression of assistance scale, movement duration and tunnel width on
    /// `performance` ([`aan::progress_between_blocks`]; [`crate::Therapy`] passes the trials since the window's
    /// last decision). Real-time safe.
    pub fn end_block(&mut self, performance: &BlockPerformance) -> Progression {
        let a = &self.config.aan;
        aan::progress_between_blocks(&mut self.adaptation, performance, &a.progression, &a.tunnel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: [f64; 4] = [0.4, 0.7, 0.1, 1.2];

    fn controller() -> Controller {
        let robot = Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").unwrap()).unwrap();
        let config = ControllerConfig::default_config().unwrap();
        let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
        Controller::new(&robot, &config, &arm, "controller.toml").unwrap()
    }

    fn state(qd: [f64; 4]) -> JointState {
        let mut s = JointState::zeros(4);
        s.position.copy_from_slice(&Q);
        s.velocity.copy_from_slice(&qd);
        s
    }

    fn aan() -> ModeSettings {
        ModeSettings {
            mode: Mode::ActiveAssisted,
            law: AanLaw::Fixed,
            space: Space::Joint,
            arm_support: 1.0,
            error_gain: None,
        }
    }

    /// A started controller (passive) holding the arm still with the reference 0.02 rad off it at joint 1.
    fn started_with_the_arm_off_its_reference() -> (Controller, JointState, TaskReference) {
        let mut c = controller();
        let s = state([0.0; 4]);
        let mut r = TaskReference::hold(&s.position);
        r.position[1] += 0.02;
        c.start(&s);
        (c, s, r)
    }

    /// A therapy switch from the rest hold (passive, 300 Nm/rad) to an assist-as-needed law with the arm 0.02 rad
    /// off the reference continues the old torque and reaches the new law's torque after the ramp; an explicit
    /// `set_mode` switches at once.
    #[test]
    fn therapy_mode_switch_is_bumpless_and_set_mode_is_immediate() {
        let (mut c, s, r) = started_with_the_arm_off_its_reference();
        let (period, ramp) = (c.config.safety.period, c.config.shaping.mode_switch_ramp);
        let mut t = 0.0;
        let mut tick = |c: &mut Controller| {
            c.update(&s, &r, t);
            t += period;
            c.mode_torque()[1]
        };
        let passive = tick(&mut c);
        c.set_validated_mode(aan());
        let k = c.config.aan.emken.initial;
        let target = k * 0.02;
        let first = tick(&mut c);
        assert!((first - passive).abs() < 1e-9, "first tick continues the old torque: {first} vs {passive}");
        let mut max_step: f64 = 0.0;
        let mut last = first;
        for _ in 0..(ramp / period) as usize + 2 {
            let now = tick(&mut c);
            max_step = max_step.max((now - last).abs());
            last = now;
        }
        assert!((last - target).abs() < 1e-9, "after the ramp the new law acts alone: {last} vs {target}");
        let jump = (passive - target).abs();
        assert!(jump > 4.0 && max_step < 1.1 * jump * period / ramp, "step {max_step} Nm/tick for a {jump} Nm jump");
        // An explicit switch acts at once.
        c.set_mode(ModeSettings::passive()).unwrap();
        assert!((tick(&mut c) - passive).abs() < 1e-9);
    }

    /// A trial's assistance is its own mode's torque: the rest hold's torque still fading out after the switch
    /// (bumpless transfer) is in the mode torque the robot applies but neither in the trial's RMS assistance nor in
    /// the assistance torque of the effort measures. Regression: the rest hold letting go of a held arm counted as
    /// help in every trial — a floor the help could not fade below (0.4 of 0.8 Nm RMS for a profile with three-fold
    /// passive stiffness, EFFICACY.md).
    #[test]
    fn the_rest_holds_fading_torque_is_not_counted_as_the_trials_assistance() {
        let (mut c, s, r) = started_with_the_arm_off_its_reference();
        let (period, ramp) = (c.config.safety.period, c.config.shaping.mode_switch_ramp);
        let mut t = 0.0;
        c.update(&s, &r, t);
        let held = c.mode_torque()[1];
        c.end_trial(); // the trial's accumulators start at the switch
        c.set_validated_mode(aan());
        let own = c.config.aan.emken.initial * 0.02; // the fixed law's torque on joint 1
        let mut assistance = JointArray::splat(4, 0.0);
        let ticks = (ramp / period) as usize + 50;
        for i in 0..ticks {
            t += period;
            c.update(&s, &r, t);
            let (mode, transfer) = (c.mode_torque()[1], c.transfer_torque()[1]);
            assert!((mode - transfer - own).abs() < 1e-9, "tick {i}: mode {mode} = transfer {transfer} + own {own}");
            if i == 0 {
                assert!((transfer - (held - own)).abs() < 1e-9, "the first tick still carries the whole hold");
            }
            crate::effort::assistance_torque(&c, &s.velocity, &mut assistance);
            assert!((assistance[1] - own).abs() < 1e-9, "tick {i}: assistance {} vs {own}", assistance[1]);
        }
        assert_eq!(c.transfer_torque()[1], 0.0, "the transfer is over after the ramp");
        assert!((held - own).abs() > 4.0, "the hold's torque differs from the law's: {held} vs {own}");
        let metrics = c.end_trial();
        assert!((metrics.assistance_rms - own).abs() < 1e-9, "RMS assistance {} vs {own}", metrics.assistance_rms);
    }

    /// Passive damping acts on the filtered velocity: a one-tick velocity pulse of one encoder count per tick
    /// (2π/16384 rad in 1 ms) moves the torque by α² of the unfiltered step in its first tick; other modes keep
    /// the measured velocity.
    #[test]
    fn trial_tolerance_outside_its_range_is_refused_naming_it() {
        let mut c = controller();
        for bad in [0.0, 0.001, 0.6, f64::NAN] {
            let err = c.set_trial_tolerance(bad).unwrap_err().to_string();
            assert!(err.contains("tolerance"), "{bad}: {err}");
        }
        assert_eq!(c.trial_tolerance, DEFAULT_TRIAL_TOLERANCE, "a refused tolerance changes nothing");
        c.set_trial_tolerance(0.1).unwrap();
        assert_eq!(c.trial_tolerance, 0.1);
    }

    #[test]
    fn passive_damping_uses_the_filtered_velocity() {
        let mut c = controller();
        let period = c.config.safety.period;
        let d = c.config.impedance.damping[0];
        let pulse = 2.0 * std::f64::consts::PI / 16384.0 / period;
        let still = state([0.0; 4]);
        let r = TaskReference::hold(&still.position);
        c.set_mode(ModeSettings::passive()).unwrap();
        c.start(&still);
        c.update(&still, &r, 0.0);
        let before = c.mode_torque()[0];
        c.update(&state([pulse, 0.0, 0.0, 0.0]), &r, period);
        let step = (c.mode_torque()[0] - before).abs();
        let alpha = 1.0 - (-2.0 * std::f64::consts::PI * c.config.shaping.velocity_cutoff * period).exp();
        assert!((step - alpha * alpha * d * pulse).abs() < 1e-9, "{step} Nm vs {}", alpha * alpha * d * pulse);
        assert!(step < 0.4, "below the shoulder's rate limit per tick: {step} Nm (unfiltered {} Nm)", d * pulse);
        // Assist-as-needed damping sees the measured velocity.
        c.set_mode(aan()).unwrap();
        c.update(&still, &r, 2.0 * period);
        let a0 = c.mode_torque()[0];
        c.update(&state([pulse, 0.0, 0.0, 0.0]), &r, 3.0 * period);
        let a_step = c.mode_torque()[0] - a0;
        assert!((a_step + c.config.aan.damping[0] * pulse).abs() < 1e-9, "{a_step}");
    }
}
