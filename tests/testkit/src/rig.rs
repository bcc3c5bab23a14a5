//! Closed-loop rigs: the controller, the safety supervisor and a simulated plant with a virtual patient, run as
//! the runtime runs them (`read → Controller::update → SafetySupervisor::apply → write`); the configurations, ranges
//! of motion and target sets the controller's tests share; the tick workload of the benchmarks.

use std::time::Duration;

use plexo_controller::{
    AanLaw, AdaptationState, BlockSpec, Controller, ControllerConfig, MinimumJerk, Mode, ModeSettings, Protocol,
    RomLimit, SafetyOutcome, SafetySupervisor, Session, Space, TargetKind, TargetSetSpec, TaskReference, Therapy,
    TherapyEvent,
};
use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, Robot};
use plexo_kinematics::Model;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_sim::{ArticulatedPlant, PatientProfile, PatientState, SimulatedPlant, TrialOutcome};

use crate::patients::{at_rest_config, profile};
use crate::robots::{DT, HOME, arm4};

/// The default controller configuration tuned to the sim plant's default actuators (plexo-sim
/// `MotorParams::default`): their identified friction (Coulomb 0.15 Nm, viscous 0.02 Nm·s/rad) is compensated and
/// removed from the observer's motor torque.
pub fn sim_actuator_config() -> ControllerConfig {
    let mut cfg = ControllerConfig::default_config().expect("default controller configuration");
    cfg.friction.coulomb = vec![0.15; 4];
    cfg.friction.viscous = vec![0.02; 4];
    cfg.friction.smoothing_velocity = 0.05;
    cfg.observer.subtract_friction = true;
    cfg
}

/// The patient's measured range of motion on `robot` [rad], in the model's joint order.
pub fn patient_rom(robot: &Model, profile: &PatientProfile) -> Vec<RomLimit> {
    robot
        .joints()
        .iter()
        .map(|j| {
            let r = profile.range_of(&j.name).expect("the profile measures every robot joint");
            RomLimit { min: r[0], max: r[1] }
        })
        .collect()
}

/// The URDF's position limits as a range of motion [rad] (a patient who can use the robot's whole range).
pub fn urdf_rom(model: &Model) -> Vec<RomLimit> {
    model.joints().iter().map(|j| RomLimit { min: j.limits.lower, max: j.limits.upper }).collect()
}

/// The target set "elbow" of the controller's protocol tests: elbow range-of-motion targets at half the range
/// about [`HOME`] (two trials per repetition: low end, high end).
pub fn elbow_rom_targets() -> TargetSetSpec {
    TargetSetSpec {
        name: "elbow".into(),
        kind: TargetKind::JointRom,
        home: plexo_controller::Posture::Ordered(HOME.to_vec()),
        count: None,
        radius_fraction: None,
        radius_cap: None,
        rom_margin: None,
        joint: Some("elbow_flexion".into()),
        range_fraction: Some(0.5),
    }
}

/// A block on the [`elbow_rom_targets`] ("elbow"): `mode` with `law` in joint space, `repetitions` × 2 trials of
/// 1 s movement time (3 s timeout, 0.05 rad tolerance, 0.3 s dwell), 0.5 s between trials and 1 s after the block,
/// full arm support, progression in active-assisted mode only. Tests change fields with struct update syntax.
pub fn elbow_block(mode: Mode, law: AanLaw, repetitions: u32) -> BlockSpec {
    BlockSpec {
        name: format!("{mode:?}/{law:?}"),
        mode,
        law,
        space: Space::Joint,
        targets: "elbow".into(),
        repetitions,
        movement_time: 1.0,
        trial_timeout: 3.0,
        tolerance: 0.05,
        dwell: 0.3,
        inter_trial_rest: 0.5,
        rest_after: 1.0,
        arm_support: 1.0,
        error_gain: None,
        progression: mode == Mode::ActiveAssisted,
        onset_timeout: 0.0,
        onset_distance: plexo_controller::DEFAULT_ONSET_DISTANCE,
    }
}

/// A protocol ("test") of `blocks` on the [`elbow_rom_targets`] (two trials per repetition: low end, high end).
pub fn elbow_protocol(blocks: Vec<BlockSpec>) -> Protocol {
    Protocol {
        name: "test".into(),
        description: "elbow range of motion".into(),
        target_sets: vec![elbow_rom_targets()],
        blocks,
    }
}

/// The controller (configuration `cfg`) on `robot` for a 1.75 m / 75 kg patient.
pub fn average_patient_controller(robot: &Model, cfg: &ControllerConfig) -> Controller {
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).expect("body size");
    Controller::new(robot, cfg, &arm, "test").expect("controller")
}

/// A [`Therapy`] of `protocol` on plexo-arm4 with the URDF's range of motion and the
/// [`average_patient_controller`] (configuration `cfg`), for tests that script the arm (no plant).
pub fn scripted_therapy(protocol: &Protocol, cfg: &ControllerConfig) -> Therapy {
    let robot = arm4();
    let session = Session::new(protocol, &robot, &urdf_rom(&robot)).expect("session");
    Therapy::new(session, average_patient_controller(&robot, cfg))
}

/// plexo-arm4 with a virtual patient on the articulated plant, the controller and the supervisor: one closed loop
/// as the runtime runs it. The fields are public: tests inspect the plant's true state, switch modes, inject faults.
pub struct ClosedLoop {
    /// The robot model (plexo-arm4).
    pub robot: Model,
    /// The simulated plant with the patient.
    pub plant: ArticulatedPlant,
    /// The controller under test.
    pub controller: Controller,
    /// The safety supervisor between controller and plant.
    pub supervisor: SafetySupervisor,
    /// The last measured state.
    pub state: JointState,
    /// The patient's range of motion given to the supervisor [rad].
    pub rom: Vec<RomLimit>,
    /// Controller time [s], advanced by [`DT`] each tick.
    pub t: f64,
}

impl ClosedLoop {
    /// The situation before a therapist enables the robot: the built-in `patient` on plexo-arm4 starts at its
    /// rest posture with the drives off and settles for 4 s under gravity and its passive tissue; controller
    /// (configuration `cfg`, the patient's anthropometrics) and supervisor (the patient's range of motion) are
    /// built, not started. `patient_state` resumes a virtual patient saved by an earlier session.
    pub fn resting(patient: &str, cfg: &ControllerConfig, patient_state: Option<PatientState>) -> Self {
        Self::resting_with(profile(patient), cfg, patient_state)
    }

    /// As [`ClosedLoop::resting`] with a patient `profile` of the test's own (e.g. a built-in one with scaled
    /// strength or tissue).
    pub fn resting_with(profile: PatientProfile, cfg: &ControllerConfig, patient_state: Option<PatientState>) -> Self {
        let robot = arm4();
        let mut plant = ArticulatedPlant::new(&robot, at_rest_config(&robot, &profile)).expect("plant");
        if let Some(s) = patient_state {
            plant.patient_mut().expect("a patient").restore(s).expect("saved patient state");
        }
        let arm = ArmAnthropometrics::from_height_mass(profile.spec.height, profile.spec.mass).expect("body size");
        let controller = Controller::new(&robot, cfg, &arm, "test").expect("controller");
        let rom = patient_rom(&robot, &profile);
        let supervisor = SafetySupervisor::new(&cfg.safety, plant.joints(), Some(&rom)).expect("supervisor");
        let mut state = JointState::zeros(4);
        plant.read(&mut state).expect("read");
        let mut rig = Self { robot, plant, controller, supervisor, state, rom, t: 0.0 };
        for _ in 0..4000 {
            rig.plant.write(&JointCommand::zeros(4)).expect("write");
        }
        rig
    }

    /// Enables as the runtime does: drives on, controller restarted on the measured state, supervisor soft start
    /// while holding the measured posture, until the supervisor is Active. Returns the outcome of the first tick.
    /// A safe stop or fault during the soft start fails the test.
    pub fn enable(&mut self) -> SafetyOutcome {
        let hold = self.drives_on();
        self.soft_start(&hold)
    }

    /// The first half of [`ClosedLoop::enable`]: drives on, controller restarted on the measured state, enable
    /// requested from the supervisor. Returns the hold of the measured posture the soft start runs with.
    pub fn drives_on(&mut self) -> TaskReference {
        self.plant.enable().expect("enable");
        self.plant.read(&mut self.state).expect("read");
        self.controller.start(&self.state);
        self.supervisor.request_enable().expect("request enable");
        TaskReference::hold(&self.state.position)
    }

    /// The second half of [`ClosedLoop::enable`]: ticks with `hold` until the supervisor is Active (a safe stop
    /// or fault fails the test). Returns the outcome of the first tick.
    pub fn soft_start(&mut self, hold: &TaskReference) -> SafetyOutcome {
        let first = self.step_checked(hold);
        if !matches!(first, SafetyOutcome::Active { .. }) {
            while !matches!(self.step_checked(hold), SafetyOutcome::Active { .. }) {}
        }
        first
    }

    /// From rest to the home posture, as a session starts: [`ClosedLoop::enable`], passive mode (full weight
    /// support, `law`) with the controller restarted, then the passive move [`ClosedLoop::go_home`].
    pub fn enabled_at_home(mut self, law: AanLaw) -> Self {
        self.enable();
        self.switch_mode(ModeSettings { law, ..ModeSettings::passive() });
        self.go_home();
        self
    }

    /// The passive move to [`HOME`] from the measured posture (read first): 3500 checked ticks of
    /// [`ClosedLoop::to_home`].
    pub fn go_home(&mut self) {
        self.plant.read(&mut self.state).expect("read");
        let to_home = self.to_home();
        for k in 0..3500 {
            self.step_checked(&to_home.sample(k as f64 * DT));
        }
    }

    /// [`ClosedLoop::step`] checked: a safe stop or fault fails the test.
    pub fn step_checked(&mut self, reference: &TaskReference) -> SafetyOutcome {
        let outcome = self.step(reference);
        assert!(
            !matches!(outcome, SafetyOutcome::SafeStop { .. } | SafetyOutcome::Fault { .. }),
            "unexpected stop at t = {:.3}: {outcome:?}",
            self.t - DT
        );
        outcome
    }

    /// Switches the controller to `settings` and restarts it on the measured state, so that the test's condition
    /// starts cleanly. When the arm support is reduced, the patient first takes over its arm's weight: it is asked
    /// to hold its arm (the plant's true posture, within 0.5 s) for 1.5 s while the support slews down with the
    /// robot transparent, as `Therapy` slews it (the virtual patient reacts one sensorimotor delay after a cue).
    /// Returns whether it did; the patient's hold target is then still set.
    pub fn switch_mode(&mut self, settings: ModeSettings) -> bool {
        let take_over = settings.arm_support < self.controller.mode().arm_support;
        if take_over {
            let hold = self.true_q();
            let transparent = ModeSettings { mode: Mode::Transparent, law: AanLaw::Fixed, ..settings };
            self.controller.set_mode(transparent).expect("mode settings");
            self.plant.patient_mut().expect("a patient").set_target(&hold, 0.5).expect("hold target");
            for _ in 0..1500 {
                self.step_checked(&TaskReference::hold(&hold));
            }
        }
        self.controller.set_mode(settings).expect("mode settings");
        self.controller.start(&self.state);
        take_over
    }

    /// The center-out protocol's outward targets on this robot and range of motion [rad] (every other trial target
    /// of its first block: the reaches out, without the returns home).
    pub fn center_out_reaches(&self) -> Vec<JointArray<f64>> {
        let protocol = Protocol::default_protocol("center-out").expect("built-in protocol");
        let session = Session::new(&protocol, &self.robot, &self.rom).expect("session");
        session.blocks()[0].trial_targets.iter().step_by(2).copied().collect()
    }

    /// Hands the controller to a [`Therapy`] session of `protocol` (resumed from `resume` if given), started on
    /// the measured state: the closed loop as the runtime runs a session.
    pub fn into_therapy(self, protocol: &Protocol, resume: Option<AdaptationState>) -> TherapyLoop {
        let Self { robot, mut plant, controller, supervisor, mut state, rom, .. } = self;
        let session = Session::new(protocol, &robot, &rom).expect("session");
        let mut therapy = Therapy::new(session, controller);
        if let Some(saved) = resume {
            therapy.resume_from(saved).expect("saved adaptation state");
        }
        plant.read(&mut state).expect("read");
        therapy.start(&state);
        TherapyLoop { robot, plant, therapy, supervisor, state, rom, t: 0.0 }
    }

    /// One runtime tick with `reference`: read, controller update at [`ClosedLoop::t`], supervisor, write;
    /// advances `t` by [`DT`]. Returns the supervisor's outcome.
    pub fn step(&mut self, reference: &TaskReference) -> SafetyOutcome {
        self.plant.read(&mut self.state).expect("read");
        let mut cmd = self.controller.update(&self.state, reference, self.t);
        let outcome = self.supervisor.apply(&self.state, self.controller.report(), &mut cmd, self.now());
        self.plant.write(&cmd).expect("write");
        self.t += DT;
        outcome
    }

    /// The supervisor's clock: 1 s plus the measured state's stamp.
    pub fn now(&self) -> Duration {
        Duration::from_secs(1) + self.state.stamp
    }

    /// The plant's true joint positions [rad].
    pub fn true_q(&self) -> JointArray<f64> {
        JointArray::from_slice(self.plant.position()).expect("4 joints")
    }

    /// The passive move from the measured posture to [`HOME`] in 3 s (minimum jerk), as a session's first trial
    /// does; sample it at `k * DT` for 3500 ticks.
    pub fn to_home(&self) -> MinimumJerk {
        home_move(self.state.position)
    }
}

/// The passive move from `start` [rad] to [`HOME`] in 3 s (minimum jerk).
pub fn home_move(start: JointArray<f64>) -> MinimumJerk {
    MinimumJerk { start, target: JointArray::from_slice(&HOME).expect("4 joints"), duration: 3.0 }
}

/// A [`ClosedLoop`] whose controller runs a [`Therapy`] session (see [`ClosedLoop::into_therapy`]); the virtual
/// patient plays its part as the runtime's patient hooks play it ([`patient_follows_plan`]).
pub struct TherapyLoop {
    /// The robot model (plexo-arm4).
    pub robot: Model,
    /// The simulated plant with the patient.
    pub plant: ArticulatedPlant,
    /// The session with the controller under test.
    pub therapy: Therapy,
    /// The safety supervisor between controller and plant.
    pub supervisor: SafetySupervisor,
    /// The last measured state.
    pub state: JointState,
    /// The patient's range of motion [rad].
    pub rom: Vec<RomLimit>,
    /// Session time [s] from 0 at the session start, advanced by [`DT`] each tick.
    pub t: f64,
}

impl TherapyLoop {
    /// One runtime tick: read, `Therapy::update` at [`TherapyLoop::t`], supervisor (a safe stop or fault fails the
    /// test), the patient's part for the tick's event ([`patient_follows_plan`]), then `between(self, event)` —
    /// the test's own look at or change to the loop before the command is written — then write; advances `t` by
    /// [`DT`]. Returns the tick's event.
    pub fn step(&mut self, mut between: impl FnMut(&mut Self, &TherapyEvent)) -> TherapyEvent {
        self.plant.read(&mut self.state).expect("read");
        let (mut cmd, event) = self.therapy.update(&self.state, self.t);
        let now = Duration::from_secs(1) + self.state.stamp;
        let outcome = self.supervisor.apply(&self.state, self.therapy.controller().report(), &mut cmd, now);
        assert!(
            !matches!(outcome, SafetyOutcome::SafeStop { .. } | SafetyOutcome::Fault { .. }),
            "t = {}: {outcome:?}",
            self.t
        );
        patient_follows_plan(&self.therapy, &mut self.plant, &event);
        between(self, &event);
        self.plant.write(&cmd).expect("write");
        self.t += DT;
        event
    }

    /// Ticks ([`TherapyLoop::step`], `between` each tick) until the session ends; a session longer than 20 min
    /// fails the test.
    pub fn run_session(&mut self, mut between: impl FnMut(&mut Self, &TherapyEvent)) {
        while self.step(&mut between) != TherapyEvent::SessionEnded {
            assert!(self.t < 1200.0, "session did not end");
        }
    }
}

/// The virtual patient's part in a therapy session, as the runtime's patient hooks play it, for one `event` of
/// `therapy`: at a trial's start the patient aims at the trial's target within the block's movement time; at its
/// end it is told the outcome (error = norm of the per-joint RMS errors [rad], reached, duration [s], at least
/// 1 ms) and stops aiming. Other events change nothing.
pub fn patient_plays_trial(therapy: &Therapy, plant: &mut impl SimulatedPlant, event: &TherapyEvent) {
    if let TherapyEvent::TrialStarted { block, trial } = event {
        let block = &therapy.session().blocks()[*block];
        let patient = plant.patient_mut().expect("a patient");
        patient.set_target(&block.trial_targets[*trial], block.spec.movement_time).expect("trial target");
    } else {
        patient_ends_trial(plant, event);
    }
}

/// The virtual patient's part in a therapy session as the runtime's patient hooks play it, for one `event` of
/// `therapy`: at a trial's start the patient is asked for the trial's plan (`Therapy::current_trial_plan`: the
/// goal, and the movement time scaled by the progression); at its end it is told the outcome as in
/// [`patient_plays_trial`].
pub fn patient_follows_plan(therapy: &Therapy, plant: &mut impl SimulatedPlant, event: &TherapyEvent) {
    if let TherapyEvent::TrialStarted { .. } = event {
        let plan = therapy.current_trial_plan().expect("a trial started");
        plant.patient_mut().expect("a patient").set_target(&plan.goal, plan.duration).expect("trial target");
    } else {
        patient_ends_trial(plant, event);
    }
}

/// At a trial's end the patient is told the outcome (error = norm of the per-joint RMS errors [rad], reached,
/// duration [s], at least 1 ms) and stops aiming; other events change nothing.
fn patient_ends_trial(plant: &mut impl SimulatedPlant, event: &TherapyEvent) {
    if let TherapyEvent::TrialEnded(record) = event {
        let error = record.metrics.rms_error.iter().map(|e| e * e).sum::<f64>().sqrt();
        let outcome = TrialOutcome { error, success: record.reached, duration: record.metrics.duration.max(1e-3) };
        let patient = plant.patient_mut().expect("a patient");
        patient.end_trial(&outcome).expect("trial outcome");
        patient.clear_target();
    }
}

/// The benchmarked control tick's workload on plexo-arm4: controller (default configuration without soft start,
/// a 1.75 m / 75 kg patient, `mode`/`law`/`space` at 70 % arm support), an enabled supervisor with the URDF's
/// limits as range of motion, a moving state and a reference with velocity, acceleration and target offsets.
pub struct TickWorkload {
    /// The controller in the benchmarked mode.
    pub controller: Controller,
    /// The supervisor, enable requested.
    pub supervisor: SafetySupervisor,
    /// The measured state [rad], [rad/s].
    pub state: JointState,
    /// The task reference.
    pub reference: TaskReference,
}

impl TickWorkload {
    /// Builds the workload for one mode and law (see the type's documentation).
    pub fn new(mode: Mode, law: AanLaw, space: Space) -> Self {
        let model = arm4();
        let mut config = ControllerConfig::default_config().expect("default controller configuration");
        config.safety.soft_start_time = 0.1; // the shortest allowed
        let mut controller = average_patient_controller(&model, &config);
        controller
            .set_mode(ModeSettings { mode, law, space, arm_support: 0.7, error_gain: None })
            .expect("mode settings");
        let joints = JointInfo::from_model(&model);
        let rom: Vec<RomLimit> = joints.iter().map(|j| RomLimit { min: j.position_min, max: j.position_max }).collect();
        let mut supervisor = SafetySupervisor::new(&config.safety, &joints, Some(&rom)).expect("supervisor");
        supervisor.request_enable().expect("request enable");
        let mut state = JointState::zeros(4);
        state.position.copy_from_slice(&[0.3, 0.6, 0.05, 1.2]);
        state.velocity.copy_from_slice(&[0.1, -0.2, 0.05, 0.3]);
        let mut reference = TaskReference::hold(&state.position);
        reference.position[3] += 0.05;
        reference.velocity[1] = 0.2;
        reference.acceleration[1] = 0.5;
        reference.phase = 0.4;
        reference.target[3] += 0.5;
        Self { controller, supervisor, state, reference }
    }
}
